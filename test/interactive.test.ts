// The interactive mode in a real terminal: tmux runs two lanchat processes,
// send-keys types, capture-pane reads the screen.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI } from './cli-helpers.js';

const SOCKET = `lanchat-test-${process.pid}`;
const hasTmux = (() => {
  try {
    execFileSync('tmux', ['-V']);
    return true;
  } catch {
    return false;
  }
})();

function tmux(...args: string[]): string {
  return execFileSync('tmux', ['-L', SOCKET, ...args], { encoding: 'utf8' });
}

const screen = (name: string): string => tmux('capture-pane', '-p', '-t', name);

async function waitForScreen(name: string, pattern: RegExp, ms = 5000): Promise<RegExpMatchArray> {
  const deadline = Date.now() + ms;
  for (;;) {
    const match = screen(name).match(pattern);
    if (match) return match;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${pattern} on ${name}'s screen:\n${screen(name)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Runs lanchat in a new tmux session; the screen shows EXIT=code when it ends. */
function start(name: string, args: string[], cwd: string, home = cwd): void {
  const command = [process.execPath, CLI, ...args].map((word) => `'${word}'`).join(' ');
  tmux('new-session', '-d', '-s', name, '-x', '100', '-y', '30', '-c', cwd, '-e', `LANCHAT_HOME=${home}`, `${command}; echo "EXIT=$?"; sleep 30`);
}

afterAll(() => {
  if (hasTmux) {
    try {
      tmux('kill-server');
    } catch {
      // already gone
    }
  }
});

describe.skipIf(!hasTmux)('interactive session in a terminal', () => {
  it('chats both ways, keeps a half-typed line intact, runs slash commands, and Ctrl-C exits 130', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lanchat-tty-'));
    start('bob', ['listen', '0', '--host', '127.0.0.1', '--nick', 'bob'], dir);
    const [, port] = await waitForScreen('bob', /listening on 127\.0\.0\.1:(\d+)/);
    start('alice', ['connect', '127.0.0.1', port!, '--nick', 'alice', '--max-line', '40'], dir);
    await waitForScreen('alice', /^alice>\s*$/m);
    tmux('send-keys', '-t', 'alice', 'x'.repeat(50), 'Enter');
    await waitForScreen('alice', /^lanchat: not sent: the line is 50 bytes, longer than 40 bytes \(--max-line\)$/m);

    tmux('send-keys', '-t', 'alice', 'hello bob', 'Enter');
    await waitForScreen('bob', /^\[\d\d:\d\d\] alice: hello bob$/m);
    tmux('send-keys', '-t', 'bob', 'half typed');
    await waitForScreen('bob', /^bob> half typed$/m);
    tmux('send-keys', '-t', 'alice', 'second line', 'Enter');
    await waitForScreen('bob', /alice: second line\nbob> half typed$/m);
    tmux('send-keys', '-t', 'bob', ' and done', 'Enter');
    await waitForScreen('alice', /^\[\d\d:\d\d\] bob: half typed and done$/m);

    tmux('send-keys', '-t', 'alice', '/nick carol', 'Enter');
    await waitForScreen('bob', /^alice is now carol$/m);
    await waitForScreen('alice', /^carol>\s*$/m);
    tmux('send-keys', '-t', 'alice', '/me waves', 'Enter');
    await waitForScreen('bob', /^\[\d\d:\d\d\] \* carol waves$/m);
    tmux('send-keys', '-t', 'bob', '/who', 'Enter');
    await waitForScreen('bob', /talking to carol at 127\.0\.0\.1:\d+ \(lanchat protocol\)\nconnected since .*\nmessages: 1 sent, 3 received/);
    tmux('send-keys', '-t', 'alice', '/save', 'Enter');
    await waitForScreen('alice', /saved 6 lines to /);
    const saved = readdirSync(dir).filter((file) => /^lanchat-bob-\d{8}-\d{6}\.txt$/.test(file));
    expect(saved).toHaveLength(1);
    expect(readFileSync(join(dir, saved[0]!), 'utf8')).toMatch(/alice: hello bob\n.*bob: half typed and done\n.*\* carol waves\n$/s);

    tmux('send-keys', '-t', 'alice', 'C-c');
    await waitForScreen('alice', /^EXIT=130$/m);
    await waitForScreen('bob', /^carol left\nEXIT=0$/m);
  });

  it('/quit and Ctrl-D both leave politely with exit 0', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lanchat-tty-'));
    start('l2', ['listen', '0', '--host', '127.0.0.1', '--nick', 'bob', '--keep'], dir);
    const [, port] = await waitForScreen('l2', /listening on 127\.0\.0\.1:(\d+)/);
    start('c2', ['connect', '127.0.0.1', port!, '--nick', 'alice'], dir);
    await waitForScreen('c2', /^alice>\s*$/m);
    tmux('send-keys', '-t', 'c2', '/quit', 'Enter');
    await waitForScreen('c2', /^EXIT=0$/m);
    await waitForScreen('l2', /^alice left$/m);
    tmux('kill-session', '-t', 'c2');
    start('c3', ['connect', '127.0.0.1', port!, '--nick', 'dave'], dir);
    await waitForScreen('c3', /^dave>\s*$/m);
    tmux('send-keys', '-t', 'c3', 'C-d');
    await waitForScreen('c3', /^EXIT=0$/m);
    await waitForScreen('l2', /^dave left$/m);
    // Typed while nobody is connected: dropped with a word, never sent to the next peer.
    tmux('send-keys', '-t', 'l2', 'meant for dave', 'Enter');
    await waitForScreen('l2', /^lanchat: nobody is connected yet; that was not sent$/m);
    // Ctrl-C at a --keep listener's prompt ends the listener, not just the session.
    start('c4', ['connect', '127.0.0.1', port!, '--nick', 'erin'], dir);
    await waitForScreen('l2', /^bob>\s*$/m);
    tmux('send-keys', '-t', 'l2', 'C-c');
    await waitForScreen('l2', /^EXIT=130$/m);
    await waitForScreen('c4', /^bob left\nEXIT=0$/m);
    expect(screen('c4')).not.toContain('meant for dave');
  });

  it('the start menu reaches a contact, and a typed line arrives at the listener', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lanchat-tty-'));
    start('menu-bob', ['listen', '0', '--host', '127.0.0.1', '--nick', 'bob'], dir);
    const [, port] = await waitForScreen('menu-bob', /listening on 127\.0\.0\.1:(\d+)/);

    start('menu', [], dir);
    await waitForScreen('menu', /choose 1, 2, 3 or q:\s*$/m);
    tmux('send-keys', '-t', 'menu', '3', 'Enter');
    await waitForScreen('menu', /no contacts yet/);

    start('add', ['contacts', 'add', 'bob'], dir);
    await waitForScreen('add', /host \(IP address or host name\):\s*$/m);
    tmux('send-keys', '-t', 'add', 'not a host!', 'Enter');
    await waitForScreen('add', /invalid host/);
    tmux('send-keys', '-t', 'add', '127.0.0.1', 'Enter');
    await waitForScreen('add', /port:\s*$/m);
    tmux('send-keys', '-t', 'add', port!, 'Enter');
    await waitForScreen('add', new RegExp(`added bob \\(127\\.0\\.0\\.1:${port}\\)\nEXIT=0`));

    tmux('send-keys', '-t', 'menu', '3', 'Enter');
    await waitForScreen('menu', new RegExp(`1\\) bob  127\\.0\\.0\\.1:${port}`));
    tmux('send-keys', '-t', 'menu', '1', 'Enter');
    await waitForScreen('menu', /^connected to bob/m);
    tmux('send-keys', '-t', 'menu', 'hi from the menu', 'Enter');
    await waitForScreen('menu-bob', /\] \S+: hi from the menu$/m);
    tmux('send-keys', '-t', 'menu', '/quit', 'Enter');
    await waitForScreen('menu', /^EXIT=0$/m);
  });

  it('SIGTERM at a prompt ends lanchat at once (143), and a contact named "-V" is reached from the menu', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lanchat-tty-'));
    start('prompt', ['contacts', 'add', 'carol'], dir);
    await waitForScreen('prompt', /host \(IP address or host name\):\s*$/m);
    const pid = execFileSync('pgrep', ['-f', 'contacts add carol'], { encoding: 'utf8' }).trim().split('\n').at(-1)!;
    process.kill(Number(pid), 'SIGTERM');
    await waitForScreen('prompt', /^EXIT=143$/m);
    expect(() => readFileSync(join(dir, 'contacts.json'))).toThrow();

    start('dash-bob', ['listen', '0', '--host', '127.0.0.1', '--nick', 'bob'], dir);
    const [, port] = await waitForScreen('dash-bob', /listening on 127\.0\.0\.1:(\d+)/);
    execFileSync(process.execPath, [CLI, 'contacts', 'add', '--', '-V', '127.0.0.1', port!], { env: { ...process.env, LANCHAT_HOME: dir } });
    start('dash', [], dir);
    await waitForScreen('dash', /choose 1, 2, 3 or q:\s*$/m);
    tmux('send-keys', '-t', 'dash', '3', 'Enter');
    await waitForScreen('dash', /1\) -V  127\.0\.0\.1/);
    tmux('send-keys', '-t', 'dash', '1', 'Enter');
    await waitForScreen('dash', /^connected to bob/m);
    tmux('send-keys', '-t', 'dash', '/quit', 'Enter');
    await waitForScreen('dash', /^EXIT=0$/m);
  });
});
