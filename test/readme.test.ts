// The README's examples against real output: the opening transcript run in a
// terminal (tmux), `lanchat id`. Whoever changes what a session prints changes
// the README with it. Addresses, ports, keys, digits and times are the only
// parts compared by their shape.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { CLI, freePort, killAll, lanchat } from './cli-helpers.js';
import { hasTmux, terminals } from './tmux.js';

const README = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const { tmux, history: screen, waitForScreen: waitFor, close } = terminals('readme');
const waitForScreen = (name: string, pattern: RegExp, ms = 10_000): Promise<RegExpMatchArray> => waitFor(name, pattern, ms, screen);

/** The code blocks of the README that start with `$ lanchat WORD`. */
function examples(word: string): string[][] {
  return [...README.matchAll(/^```\n(\$ lanchat [^\n]*\n[\s\S]*?)```$/gm)]
    .map(([, block]) => block.trimEnd().split('\n'))
    .filter(([command]) => command.startsWith(`$ lanchat ${word}`));
}

/** Only the shape of what differs from run to run. */
function shape(line: string): string {
  return line
    .replace(/\b[0-9A-F]{2}(:[0-9A-F]{2}){31}\b/g, '<key>')
    .replace(/SHA256:[A-Za-z0-9+/]{43}/g, '<key>')
    .replace(/\b\d{5}( \d{5}){7}\b/g, '<key>')
    .replace(/^\d{5} \d{5} \d{5} \d{5}$/, '<digits>')
    .replace(/\[\d\d:\d\d\]/g, '[HH:MM]')
    .replace(/(\d{1,3}\.){3}\d{1,3}:\d+|\[[0-9a-f:]+\]:\d+/g, '<address>')
    .replace(/\(identity in \/.*\)$/, '(identity in <path>)')
    .trimEnd();
}

afterEach(killAll);
afterAll(close);

describe.skipIf(!hasTmux)('the README', () => {
  it('opening transcript: bob listens, alice connects, each types a line: the screens are as shown', async () => {
    const [listenBlock] = examples('listen 5000');
    const [connectBlock] = examples('connect 192.168.1.20 5000');
    expect(listenBlock[0]).toBe('$ lanchat listen 5000');
    const listenerNick = 'bob';
    const connectorNick = /^connected to (\S+) /m.exec(listenBlock.join('\n'))![1];
    // Who typed what, in order, as bob's screen shows it: his own lines and alice's.
    const typed = listenBlock.flatMap((line) => {
      const match = /^(?:\[\d\d:\d\d\] (\S+): |(\S+)> )(.+)$/.exec(line);
      return match ? [{ nick: match[1] ?? match[2], text: match[3] }] : [];
    });
    expect(typed.map(({ nick }) => nick)).toEqual([connectorNick, listenerNick]);

    const dir = mkdtempSync(join(tmpdir(), 'lanchat-readme-'));
    const start = (name: string, nick: string, args: string[]): void => {
      const command = [process.execPath, CLI, ...args].map((word) => `'${word}'`).join(' ');
      tmux(
        ...['new-session', '-d', '-s', name, '-x', '300', '-y', '40', '-c', dir],
        ...['-e', `LANCHAT_HOME=${join(dir, name)}`, '-e', 'LANCHAT_MDNS=off', '-e', `LANCHAT_NICK=${nick}`],
        // the command as the README shows it, not the path the test runs it by
        `printf '%s\\n' '${(name === 'listener' ? listenBlock : connectBlock)[0]}'; ${command}; sleep 30`,
      );
    };
    start('listener', listenerNick, ['listen', '0', '--host', '127.0.0.1']);
    const [, port] = await waitForScreen('listener', /^listening on 127\.0\.0\.1:(\d+)$/m);
    start('connector', connectorNick, ['connect', '127.0.0.1', port]);
    const screens = { [listenerNick]: 'listener', [connectorNick]: 'connector' };
    await waitForScreen('connector', new RegExp(`^${connectorNick}>\\s*$`, 'm'));
    for (const { nick, text } of typed) {
      tmux('send-keys', '-t', screens[nick], '-l', text);
      tmux('send-keys', '-t', screens[nick], 'Enter');
      // Both screens have it before the next line is typed (as two people would take turns).
      for (const name of ['listener', 'connector'])
        await waitForScreen(name, new RegExp(`${text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}[\\s\\S]*\\n\\S+>`), 10_000);
    }
    const lines = (name: string): string[] => screen(name).trimEnd().split('\n').map(shape);
    expect(lines('listener')).toEqual(listenBlock.map(shape));
    expect(lines('connector')).toEqual(connectBlock.map(shape));
  }, 30_000);
});

describe('the README, without a terminal', () => {
  it('lanchat id prints what it shows: the fingerprint, two rows of digits, and where the identity is (stderr)', async () => {
    const [block] = examples('id');
    const proc = lanchat(['id'], { env: { LANCHAT_HOME: mkdtempSync(join(tmpdir(), 'lanchat-readme-')) }, stdin: 'ignore' });
    expect((await proc.exited).code).toBe(0);
    const output = `${proc.stdout().toString()}${proc.stderr()}`.trimEnd().split('\n');
    expect(output.map(shape)).toEqual(block.slice(1).map(shape));
  });

  it('listen 0 --host 127.0.0.1 prints what it shows first', async () => {
    const [block] = examples('listen 0 --host 127.0.0.1');
    const listen = lanchat(['listen', '0', '--host', '127.0.0.1'], { stdin: 'ignore' });
    const [line] = await listen.waitForStderr(/^.*\n/);
    expect(shape(line)).toBe(shape(block[1]));
  });

  it('a refused connect prints what it shows, with the exit code it shows', async () => {
    const [block] = examples('connect 10.0.0.4 5000');
    expect(block[2]).toBe('$ echo $?');
    const connect = lanchat(['connect', '127.0.0.1', String(await freePort())], { stdin: 'ignore' });
    expect(String((await connect.exited).code)).toBe(block[3]);
    expect(connect.stderr().trimEnd().split('\n').map(shape)).toEqual([shape(block[1])]);
  });
});
