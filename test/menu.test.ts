// The start menu and the other prompts before a session, in a real terminal:
// tmux runs lanchat, send-keys types, capture-pane reads the screen.
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { CLI, killAll } from './cli-helpers.js';

const SOCKET = `lanchat-menu-test-${process.pid}`;
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

const keys = (name: string, ...typed: string[]): string => tmux('send-keys', '-t', name, ...typed);

/** Runs lanchat in a new tmux session; the screen shows EXIT=code when it ends. LANCHAT_MDNS=off: nobody nearby is looked for. */
function start(name: string, args: string[], home: string): void {
  const command = [process.execPath, CLI, ...args].map((word) => `'${word}'`).join(' ');
  tmux(
    'new-session',
    '-d',
    '-s',
    name,
    '-x',
    '100',
    '-y',
    '30',
    '-c',
    home,
    '-e',
    `LANCHAT_HOME=${home}`,
    '-e',
    'LANCHAT_MDNS=off',
    '-e',
    'LANCHAT_NICK=',
    `${command}; echo "EXIT=$?"; sleep 30`,
  );
}

const home = (): string => mkdtempSync(join(tmpdir(), 'lanchat-menu-'));

function addContact(dir: string, ...args: string[]): void {
  execFileSync(process.execPath, [CLI, 'contacts', 'add', ...args], { env: { ...process.env, LANCHAT_HOME: dir, LANCHAT_MDNS: 'off' } });
}

afterEach(() => {
  killAll();
  try {
    tmux('kill-server');
  } catch {
    // no session left
  }
});

afterAll(() => {
  try {
    tmux('kill-server');
  } catch {
    // already gone
  }
});

describe.skipIf(!hasTmux)('contacts add at a terminal', () => {
  it('when the name exists then it says so at once, before asking for host and port', async () => {
    const dir = home();
    addContact(dir, 'dave', '10.0.0.4', '5000');
    start('add', ['contacts', 'add', 'dave'], dir);
    await waitForScreen('add', /^EXIT=1$/m);
    expect(screen('add')).toContain('lanchat: a contact named "dave" exists already (use --force to replace it)');
    expect(screen('add')).not.toContain('host');
  });

  it('when a name typed at the prompt exists then it says so and asks again', async () => {
    const dir = home();
    addContact(dir, 'dave', '10.0.0.4', '5000');
    start('add', ['contacts', 'add'], dir);
    await waitForScreen('add', /name:\s*$/m);
    keys('add', 'Dave', 'Enter');
    await waitForScreen('add', /exists already \(use --force to replace it\)\nname:\s*$/);
    keys('add', 'erin', 'Enter');
    await waitForScreen('add', /host \(IP address or host name\):\s*$/m);
    keys('add', '10.0.0.5', 'Enter');
    await waitForScreen('add', /port:\s*$/m);
    keys('add', '5001', 'Enter');
    await waitForScreen('add', /added erin \(10\.0\.0\.5:5001\)\nEXIT=0/);
  });
});
