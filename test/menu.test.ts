// The start menu and the other prompts before a session, in a real terminal:
// tmux runs lanchat, send-keys types, capture-pane reads the screen.
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { CLI, freePort, killAll, listener } from './cli-helpers.js';
import { hasTmux, terminals } from './tmux.js';

const { tmux, screen, waitForScreen, close } = terminals('menu');

const keys = (name: string, ...typed: string[]): string => tmux('send-keys', '-t', name, ...typed);

/**
 * Runs lanchat in a new tmux session; the screen shows EXIT=code when it ends. No $LANCHAT_NICK;
 * LANCHAT_MDNS=off: nobody nearby is looked for. `isolated`: in a network namespace of its own
 * with only loopback (for a listener on every interface).
 */
function start(name: string, args: string[], home: string, { isolated = false } = {}): void {
  const quote = (word: string): string => `'${word}'`;
  const command = ['env', '-u', 'LANCHAT_NICK', process.execPath, CLI, ...args].map(quote).join(' ');
  const shell = `${command}; echo "EXIT=$?"; sleep 30`;
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
    isolated ? `unshare --net sh -c ${quote(`ip link set lo up; ${shell.replaceAll("'", "'\\''")}`)}` : shell,
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

afterAll(close);

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

const canIsolate = (() => {
  try {
    execFileSync('unshare', ['--net', 'true']);
    return true;
  } catch {
    return false;
  }
})();

describe.skipIf(!hasTmux)('the start menu', () => {
  it('when Enter is pressed alone then it asks again; Ctrl-D quits with exit 0 on a fresh line', async () => {
    start('menu', [], home());
    await waitForScreen('menu', /choose 1, 2, 3 or q:\s*$/m);
    keys('menu', 'Enter');
    await waitForScreen('menu', /choose 1, 2, 3 or q:\s*\nchoose 1, 2, 3 or q:\s*$/);
    keys('menu', 'C-d');
    await waitForScreen('menu', /^choose 1, 2, 3 or q:\s*\nEXIT=0$/m);
  });

  it.skipIf(!canIsolate)('port 0 listens on a free port, as listen 0 does', async () => {
    const dir = home();
    addContact(dir, 'x', '127.0.0.1', '1'); // a file there already: only the nick is new
    execFileSync(process.execPath, [CLI, 'config', 'nick', 'alice'], { env: { ...process.env, LANCHAT_HOME: dir } });
    start('menu', [], dir, { isolated: true });
    await waitForScreen('menu', /choose 1, 2, 3 or q:\s*$/m);
    keys('menu', '1', 'Enter');
    await waitForScreen('menu', /port to listen on, 0 for any free one \[5000\]:\s*$/m);
    keys('menu', 'newbie', 'Enter'); // not a port: the rule as this question takes it, and the question again
    await waitForScreen(
      'menu',
      /^a port is a whole number from 0 to 65535 \(0: any free one\)\nport to listen on, 0 for any free one \[5000\]:\s*$/m,
    );
    keys('menu', '0', 'Enter');
    const [, port] = await waitForScreen('menu', /^listening on \S+:(\d+)/m);
    expect(Number(port)).toBeGreaterThan(0);
    expect(screen('menu')).not.toContain('from 1 to 65535'); // afterEach ends it
  });

  it('contacts in an aligned table, picked by number or name; a failed connection goes back to the menu; the nick is asked once and kept', async () => {
    const dir = home();
    const bob = await listener(['--nick', 'bob'], { env: { LANCHAT_HOME: home() } });
    const closed = await freePort();
    addContact(dir, 'al', '127.0.0.1', String(closed));
    addContact(dir, 'bobby-long', '127.0.0.1', String(bob.port));
    start('menu', [], dir);
    await waitForScreen('menu', /choose 1, 2, 3 or q:\s*$/m);
    keys('menu', '3', 'Enter');
    const [table] = await waitForScreen('menu', /^ {2}1\) al .*\n {2}2\) bobby-long .*$/m);
    const rows = table.split('\n');
    expect(rows[0].indexOf('127.0.0.1')).toBe(rows[1].indexOf('127.0.0.1'));
    expect(rows[0].indexOf('none yet')).toBe(rows[1].indexOf('none yet'));
    await waitForScreen('menu', /1-2 or a name \(Enter to go back\):\s*$/m);
    keys('menu', '1', 'Enter');
    await waitForScreen('menu', /your nick, as others see it \[\S+\]:\s*$/m);
    keys('menu', 'alice', 'Enter');
    await waitForScreen('menu', /keep alice as your default nick \(lanchat config nick\)\? \[Y\/n\]\s*$/m);
    keys('menu', 'Enter');
    await waitForScreen('menu', /default nick is now alice\n/);
    await waitForScreen('menu', /^lanchat: .*\n\nlanchat: chat with someone on your network\n(.*\n){4}choose 1, 2, 3 or q:\s*$/m, 10_000);
    keys('menu', '3', 'Enter');
    await waitForScreen('menu', /1-2 or a name \(Enter to go back\):\s*$/m);
    keys('menu', 'BOBBY-LONG', 'Enter');
    await waitForScreen('menu', /^connected to bob/m, 10_000);
    await bob.waitForStderr(/^connected to alice /m);
    expect(screen('menu').match(/your nick/g)).toHaveLength(1);
    keys('menu', '/quit', 'Enter');
    await waitForScreen('menu', /^EXIT=0$/m);
    expect(execFileSync(process.execPath, [CLI, 'config', 'nick'], { env: { ...process.env, LANCHAT_HOME: dir }, encoding: 'utf8' })).toBe(
      'alice\n',
    );
  });
});
