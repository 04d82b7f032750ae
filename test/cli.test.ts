// The built CLI, spawned as a user or a script would run it, over 127.0.0.1.
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CLI, awkwardText, fileInput, freePort, killAll, lanchat, listener, spawnProc } from './cli-helpers.js';

afterEach(killAll);

const tmp = (): string => mkdtempSync(join(tmpdir(), 'lanchat-test-'));
const seqText = (n: number): string => Array.from({ length: n }, (_, i) => `${i + 1}\n`).join('');

describe('piping', () => {
  it('delivers 12,000 awkward lines byte-identical and both sides exit 0', async () => {
    const input = awkwardText(12_000);
    const listen = await listener();
    const fd = fileInput(input);
    const connect = lanchat(['connect', '127.0.0.1', String(listen.port)], { stdin: fd });
    closeSync(fd);
    expect(await connect.exited).toEqual({ code: 0, signal: null });
    expect(await listen.exited).toEqual({ code: 0, signal: null });
    expect(listen.stdout().equals(input)).toBe(true);
    expect(listen.stderr()).toMatch(/^connected to \S+ \(127\.0\.0\.1:\d+\)$/m);
    expect(connect.stderr()).toMatch(/^connected to \S+ \(127\.0\.0\.1:\d+\)$/m);
  });

  it.each([[[]], [['--insecure']]])(
    'output to a file (> log.txt) is byte-identical both ways %j, all of it written before exit',
    async (args: string[]) => {
      // Awkward lines, then numbered ones: several MB, so that batches of many pieces reach the file.
      const numbered = Array.from({ length: 60_000 }, (_, i) => `${String(i).padStart(7, '0')} ${'f'.repeat(91)}\n`).join('');
      const [toListener, toConnector] = [Buffer.concat([awkwardText(3000), Buffer.from(numbered)]), Buffer.from(numbered + seqText(500))];
      const dir = tmp();
      const [listenLog, connectLog] = [join(dir, 'listen.log'), join(dir, 'connect.log')];
      const listenOut = openSync(listenLog, 'w');
      const listenIn = fileInput(toConnector);
      const listen = await listener(args, { stdin: listenIn, stdout: listenOut });
      const connectOut = openSync(connectLog, 'w');
      const connectIn = fileInput(toListener);
      const connect = lanchat(['connect', '127.0.0.1', String(listen.port), ...args], { stdin: connectIn, stdout: connectOut });
      for (const fd of [listenOut, listenIn, connectOut, connectIn]) closeSync(fd);
      expect(await connect.exited).toEqual({ code: 0, signal: null });
      expect(await listen.exited).toEqual({ code: 0, signal: null });
      expect(readFileSync(listenLog).equals(toListener)).toBe(true);
      expect(readFileSync(connectLog).equals(toConnector)).toBe(true);
    },
  );

  it('--commands with a large file keeps up: runs of lines go as one message, and the peer is still heard', async () => {
    // 200,000 lines with actions and escaped slashes among them; the listener has lines of its own, whose
    // acks the connector must read while it sends (it once sent a frame per line without a turn of the event loop).
    const lines = Array.from({ length: 200_000 }, (_, i) =>
      i % 97 === 0 ? `/me waves ${i}` : i % 89 === 0 ? `//slash ${i}` : `line ${i} ${'c'.repeat(i % 70)}`,
    );
    const expected =
      lines.map((line) => (line.startsWith('/me ') ? `* con ${line.slice(4)}` : line.startsWith('//') ? line.slice(1) : line)).join('\n') +
      '\n';
    const listenIn = fileInput('one\ntwo\nthree\n');
    const listen = await listener(['--insecure'], { stdin: listenIn });
    const connectIn = fileInput(lines.join('\n') + '\n');
    const connect = lanchat(['connect', '127.0.0.1', String(listen.port), '--insecure', '--commands', '--nick', 'con'], {
      stdin: connectIn,
    });
    closeSync(listenIn);
    closeSync(connectIn);
    expect(await connect.exited).toEqual({ code: 0, signal: null });
    expect(await listen.exited).toEqual({ code: 0, signal: null });
    expect(listen.stdout().toString()).toBe(expected);
    expect(connect.stdout().toString()).toBe('one\ntwo\nthree\n');
  });

  it('a listener whose stdin is empty still receives everything (receive only, like nc < /dev/null)', async () => {
    const listen = await listener([], { stdin: 'ignore' });
    const fd = fileInput('one\ntwo\n');
    const connect = lanchat(['connect', '127.0.0.1', String(listen.port), '--nick', 'alice'], { stdin: fd });
    closeSync(fd);
    expect((await connect.exited).code).toBe(0);
    expect((await listen.exited).code).toBe(0);
    expect(listen.stdout().toString()).toBe('one\ntwo\n');
    expect(listen.stderr()).toMatch(/^alice left$/m);
  });

  it('the listener can be the sender: its file reaches a connector with empty stdin', async () => {
    const fd = fileInput('from the listener\n');
    const listen = await listener(['--nick', 'bob'], { stdin: fd });
    closeSync(fd);
    const connect = lanchat(['connect', '127.0.0.1', String(listen.port)], { stdin: 'ignore' });
    expect((await connect.exited).code).toBe(0);
    expect((await listen.exited).code).toBe(0);
    expect(connect.stdout().toString()).toBe('from the listener\n');
    expect(connect.stderr()).toMatch(/^bob left$/m);
  });

  it('json format writes one object per event, with the exact text', async () => {
    const listen = await listener(['--format', 'json']);
    const fd = fileInput('hi \x1b[1m\n');
    const connect = lanchat(['connect', '127.0.0.1', String(listen.port), '--nick', 'alice'], { stdin: fd });
    closeSync(fd);
    expect((await listen.exited).code).toBe(0);
    await connect.exited;
    const events = listen
      .stdout()
      .toString()
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(events.map((e) => e.type)).toEqual(['join', 'message', 'leave']);
    expect(events[1]).toEqual({ type: 'message', nick: 'alice', text: 'hi \x1b[1m', time: expect.any(String) });
  });

  it('a line over --max-line is not sent: the run stops with exit 1 and says so', async () => {
    const listen = await listener();
    const fd = fileInput('short\nthis line is far too long\nafter\n');
    const connect = lanchat(['connect', '127.0.0.1', String(listen.port), '--max-line', '10'], { stdin: fd });
    closeSync(fd);
    expect((await connect.exited).code).toBe(1);
    expect(connect.stderr()).toMatch(/longer than 10 bytes/);
    // The goodbye says the input was cut short: the receiver does not claim it has it all.
    expect((await listen.exited).code).toBe(1);
    expect(listen.stderr()).toMatch(/^lanchat: \S+ stopped before the end of its input/m);
    expect(listen.stdout().toString()).toBe('short\n');
  });

  it('the connector honours the listener’s smaller line limit, learnt from its hello', async () => {
    const listen = await listener(['--max-line', '8']);
    const fd = fileInput('ok\n123456789\n');
    const connect = lanchat(['connect', '127.0.0.1', String(listen.port)], { stdin: fd });
    closeSync(fd);
    expect((await connect.exited).code).toBe(1);
    expect(connect.stderr()).toMatch(/longer than 8 bytes/);
    expect((await listen.exited).code).toBe(1);
    expect(listen.stdout().toString()).toBe('ok\n');
  });
});

describe('slash commands in a pipe (--commands)', () => {
  it('a nick change is seen by the peer', async () => {
    const listen = await listener(['--format', 'json']);
    const fd = fileInput('hello\n/nick carol\nagain\n');
    const connect = lanchat(['connect', '127.0.0.1', String(listen.port), '--nick', 'alice', '--commands'], { stdin: fd });
    closeSync(fd);
    expect((await connect.exited).code).toBe(0);
    expect((await listen.exited).code).toBe(0);
    expect(listen.stderr()).toMatch(/^alice is now carol$/m);
    const messages = listen
      .stdout()
      .toString()
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line))
      .filter((e) => e.type === 'message');
    expect(messages.map((m) => [m.nick, m.text])).toEqual([
      ['alice', 'hello'],
      ['carol', 'again'],
    ]);
  });

  it('/save writes the transcript, never overwrites, and //text sends a slash', async () => {
    const dir = tmp();
    const listen = await listener(['--nick', 'bob']);
    const fd = fileInput('one\n//two\n/me waves\n/save chat.txt\n/save chat.txt\n/bogus\n');
    const connect = lanchat(['connect', '127.0.0.1', String(listen.port), '--nick', 'alice', '--commands'], { stdin: fd, cwd: dir });
    closeSync(fd);
    expect((await connect.exited).code).toBe(0);
    await listen.exited;
    expect(listen.stdout().toString()).toBe('one\n/two\n* alice waves\n');
    const saved = readFileSync(join(dir, 'chat.txt'), 'utf8');
    expect(saved).toMatch(/^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] -- connected to bob \(127\.0\.0\.1:\d+\)\n/);
    expect(saved).toMatch(/\] alice: one\n.*\] alice: \/two\n.*\] \* alice waves\n$/s);
    expect(connect.stderr()).toMatch(/saved 4 lines to .*chat\.txt/);
    expect(connect.stderr()).toMatch(/chat\.txt exists; nothing saved/);
    expect(connect.stderr()).toMatch(/unknown command \/bogus/);
  });
});

describe('real peers', () => {
  // Peers nobody here wrote: each as a connector to `lanchat listen`, and as a plain listener for `connect --raw`.
  const connectors: Array<[string, (port: number) => [string, string[]]]> = [
    ['OpenBSD nc', (port) => ['nc', ['-N', '127.0.0.1', String(port)]]],
    ['socat', (port) => ['socat', ['-', `TCP:127.0.0.1:${port}`]]],
  ];
  const listeners: Array<[string, (port: number) => [string, string[]]]> = [
    ['nc -l', (port) => ['nc', ['-l', '127.0.0.1', String(port)]]],
    ['socat', (port) => ['socat', [`TCP-LISTEN:${port},bind=127.0.0.1,reuseaddr`, '-']]],
  ];

  it.each(connectors)('%s as connector: its lines arrive exactly, ours reach it as plain lines', async (_name, command) => {
    const listen = await listener();
    const input = awkwardText(2000);
    const peer = spawnProc(...command(listen.port));
    peer.child.stdin!.write(input);
    await listen.waitForStdout(input.length);
    expect(listen.stderr()).toMatch(/^connected to 127\.0\.0\.1:\d+ \(plain text/m);
    listen.child.stdin!.write('reply from lanchat\n');
    await peer.waitForStdout('reply from lanchat\n'.length);
    peer.child.stdin!.end();
    expect((await listen.exited).code).toBe(0);
    await peer.exited;
    expect(listen.stdout().equals(input)).toBe(true);
    expect(peer.stdout().toString()).toBe('reply from lanchat\n');
  });

  it.each(listeners)('lanchat connect --raw talks plain lines to %s, both ways', async (_name, command) => {
    const port = await freePort();
    const peer = spawnProc(...command(port));
    peer.child.stdin!.write('hello from the peer\n');
    const input = awkwardText(1500);
    const connect = lanchat(['connect', '--raw', '--retry', '5', '127.0.0.1', String(port)], { stdin: fileInput(input) });
    await connect.waitForStdout('hello from the peer\n'.length);
    await peer.waitForStdout(input.length);
    peer.child.stdin!.end();
    expect((await connect.exited).code).toBe(0);
    await peer.exited;
    expect(peer.stdout().equals(input)).toBe(true);
    expect(connect.stdout().toString()).toBe('hello from the peer\n');
  });
});

describe('errors and endings', () => {
  it('a refused connection is one line on stderr and exit 1', async () => {
    const port = await freePort();
    const connect = lanchat(['connect', '127.0.0.1', String(port)], { stdin: 'ignore' });
    expect((await connect.exited).code).toBe(1);
    expect(connect.stderr()).toBe(`lanchat: connection refused by 127.0.0.1:${port} (is lanchat listening there?)\n`);
  });

  it.each([
    [['listen', '70000']],
    [['listen', 'abc']],
    [['listen']],
    [['connect', '127.0.0.1']],
    [['connect', '127.0.0.1', '0']],
    [['connect', '127.0.0.1', '5000', '--bogus']],
    [['listen', '0', '--nick', 'two words']],
    [['listen', '0', '--format', 'html']],
    [['connect', '127.0.0.1', '5000', '--timeout', 'soon']],
    [['connect', '127.0.0.1', '5000', '--alive', '0.5']],
    [['listen', '0', '--alive', 'never']],
    [['frobnicate']],
  ])('usage error %j: exit 2, a lanchat: line and a hint, no stack trace', async (args) => {
    const proc = lanchat(args, { stdin: 'ignore' });
    expect((await proc.exited).code).toBe(2);
    expect(proc.stderr()).toMatch(
      new RegExp(`^lanchat: .+\\n\\(see lanchat${args[0] === 'frobnicate' ? '' : ` ${args[0]}`} --help\\)\\n$`),
    );
    expect(proc.stdout().length).toBe(0);
  });

  it('an invalid LANCHAT_NICK is a usage error', async () => {
    const proc = lanchat(['listen', '0'], { stdin: 'ignore', env: { LANCHAT_NICK: 'bad nick' } });
    expect((await proc.exited).code).toBe(2);
    expect(proc.stderr()).toBe(
      'lanchat: LANCHAT_NICK is not a valid nick (1 to 32 characters, no spaces or control characters)\n(see lanchat listen --help)\n',
    );
  });

  it('a peer killed with SIGKILL makes the other side exit 1 within 2 s with a clear line', async () => {
    const listen = await listener();
    const connect = lanchat(['connect', '127.0.0.1', String(listen.port), '--nick', 'alice']);
    await listen.waitForStderr(/connected to alice/);
    const killedAt = Date.now();
    connect.child.kill('SIGKILL');
    expect((await listen.exited).code).toBe(1);
    expect(Date.now() - killedAt).toBeLessThan(2000);
    expect(listen.stderr()).toMatch(/^lanchat: the connection (closed|was reset): alice left without saying goodbye$/m);
  });

  it.each([
    ['SIGINT', 130],
    ['SIGHUP', 129],
  ] as const)('%s says goodbye: exit %i, and the peer sees a clean leave', async (signal, code) => {
    const listen = await listener();
    const connect = lanchat(['connect', '127.0.0.1', String(listen.port), '--nick', 'alice']);
    await connect.waitForStderr(/connected to/);
    connect.child.kill(signal);
    expect((await connect.exited).code).toBe(code);
    expect((await listen.exited).code).toBe(0);
    expect(listen.stderr()).toMatch(/^alice left$/m);
  });

  it('run as installed, the command is node with the flag of its first line (a young generation of 1 MiB: see README, Memory)', async () => {
    const listen = await listener();
    const argv = readFileSync(`/proc/${listen.child.pid}/cmdline`, 'utf8').split('\0');
    expect(argv.slice(0, 3)).toEqual(['node', '--max-semi-space-size=1', CLI]);
    listen.child.kill('SIGTERM');
    expect((await listen.exited).code).toBe(143);
  });

  it('SIGTERM on a waiting listener exits 143', async () => {
    const listen = await listener();
    listen.child.kill('SIGTERM');
    expect((await listen.exited).code).toBe(143);
  });

  it('a second connection during a session is refused with one line and does not disturb the chat', async () => {
    const listen = await listener();
    const first = lanchat(['connect', '127.0.0.1', String(listen.port), '--nick', 'alice']);
    await listen.waitForStderr(/connected to alice/);
    const second = lanchat(['connect', '127.0.0.1', String(listen.port), '--nick', 'mallory']);
    expect((await second.exited).code).toBe(1);
    expect(second.stderr()).toMatch(/^lanchat: the peer refused: busy/m);
    expect(listen.stderr()).toMatch(/^refused 127\.0\.0\.1:\d+: already in a chat$/m);
    first.child.stdin!.end('still here\n');
    expect((await first.exited).code).toBe(0);
    expect((await listen.exited).code).toBe(0);
    expect(listen.stdout().toString()).toBe('still here\n');
  });

  it('--retry waits for a listener that is not up yet', async () => {
    const port = await freePort();
    const connect = lanchat(['connect', '127.0.0.1', String(port), '--retry', '10'], { stdin: 'pipe' });
    await connect.waitForStderr(/retrying \(1\/10\)/);
    const listen = lanchat(['listen', String(port), '--host', '127.0.0.1']);
    await listen.waitForStderr(/connected to/);
    connect.child.stdin!.end('made it\n');
    expect((await connect.exited).code).toBe(0);
    expect((await listen.exited).code).toBe(0);
    expect(listen.stdout().toString()).toBe('made it\n');
  });

  it('--keep serves one peer after another', async () => {
    const listen = await listener(['--keep']);
    for (const word of ['first', 'second']) {
      const fd = fileInput(`${word}\n`);
      const connect = lanchat(['connect', '127.0.0.1', String(listen.port)], { stdin: fd });
      closeSync(fd);
      expect((await connect.exited).code).toBe(0);
    }
    await listen.waitForStdout('first\nsecond\n'.length);
    expect(listen.stdout().toString()).toBe('first\nsecond\n');
    listen.child.kill('SIGINT');
    expect((await listen.exited).code).toBe(130);
  });

  it('connects by host name (localhost)', async () => {
    const listen = await listener();
    const fd = fileInput('by name\n');
    const connect = lanchat(['connect', 'localhost', String(listen.port)], { stdin: fd });
    closeSync(fd);
    expect((await connect.exited).code).toBe(0);
    expect((await listen.exited).code).toBe(0);
    expect(listen.stdout().toString()).toBe('by name\n');
  });

  it.each([
    ['the TLS handshake', [], /^lanchat: no TLS handshake within 0\.5 s \(is lanchat listening there\? for netcat use --raw\)$/m],
    ['the hello (--insecure)', ['--insecure'], /^lanchat: the peer did not answer as a lanchat listener \(for netcat, use --raw\)$/m],
  ])('gives up on a server that never answers %s, with exit 1 and a hint', async (_, flags, message) => {
    const server = createServer(() => {}); // accepts, says nothing
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    try {
      const connect = lanchat(['connect', '127.0.0.1', String(port), '--timeout', '0.5', ...flags], { stdin: 'ignore' });
      expect((await connect.exited).code).toBe(1);
      expect(connect.stderr()).toMatch(message);
    } finally {
      server.close();
    }
  });

  it('--log appends the conversation as it happens', async () => {
    const log = join(tmp(), 'chat.log');
    writeFileSync(log, 'earlier\n');
    const listen = await listener(['--log', log, '--nick', 'bob']);
    const fd = fileInput('first\nsecond\n');
    const connect = lanchat(['connect', '127.0.0.1', String(listen.port), '--nick', 'alice'], { stdin: fd });
    closeSync(fd);
    expect((await connect.exited).code).toBe(0);
    expect((await listen.exited).code).toBe(0);
    expect(readFileSync(log, 'utf8')).toMatch(
      /^earlier\n\[[^\]]+\] -- connected to alice \(127\.0\.0\.1:\d+\)\n\[[^\]]+\] alice: first\n\[[^\]]+\] alice: second\n\[[^\]]+\] -- alice left\n$/,
    );
  });

  it('talks over IPv6 loopback', async () => {
    const listen = lanchat(['listen', '0', '--host', '::1']);
    const match = await listen.waitForStderr(/^listening on \[::1\]:(\d+)$/m);
    const fd = fileInput('over v6\n');
    const connect = lanchat(['connect', '::1', match[1]], { stdin: fd });
    closeSync(fd);
    expect((await connect.exited).code).toBe(0);
    expect((await listen.exited).code).toBe(0);
    expect(listen.stdout().toString()).toBe('over v6\n');
    expect(connect.stderr()).toMatch(/\(\[::1\]:\d+\)/);
  });
});

describe('endings when both sides have something to say', () => {
  it.each([
    [300_000, 10],
    [100, 10],
    [10, 300_000],
  ])('listener pipes %i lines, connector %i: both get everything and exit 0', async (listenerLines, connectorLines) => {
    const fromListener = seqText(listenerLines);
    const fromConnector = seqText(connectorLines);
    const fd = fileInput(fromListener);
    const listen = await listener([], { stdin: fd });
    closeSync(fd);
    const fd2 = fileInput(fromConnector);
    const connect = lanchat(['connect', '127.0.0.1', String(listen.port)], { stdin: fd2 });
    closeSync(fd2);
    expect((await connect.exited).code).toBe(0);
    expect((await listen.exited).code).toBe(0);
    expect(connect.stdout().toString()).toBe(fromListener);
    expect(listen.stdout().toString()).toBe(fromConnector);
  });

  it('a side whose peer finished first sends all its input, however long its socket stays full', async () => {
    // The connector has nothing to say; the listener sends 20 MB to it while its reader stalls for a second.
    // Numbered lines: the connector reads into reused buffers, and a byte out of place must show.
    const data = Buffer.from(Array.from({ length: 200_000 }, (_, i) => `${String(i).padStart(9, '0')}${'z'.repeat(90)}\n`).join(''));
    const listen = await listener(['--insecure'], { stdin: fileInput(data) });
    const connect = lanchat(['connect', '127.0.0.1', String(listen.port), '--insecure'], { stdin: 'ignore' });
    await connect.waitForStdout(1);
    connect.child.stdout!.pause();
    await new Promise((resolve) => setTimeout(resolve, 1000));
    connect.child.stdout!.resume();
    expect((await connect.exited).code).toBe(0);
    expect((await listen.exited).code).toBe(0);
    expect(connect.stdout().equals(data)).toBe(true);
  });

  it('two sides with empty input both end at once with exit 0', async () => {
    const listen = await listener([], { stdin: 'ignore' });
    const connect = lanchat(['connect', '127.0.0.1', String(listen.port)], { stdin: fileInput('') });
    expect((await connect.exited).code).toBe(0);
    expect((await listen.exited).code).toBe(0);
  });

  it('input of commands only (no lines to send) still ends', async () => {
    const listen = await listener([], { stdin: 'ignore' });
    const connect = lanchat(['connect', '127.0.0.1', String(listen.port), '--commands'], { stdin: fileInput('/nick carol\n') });
    expect((await connect.exited).code).toBe(0);
    expect((await listen.exited).code).toBe(0);
    expect(listen.stderr()).toMatch(/is now carol/);
  });

  it('a listener whose stdout refuses the text never acknowledges it: the sender exits 1', async () => {
    const sink = spawnProc('sh', ['-c', `node ${CLI} listen 0 --host 127.0.0.1 | true`]);
    const [, port] = await sink.waitForStderr(/listening on 127\.0\.0\.1:(\d+)/);
    const connect = lanchat(['connect', '127.0.0.1', port, '--wait', '2'], { stdin: fileInput('1\n2\n3\n') });
    expect((await connect.exited).code).toBe(1);
    expect(connect.stderr()).toMatch(/lines? not confirmed/);
  });

  it('/save with an absolute path saves there', async () => {
    const target = join(tmp(), 'abs.txt');
    const listen = await listener();
    const connect = lanchat(['connect', '127.0.0.1', String(listen.port), '--commands'], {
      stdin: fileInput(`hi\n/save ${target}\n`),
      cwd: tmp(),
    });
    expect((await connect.exited).code).toBe(0);
    await listen.exited;
    expect(readFileSync(target, 'utf8')).toMatch(/\] \S+: hi\n$/);
  });

  it('SIGTERM ends a listener whose stdout is stalled, promptly, with 143', async () => {
    const stalled = spawnProc('sh', ['-c', `node ${CLI} listen 0 --host 127.0.0.1 | sleep 20`]);
    const [, port] = await stalled.waitForStderr(/listening on 127\.0\.0\.1:(\d+)/);
    const connect = lanchat(['connect', '127.0.0.1', port], { stdin: fileInput(seqText(300_000)) });
    await stalled.waitForStderr(/connected to/);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const pid = Number(
      execFileSync('pgrep', ['-f', `listen 0 --host 127.0.0.1`, '-P', String(stalled.child.pid)], { encoding: 'utf8' }).trim(),
    );
    const at = Date.now();
    process.kill(pid, 'SIGTERM');
    while (Date.now() - at < 3000) {
      try {
        process.kill(pid, 0);
      } catch {
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(Date.now() - at).toBeLessThan(2500);
    connect.child.kill('SIGKILL');
  });
});

describe('plain peers: half-closes, last lines without a newline, bad lines, signals', () => {
  it('nc sends one line and half-closes: it still gets everything the listener pipes', async () => {
    const lines = Array.from({ length: 300_000 }, (_, i) => `${i}\n`).join('');
    const fd = fileInput(lines);
    const listen = await listener([], { stdin: fd });
    closeSync(fd);
    const nc = spawnProc('nc', ['-N', '127.0.0.1', String(listen.port)], { stdin: fileInput('hi\n') });
    expect((await listen.exited).code).toBe(0);
    await nc.exited;
    expect(nc.stdout().toString()).toBe(lines);
    expect(listen.stdout().toString()).toBe('hi\n');
  });

  it('a plain peer’s last line without a newline is still delivered', async () => {
    const listen = await listener([], { stdin: 'ignore' });
    const nc = spawnProc('nc', ['-N', '127.0.0.1', String(listen.port)], { stdin: fileInput('hello') });
    expect((await listen.exited).code).toBe(0);
    await nc.exited;
    expect(listen.stdout().toString()).toBe('hello\n');
  });

  it('good lines before a bad one from a plain peer are delivered, then it is dropped', async () => {
    const listen = await listener(['--max-line', '5'], { stdin: 'ignore' });
    const nc = spawnProc('nc', ['-N', '127.0.0.1', String(listen.port)], { stdin: fileInput('ok1\nok2\ntoolongline\n') });
    expect((await listen.exited).code).toBe(1);
    await nc.exited;
    expect(listen.stdout().toString()).toBe('ok1\nok2\n');
    expect(listen.stderr()).toMatch(/dropped 127\.0\.0\.1:\d+: a line is longer than 5 bytes/);
  });

  it('a signal before a quiet peer is recognised sends it no JSON', async () => {
    const listen = await listener();
    const nc = spawnProc('nc', ['127.0.0.1', String(listen.port)]);
    await new Promise((resolve) => setTimeout(resolve, 300));
    listen.child.kill('SIGINT');
    expect((await listen.exited).code).toBe(130);
    nc.child.stdin!.end();
    await nc.exited;
    expect(nc.stdout().toString()).toBe('');
  });
});

describe('start-up fast paths', () => {
  it('lanchat --help (answered without commander) is exactly what commander prints', async () => {
    const { createProgram } = await import('../src/program.js');
    let printed = '';
    const sink = { write: (text: string) => ((printed += text), true), isTTY: false } as unknown as NodeJS.WriteStream;
    const program = createProgram(
      { stdin: process.stdin, stdout: sink, stderr: sink, cwd: '.', env: {}, signal: new AbortController().signal },
      () => {},
    );
    program.outputHelp();
    const help = lanchat(['--help'], { stdin: 'ignore' });
    expect((await help.exited).code).toBe(0);
    expect(help.stdout().toString()).toBe(printed);
    expect(readFileSync(new URL('../dist/help.txt', import.meta.url), 'utf8')).toBe(printed);
  });

  it('lanchat --version prints the package version', async () => {
    const proc = lanchat(['--version'], { stdin: 'ignore' });
    expect((await proc.exited).code).toBe(0);
    expect(proc.stdout().toString()).toBe(`${JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version}\n`);
  });
});

describe('listening on with --keep, bad nicks in a hello, and an empty host', () => {
  it('listen --keep | head -1 stops listening once its reader is gone', async () => {
    const sink = spawnProc('sh', ['-c', `node ${CLI} listen 0 --host 127.0.0.1 --keep | head -1`]);
    const [, port] = await sink.waitForStderr(/listening on 127\.0\.0\.1:(\d+)/);
    const first = lanchat(['connect', '127.0.0.1', port, '--wait', '2'], { stdin: fileInput(seqText(50_000)) });
    await first.exited;
    expect((await sink.exited).code).not.toBeNull();
    expect(sink.stdout().toString()).toBe('1\n');
  });

  it('with --keep, /save covers the current conversation only', async () => {
    const dir = tmp();
    const listen = await listener(['--keep', '--commands']);
    for (const word of ['first', 'second']) {
      const connect = lanchat(['connect', '127.0.0.1', String(listen.port), '--nick', word], { stdin: fileInput(`${word} says hi\n`) });
      await listen.waitForStdout(0);
      expect((await connect.exited).code).toBe(0);
    }
    const third = lanchat(['connect', '127.0.0.1', String(listen.port), '--nick', 'third']);
    await listen.waitForStderr(/connected to third/);
    third.child.stdin!.write('third says hi\n');
    await listen.waitForStdout('first says hi\nsecond says hi\nthird says hi\n'.length);
    listen.child.stdin!.write(`/save ${join(dir, 'now.txt')}\n`);
    await listen.waitForStderr(/saved \d+ lines? to/);
    const saved = readFileSync(join(dir, 'now.txt'), 'utf8');
    expect(saved).toMatch(/third: third says hi/);
    expect(saved).not.toMatch(/first|second/);
    third.child.stdin!.end();
    await third.exited;
    listen.child.kill('SIGTERM');
  });

  it('a connector tells a listener whose hello carries a bad nick, and says what was wrong', async () => {
    const server = createServer((socket) => {
      socket.once('data', () => socket.write('{"type":"hello","version":1,"nick":"a b","maxLine":100}\n'));
      socket.on('data', (chunk) => received.push(chunk));
    });
    const received: Buffer[] = [];
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const connect = lanchat(['connect', '127.0.0.1', String((server.address() as AddressInfo).port), '--insecure'], { stdin: 'ignore' });
      expect((await connect.exited).code).toBe(1);
      expect(connect.stderr()).toMatch(/^lanchat: dropped 127\.0\.0\.1:\d+: its nick is invalid$/m);
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(Buffer.concat(received).toString()).toMatch(/"type":"error"/);
    } finally {
      server.close();
    }
  });

  it('an empty host is a usage error', async () => {
    const proc = lanchat(['connect', '', '5000'], { stdin: 'ignore' });
    expect((await proc.exited).code).toBe(2);
    expect(proc.stderr()).toMatch(/^lanchat: a host is required/);
  });
});

describe('piped input that ends or quits, --wait, and IPv6 addresses in brackets', () => {
  it('a listener with empty input is a pure receiver: a slow sender gets everything through', async () => {
    const listen = await listener([], { stdin: 'ignore' });
    const sender = spawnProc('sh', [
      '-c',
      `(echo one; sleep 0.5; echo two; sleep 0.5; echo three) | node ${CLI} connect 127.0.0.1 ${listen.port}`,
    ]);
    expect((await sender.exited).code).toBe(0);
    expect((await listen.exited).code).toBe(0);
    expect(listen.stdout().toString()).toBe('one\ntwo\nthree\n');
  });

  it('/quit in a pipe waits for confirmation: exit 0; the receiver learns the input was cut short', async () => {
    const listen = await listener();
    const connect = lanchat(['connect', '127.0.0.1', String(listen.port), '--commands'], { stdin: fileInput('hi\n/quit\nnot sent\n') });
    expect((await connect.exited).code).toBe(0);
    expect((await listen.exited).code).toBe(1);
    expect(listen.stderr()).toMatch(/^lanchat: \S+ stopped before the end of its input/m);
    expect(listen.stdout().toString()).toBe('hi\n');
  });

  it('/quit as the last line of a pipe is a complete input: both exit 0', async () => {
    const listen = await listener();
    const connect = lanchat(['connect', '127.0.0.1', String(listen.port), '--commands'], { stdin: fileInput('hi\n/quit\n') });
    expect((await connect.exited).code).toBe(0);
    expect((await listen.exited).code).toBe(0);
    expect(listen.stdout().toString()).toBe('hi\n');
  });

  it('--wait is the whole wait when the peer never confirms', async () => {
    const server = createServer((socket) => {
      socket.once('data', () => socket.write('{"type":"hello","version":1,"nick":"mute","maxLine":100}\n'));
      socket.resume();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const connect = lanchat(['connect', '127.0.0.1', String((server.address() as AddressInfo).port), '--wait', '2', '--insecure'], {
        stdin: fileInput('a\nb\n'),
      });
      // Timed from the session's start, not the process's (which a loaded machine makes slow): under twice the wait.
      await connect.waitForStderr(/connected to mute/, 10_000);
      const started = Date.now();
      expect((await connect.exited).code).toBe(1);
      expect(connect.stderr()).toMatch(/2 lines not confirmed by mute/);
      expect(Date.now() - started).toBeLessThan(3900);
    } finally {
      server.close();
    }
  });

  it('connect takes [::1] in brackets, and lanchat help works like --help', async () => {
    const listen = lanchat(['listen', '0', '--host', '::1']);
    const [, port] = await listen.waitForStderr(/^listening on \[::1\]:(\d+)$/m);
    const connect = lanchat(['connect', '[::1]', port], { stdin: fileInput('v6\n') });
    expect((await connect.exited).code).toBe(0);
    expect((await listen.exited).code).toBe(0);
    const help = lanchat(['help', 'listen'], { stdin: 'ignore' });
    expect((await help.exited).code).toBe(0);
    expect(help.stdout().toString()).toMatch(/^Usage: lanchat listen/);
  });
});
