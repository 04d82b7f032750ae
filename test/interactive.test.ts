// The interactive mode in a real terminal: tmux runs two lanchat processes,
// send-keys types, capture-pane reads the screen.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { CLI, killAll, lanchat, listener, rawPeer } from './cli-helpers.js';
import { hasTmux, terminals } from './tmux.js';

const { tmux, screen, history, waitForScreen, close } = terminals('interactive');

/** lanchat's command line, each word quoted for a shell. */
const lanchatCommand = (args: string[]): string => [process.execPath, CLI, ...args].map((word) => `'${word}'`).join(' ');

/** Runs a shell command in a new tmux session `width` columns wide. */
function startShell(name: string, command: string, cwd: string, { home = cwd, width = 100 } = {}): void {
  // LANCHAT_MDNS=off: the start menu does not look for people nearby on the machine's network.
  tmux(
    'new-session',
    '-d',
    '-s',
    name,
    '-x',
    String(width),
    '-y',
    '30',
    '-c',
    cwd,
    '-e',
    `LANCHAT_HOME=${home}`,
    '-e',
    'LANCHAT_MDNS=off',
    command,
  );
}

/** Runs lanchat in a new tmux session; the screen shows EXIT=code when it ends. */
function start(name: string, args: string[], cwd: string, home = cwd, width = 100): void {
  startShell(name, `${lanchatCommand(args)}; echo "EXIT=$?"; sleep 30`, cwd, { home, width });
}

/** A default nick in `dir`, as `lanchat config nick` keeps it. */
const saveNick = (dir: string): void =>
  void execFileSync(process.execPath, [CLI, 'config', 'nick', 'alice'], { env: { ...process.env, LANCHAT_HOME: dir } });

afterEach(killAll);

afterAll(close);

describe.skipIf(!hasTmux)('interactive session in a terminal', () => {
  it('chats both ways, keeps a half-typed line intact, runs slash commands, and Ctrl-C exits 130', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lanchat-tty-'));
    start('bob', ['listen', '0', '--host', '127.0.0.1', '--nick', 'bob'], dir);
    const [, port] = await waitForScreen('bob', /listening on 127\.0\.0\.1:(\d+)/);
    start('alice', ['connect', '127.0.0.1', port, '--nick', 'alice', '--max-line', '40'], dir);
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
    await waitForScreen(
      'bob',
      /talking to carol at 127\.0\.0\.1:\d+ \(lanchat protocol\)\nconnected since .*\nmessages: 1 sent, 3 received/,
    );
    tmux('send-keys', '-t', 'alice', '/save', 'Enter');
    await waitForScreen('alice', /saved 6 lines to /);
    const saved = readdirSync(dir).filter((file) => /^lanchat-bob-\d{8}-\d{6}\.txt$/.test(file));
    expect(saved).toHaveLength(1);
    expect(readFileSync(join(dir, saved[0]), 'utf8')).toMatch(/alice: hello bob\n.*bob: half typed and done\n.*\* carol waves\n$/s);

    tmux('send-keys', '-t', 'alice', 'C-c');
    await waitForScreen('alice', /^EXIT=130$/m);
    await waitForScreen('bob', /^carol left\nEXIT=0$/m);
  });

  it('/quit and Ctrl-D both leave politely with exit 0', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lanchat-tty-'));
    start('l2', ['listen', '0', '--host', '127.0.0.1', '--nick', 'bob', '--keep'], dir);
    const [, port] = await waitForScreen('l2', /listening on 127\.0\.0\.1:(\d+)/);
    start('c2', ['connect', '127.0.0.1', port, '--nick', 'alice'], dir);
    await waitForScreen('c2', /^alice>\s*$/m);
    tmux('send-keys', '-t', 'c2', '/quit', 'Enter');
    await waitForScreen('c2', /^EXIT=0$/m);
    await waitForScreen('l2', /^alice left$/m);
    tmux('kill-session', '-t', 'c2');
    start('c3', ['connect', '127.0.0.1', port, '--nick', 'dave'], dir);
    await waitForScreen('c3', /^dave>\s*$/m);
    tmux('send-keys', '-t', 'c3', 'C-d');
    await waitForScreen('c3', /^EXIT=0$/m);
    await waitForScreen('l2', /^dave left$/m);
    // Typed while nobody is connected: dropped with a word, never sent to the next peer.
    tmux('send-keys', '-t', 'l2', 'meant for dave', 'Enter');
    await waitForScreen('l2', /^lanchat: nobody is connected yet; that was not sent$/m);
    // Ctrl-C at a --keep listener's prompt ends the listener, not just the session.
    start('c4', ['connect', '127.0.0.1', port, '--nick', 'erin'], dir);
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

    saveNick(dir); // else the menu asks for one first (see test/menu.test.ts)
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
    tmux('send-keys', '-t', 'add', port, 'Enter');
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
    execFileSync(process.execPath, [CLI, 'contacts', 'add', '--', '-V', '127.0.0.1', port], { env: { ...process.env, LANCHAT_HOME: dir } });
    saveNick(dir); // else the menu asks for one first (see test/menu.test.ts)
    start('dash', [], dir);
    await waitForScreen('dash', /choose 1, 2, 3 or q:\s*$/m);
    tmux('send-keys', '-t', 'dash', '3', 'Enter');
    await waitForScreen('dash', /1\) -V {2}127\.0\.0\.1/);
    tmux('send-keys', '-t', 'dash', '1', 'Enter');
    await waitForScreen('dash', /^connected to bob/m);
    tmux('send-keys', '-t', 'dash', '/quit', 'Enter');
    await waitForScreen('dash', /^EXIT=0$/m);
  });
});

const hasBash = (() => {
  try {
    execFileSync('bash', ['--version']);
    return true;
  } catch {
    return false;
  }
})();

/**
 * Every message once, in order, above the whole draft; the draft once, last.
 * `screenText` is the history with wrapped rows joined (see history()).
 */
function expectMessagesAboveDraft(screenText: string, messages: string[], prompt: string, draft: string): void {
  const lines = screenText.split('\n').filter((line) => line.trim() !== '');
  const at = messages.map((message) => lines.findIndex((line) => line.endsWith(`alice: ${message}`)));
  for (const [i, message] of messages.entries()) {
    expect(
      lines.filter((line) => line.endsWith(`alice: ${message}`)),
      `${message} in:\n${screenText}`,
    ).toHaveLength(1);
    if (i > 0) expect(at[i]).toBeGreaterThan(at[i - 1]);
  }
  expect(
    lines.filter((line) => line.startsWith(prompt)),
    `one draft in:\n${screenText}`,
  ).toEqual([`${prompt}${draft}`]);
  expect(lines.at(-1)).toBe(`${prompt}${draft}`);
}

describe.skipIf(!hasTmux)('a terminal that never loses a message', () => {
  it('messages that arrive while a draft spans several rows all show, once, above the whole draft; also after resizes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lanchat-tty-'));
    start('wide', ['listen', '0', '--host', '127.0.0.1', '--nick', 'bob'], dir, dir, 40);
    const [, port] = await waitForScreen('wide', /listening on 127\.0\.0\.1:(\d+)/);
    const alice = lanchat(['connect', '127.0.0.1', port, '--nick', 'alice'], { env: { LANCHAT_HOME: dir } });
    await waitForScreen('wide', /^bob>\s*$/m);
    const draft = 'abcdefghijklmnopqrstuvwxyz0123456789'.repeat(4).slice(0, 127); // "bob> " + 127: four rows of 40
    tmux('send-keys', '-t', 'wide', '-l', draft);
    await waitForScreen('wide', new RegExp(`^bob> ${draft}$`, 'm'), 5000, history);

    // One at a time: each redraw must start where the draft starts, not one row up.
    const messages: string[] = [];
    for (const n of [1, 2, 3, 4]) {
      messages.push(`incoming message ${n}`);
      alice.child.stdin!.write(`incoming message ${n}\n`);
      await waitForScreen('wide', new RegExp(`alice: incoming message ${n}\n`), 5000, history);
    }
    expectMessagesAboveDraft(history('wide'), messages, 'bob> ', draft);

    // The cursor in the middle of the draft (on its second row).
    tmux('send-keys', '-t', 'wide', ...Array<string>(80).fill('Left'));
    messages.push('while the cursor is inside');
    alice.child.stdin!.write(`${messages.at(-1)}\n`);
    await waitForScreen('wide', /alice: while the cursor is inside\n/, 5000, history);
    expectMessagesAboveDraft(history('wide'), messages, 'bob> ', draft);

    for (const width of [25, 70]) {
      await resizeWindow('wide', width);
      messages.push(`after a resize to ${width}`, `and another at ${width}`);
      alice.child.stdin!.write(`${messages.at(-2)}\n${messages.at(-1)}\n`);
      await waitForScreen('wide', new RegExp(`alice: and another at ${width}\\n`), 5000, history);
      expectMessagesAboveDraft(history('wide'), messages, 'bob> ', draft);
    }

    // The draft is still whole, with the cursor where it was: what is typed lands there, also a
    // paste (readline takes several characters at once another way).
    tmux('send-keys', '-t', 'wide', '-l', '!?');
    tmux('send-keys', '-t', 'wide', 'Enter');
    const sent = `${draft.slice(0, 47)}!?${draft.slice(47)}\n`;
    await alice.waitForStdout(Buffer.byteLength(sent));
    expect(alice.stdout().toString()).toBe(sent);
    alice.child.stdin!.end();
    await waitForScreen('wide', /^alice left\nEXIT=0$/m);
  });

  it.skipIf(!hasBash).each([
    ['run by itself', (command: string) => command],
    // As under npx: a parent in the same job (here a subshell) must stop too, or the shell waits for it forever.
    ['run by a parent in its job', (command: string) => `(${command}; echo "EXIT=$?")`],
  ])('after Ctrl-Z and fg (%s) the keyboard works at once, the draft is back, and Ctrl-C still leaves', async (_how, wrap) => {
    const dir = mkdtempSync(join(tmpdir(), 'lanchat-tty-'));
    const bob = await listener(['--nick', 'bob'], { env: { LANCHAT_HOME: dir } });
    const name = `job-${_how.length}`;
    startShell(name, 'bash --norc --noprofile -i', dir);
    tmux('send-keys', '-t', name, '-l', wrap(lanchatCommand(['connect', '127.0.0.1', String(bob.port), '--nick', 'alice'])));
    tmux('send-keys', '-t', name, 'Enter');
    await waitForScreen(name, /^alice>\s*$/m);
    tmux('send-keys', '-t', name, '-l', 'draft');
    await waitForScreen(name, /^alice> draft$/m);

    tmux('send-keys', '-t', name, 'C-z');
    await waitForScreen(name, /Stopped/);
    tmux('send-keys', '-t', name, 'fg', 'Enter');
    await waitForScreen(name, /\bfg\n(.*\n)*alice> draft\s*$/, 5000, history);
    tmux('send-keys', '-t', name, '-l', ' and more');
    tmux('send-keys', '-t', name, 'Enter');
    await bob.waitForStdout('draft and more\n'.length);
    expect(bob.stdout().toString()).toBe('draft and more\n');

    tmux('send-keys', '-t', name, 'C-c');
    await bob.waitForStderr(/^alice left$/m);
    if (!_how.includes('parent')) tmux('send-keys', '-t', name, 'echo "EXIT=$?"', 'Enter');
    await waitForScreen(name, /^EXIT=130$/m);
    tmux('kill-session', '-t', name);
  });

  it('closing the window (the terminal gone, no SIGHUP for lanchat) still says goodbye, drops the draft, and exits 129', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lanchat-tty-'));
    const bob = await listener(['--nick', 'bob'], { env: { LANCHAT_HOME: dir } });
    const errors = join(dir, 'alice.err');
    const code = join(dir, 'alice.code');
    // sh ignores the hang-up, to write down lanchat's exit code once the terminal is gone.
    const command = lanchatCommand(['connect', '127.0.0.1', String(bob.port), '--nick', 'alice']);
    startShell('closing', `trap '' HUP; ${command} 2>'${errors}'; echo $? >'${code}'`, dir);
    await waitForScreen('closing', /^alice>\s*$/m);
    tmux('send-keys', '-t', 'closing', '-l', 'half a thought');
    await waitForScreen('closing', /^alice> half a thought$/m);
    tmux('kill-session', '-t', 'closing');

    await bob.waitForStderr(/^alice left$/m);
    expect(bob.stderr()).not.toMatch(/without saying goodbye/);
    expect((await bob.exited).code).toBe(0);
    expect(bob.stdout().toString()).toBe(''); // Enter was never pressed
    await waitFor(() => existsSync(code) && readFileSync(code, 'utf8').endsWith('\n'), `${code} to be written`);
    expect(readFileSync(code, 'utf8')).toBe('129\n');
    expect(readFileSync(errors, 'utf8')).not.toMatch(/error|assertion/i);
  });

  it.skipIf(!hasBash)('closing the window of an interactive shell (SIGHUP and the terminal gone together) still says goodbye', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lanchat-tty-'));
    const bob = await listener(['--nick', 'bob'], { env: { LANCHAT_HOME: dir } });
    startShell('hangup', 'bash --norc --noprofile -i', dir);
    tmux('send-keys', '-t', 'hangup', '-l', lanchatCommand(['connect', '127.0.0.1', String(bob.port), '--nick', 'alice']));
    tmux('send-keys', '-t', 'hangup', 'Enter');
    await waitForScreen('hangup', /^alice>\s*$/m);
    tmux('send-keys', '-t', 'hangup', '-l', 'half a thought');
    await waitForScreen('hangup', /^alice> half a thought$/m);
    tmux('kill-session', '-t', 'hangup'); // bash passes the SIGHUP on to its job

    await bob.waitForStderr(/^alice left$/m);
    expect(bob.stderr()).not.toMatch(/without saying goodbye/);
    expect((await bob.exited).code).toBe(0);
    expect(bob.stdout().toString()).toBe('');
  });

  /** Two keyboards, a listener `<name>-b` (bobby) and its connector `<name>-a` (alice), at the prompt. */
  async function pair(name: string): Promise<[string, string]> {
    const dir = mkdtempSync(join(tmpdir(), 'lanchat-tty-'));
    start(`${name}-b`, ['listen', '0', '--host', '127.0.0.1', '--nick', 'bobby'], dir);
    const [, port] = await waitForScreen(`${name}-b`, /listening on 127\.0\.0\.1:(\d+)/);
    start(`${name}-a`, ['connect', '127.0.0.1', port, '--nick', 'alice'], dir);
    await waitForScreen(`${name}-a`, /^alice>\s*$/m);
    return [`${name}-a`, `${name}-b`];
  }

  it("your sent lines are shown as the peer's are, with the time, in place of their echo", async () => {
    const [alice] = await pair('own');
    tmux('send-keys', '-t', alice, 'hello', 'Enter');
    await waitForScreen(alice, /^\[\d\d:\d\d\] alice: hello\nalice>\s*$/m);
    // A line that wraps is replaced whole: no row of its echo is left behind.
    tmux('send-keys', '-t', alice, 'y'.repeat(150), 'Enter');
    await waitForScreen(alice, /^\[\d\d:\d\d\] alice: y{85}\ny{65}\nalice>\s*$/m);
    expect(history(alice)).not.toMatch(/alice> (hello|y)/);
  });

  it("Tab completes the peer's nick and slash commands", async () => {
    const [alice, bobby] = await pair('tab');
    tmux('send-keys', '-t', alice, 'hi bo');
    await waitForScreen(alice, /alice> hi bo$/m);
    tmux('send-keys', '-t', alice, 'Tab');
    await waitForScreen(alice, /alice> hi bobby$/m);
    tmux('send-keys', '-t', alice, 'Enter');
    await waitForScreen(bobby, /^\[\d\d:\d\d\] alice: hi bobby$/m);
    tmux('send-keys', '-t', alice, '/wh');
    await waitForScreen(alice, /^alice> \/wh$/m);
    tmux('send-keys', '-t', alice, 'Tab');
    await waitForScreen(alice, /^alice> \/who$/m);
    tmux('send-keys', '-t', alice, 'Enter');
    await waitForScreen(alice, /^talking to bobby at /m);
  });

  it('a half-typed line cut off by the peer leaving stays on the screen, with a notice', async () => {
    const [alice, bobby] = await pair('draft');
    tmux('send-keys', '-t', alice, 'half typed');
    await waitForScreen(alice, /^alice> half typed$/m);
    tmux('send-keys', '-t', bobby, '/quit', 'Enter');
    await waitForScreen(alice, /^alice> half typed\nnot sent \(the session ended\): "half typed"\nbobby left\nEXIT=0$/m);
  });

  it('at a --keep listener with nobody connected, /nick and /who work and /quit stops listening with exit 0', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lanchat-tty-'));
    start('idle', ['listen', '0', '--host', '127.0.0.1', '--nick', 'bob', '--keep'], dir);
    const [, port] = await waitForScreen('idle', /listening on 127\.0\.0\.1:(\d+)/);
    tmux('send-keys', '-t', 'idle', '/nick zed', 'Enter');
    await waitForScreen('idle', /^you are now zed$/m);
    tmux('send-keys', '-t', 'idle', '/who', 'Enter');
    await waitForScreen('idle', new RegExp(`^nobody is connected yet; listening on 127\\.0\\.0\\.1:${port} as zed$`, 'm'));

    const alice = lanchat(['connect', '127.0.0.1', port, '--nick', 'alice'], { env: { LANCHAT_HOME: dir } });
    await alice.waitForStderr(/^connected to zed /m);
    alice.child.stdin!.end();
    await waitForScreen('idle', /^alice left\nlistening on /m);
    tmux('send-keys', '-t', 'idle', '/quit', 'Enter');
    await waitForScreen('idle', /^EXIT=0$/m);
  });
});

/**
 * Resizes a window and waits until its terminal says so: tmux re-wraps the
 * screen at once but may tell the terminal (and so the program) a moment later,
 * and no program can place its output right in between.
 */
async function resizeWindow(name: string, width: number): Promise<void> {
  tmux('resize-window', '-t', name, '-x', String(width));
  const terminal = tmux('display', '-p', '-t', name, '#{pane_tty}').trim();
  await waitFor(
    () => execFileSync('stty', ['-F', terminal, 'size'], { encoding: 'utf8' }).trim().endsWith(` ${width}`),
    `${terminal} to be ${width} wide`,
  );
}

async function waitFor(ready: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ready()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe.skipIf(!hasTmux)('a room in terminals', () => {
  it('a host and a member at keyboards with a netcat member: drafts survive, /msg is private, /kick, Ctrl-C closes the room', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lanchat-tty-room-'));
    const bobHome = mkdtempSync(join(tmpdir(), 'lanchat-tty-bob-'));
    start('host', ['listen', '0', '--host', '127.0.0.1', '--room', 'dev', '--nick', 'alice'], dir);
    const [, port] = await waitForScreen('host', /listening on 127\.0\.0\.1:(\d+) \(room dev\)/);
    start('member', ['connect', '127.0.0.1', port, '--nick', 'bob'], dir, bobHome);
    await waitForScreen('member', /^joined alice's room "dev" at 127\.0\.0\.1:\d+ — here: alice \(you are bob\)$/m);
    await waitForScreen('host', /^bob joined \(127\.0\.0\.1:\d+; a key not known here/m);

    const nc = await rawPeer(Number(port));
    let ncRead = '';
    nc.setEncoding('utf8').on('data', (chunk: string) => (ncRead += chunk));
    await waitForScreen('host', /^guest1 joined \(127\.0\.0\.1:\d+; plain text, not encrypted\)$/m);
    await waitForScreen('member', /^guest1 joined$/m);
    // Tab completes a member's nick, at a member and at the host.
    tmux('send-keys', '-t', 'member', 'gu');
    await waitForScreen('member', /^bob> gu$/m);
    tmux('send-keys', '-t', 'member', 'Tab');
    await waitForScreen('member', /^bob> guest1$/m);
    tmux('send-keys', '-t', 'member', 'C-u');
    await waitForScreen('member', /^bob>\s*$/m);
    tmux('send-keys', '-t', 'host', 'b');
    await waitForScreen('host', /^alice> b$/m);
    tmux('send-keys', '-t', 'host', 'Tab');
    await waitForScreen('host', /^alice> bob$/m);
    tmux('send-keys', '-t', 'host', 'C-u');
    await waitForScreen('host', /^alice>\s*$/m);
    // /who NICK at the host: the member's whole key, on a line of its own.
    tmux('send-keys', '-t', 'host', '/who bob', 'Enter');
    await waitForScreen('host', /^bob at 127\.0\.0\.1:\d+ \(a key not known here\), since .*\nkey:\n {2}([0-9A-F]{2}:){31}[0-9A-F]{2}$/m);

    // A line arriving while bob types is written above his draft, which stays whole.
    tmux('send-keys', '-t', 'member', 'half');
    await waitForScreen('member', /^bob> half$/m);
    nc.write('from nc ✓\n');
    await waitForScreen('member', /guest1: from nc ✓\nbob> half$/m);
    tmux('send-keys', '-t', 'member', ' done', 'Enter');
    await waitForScreen('host', /^\[\d\d:\d\d\] bob: half done$/m);
    await vi.waitFor(() => expect(ncRead).toContain('bob: half done\n'), { timeout: 5000 });

    tmux('send-keys', '-t', 'host', '/msg bob just you', 'Enter');
    await waitForScreen('member', /^\[\d\d:\d\d\] alice \(private\): just you$/m);
    tmux('send-keys', '-t', 'host', 'to all', 'Enter');
    await vi.waitFor(() => expect(ncRead).toContain('alice: to all\n'), { timeout: 5000 });
    expect(ncRead).not.toContain('just you');

    tmux('send-keys', '-t', 'host', '/kick guest1 spam', 'Enter');
    await waitForScreen('member', /^guest1 left \(kicked by alice: spam\)$/m);
    await vi.waitFor(() => expect(ncRead).toContain('* kicked by alice: spam\n'), { timeout: 5000 });
    await waitForScreen('host', /^guest1 left \(kicked by alice: spam\)$/m);

    tmux('send-keys', '-t', 'host', 'C-c');
    await waitForScreen('host', /^EXIT=130$/m);
    await waitForScreen('member', /alice closed the room/);
    await waitForScreen('member', /^EXIT=\d+$/m);
  }, 60_000);
});
