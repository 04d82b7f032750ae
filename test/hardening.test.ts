// Hostile peers, faults and limits, end to end.
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { connect as tlsConnect } from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { CLI, killAll, lanchat, listener, rawPeer, spawnProc } from './cli-helpers.js';

afterEach(killAll);

const tmp = (): string => mkdtempSync(join(tmpdir(), 'lanchat-hard-'));

function openFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

describe('who may connect', () => {
  it('--allow refuses other addresses with a line and goes on listening', async () => {
    const listen = await listener(['--allow', '10.0.0.0/8,::1']);
    const refused = lanchat(['connect', '127.0.0.1', String(listen.port)], { stdin: 'ignore' });
    expect((await refused.exited).code).toBe(1);
    expect(refused.stderr()).toMatch(/^lanchat: the peer refused: not allowed from your address$/m);
    expect(listen.stderr()).toMatch(/^refused 127\.0\.0\.1:\d+: not allowed \(--allow 10\.0\.0\.0\/8,::1\)$/m);
    expect(listen.child.exitCode).toBeNull();
    listen.child.kill('SIGTERM');
    expect((await listen.exited).code).toBe(143);
  });

  it('--allow accepts a matching peer (IPv4 on a dual-stack listener arrives IPv4-mapped)', async () => {
    const listen = lanchat(['listen', '0', '--allow', '127.0.0.0/8']);
    const [, port] = await listen.waitForStderr(/^listening on 0\.0\.0\.0:(\d+)$/m);
    const fd = openSync(join(tmp(), 'x'), 'w+');
    writeFileSync(fd, 'allowed\n');
    const sender = lanchat(['connect', '127.0.0.1', port], { stdin: openSync(join(tmp(), 'y'), 'w+') });
    closeSync(fd);
    await listen.waitForStderr(/connected to/);
    sender.child.kill('SIGINT');
    expect((await listen.exited).code).toBe(0);
  });

  it('a bad --allow rule is a usage error', async () => {
    const proc = lanchat(['listen', '0', '--allow', '10.0.0.0/33'], { stdin: 'ignore' });
    expect((await proc.exited).code).toBe(2);
    expect(proc.stderr()).toMatch(/^lanchat: invalid --allow rule "10\.0\.0\.0\/33"/);
  });

  it('--idle-timeout ends a silent session with one line and exit 1', async () => {
    const listen = await listener(['--idle-timeout', '0.3']);
    const quiet = lanchat(['connect', '127.0.0.1', String(listen.port)]);
    expect((await listen.exited).code).toBe(1);
    expect(listen.stderr()).toMatch(/^lanchat: no traffic for 0\.3 s \(--idle-timeout\)$/m);
    expect((await quiet.exited).code).toBe(1);
    expect(quiet.stderr()).toMatch(/^lanchat: the peer reported an error: no traffic for 0\.3 s/m);
  });
});

describe('hostile and broken peers', () => {
  it.each([
    [
      'a malformed frame',
      '{"type":"hello","version":1,"nick":"x","maxLine":10}\n{"type":"msg","id":[]}\n',
      /^lanchat: dropped x: a message has no valid id$/m,
    ],
    [
      'a hostile nick',
      '{"type":"hello","version":1,"nick":"\\u001b]0;owned\\u0007","maxLine":10}\n',
      /^lanchat: dropped 127\.0\.0\.1:\d+: its nick is invalid$/m,
    ],
    [
      'a frame cut short',
      '{"type":"hello","version":1,"nick":"x","maxLine":10}\n{"type":"msg","id":1,"size":50}\nabc',
      /^lanchat: dropped x: it closed in the middle of a frame$/m,
    ],
    [
      // A plain peer's bytes are taken as they are (netcat.test.ts); a lanchat peer's text must be UTF-8.
      'invalid UTF-8 from a lanchat peer',
      Buffer.concat([
        Buffer.from('{"type":"hello","version":1,"nick":"x","maxLine":10}\n{"type":"msg","id":1,"size":4}\n'),
        Buffer.from([0x68, 0xff, 0xfe, 0x0a]),
      ]),
      /^lanchat: dropped x: text is not valid UTF-8$/m,
    ],
  ])('%s ends the session with one line and exit 1', async (_name, data, message) => {
    const listen = await listener(['--insecure']); // these peers speak plaintext lanchat
    const peer = await rawPeer(listen.port);
    peer.end(data);
    expect((await listen.exited).code).toBe(1);
    expect(listen.stderr()).toMatch(message);
    expect(listen.stderr()).not.toMatch(/\n\s+at /); // no stack trace
  });

  it('a peer that connects and leaves without a word (a port probe) is noted, and the listener goes on', async () => {
    const listen = await listener();
    (await rawPeer(listen.port)).end();
    await listen.waitForStderr(/^lanchat: 127\.0\.0\.1:\d+: connected and left without a word$/m);
    expect((await lanchat(['connect', '127.0.0.1', String(listen.port)], { stdin: 'ignore' }).exited).code).toBe(0);
    expect((await listen.exited).code).toBe(0);
  });

  it('a flood without newlines is dropped at the line limit, and memory stays small', async () => {
    const listen = await listener(['--max-line', '1000']);
    const peer = await rawPeer(listen.port);
    const chunk = Buffer.alloc(64 * 1024, 'x');
    for (let i = 0; i < 64 && !peer.destroyed; i++) {
      if (!peer.write(chunk)) await new Promise((resolve) => peer.once('drain', resolve).once('close', resolve));
    }
    expect((await listen.exited).code).toBe(1);
    expect(listen.stderr()).toMatch(/^lanchat: dropped 127\.0\.0\.1:\d+: a line is longer than 1000 bytes$/m);
  });

  it('with --keep, hundreds of bad sessions in a row leave nothing behind', async () => {
    const listen = await listener(['--keep', '--insecure']);
    const pid = listen.child.pid!;
    const baseline = openFds(pid);
    const garbage = ['{"type":"hello"}\n', 'plain text\n', '{"type":"hello","version":1,"nick":"x","maxLine":9}\n', '\x00\x01\x02\n', ''];
    for (let i = 0; i < 300; i++) {
      const peer = await rawPeer(listen.port);
      peer.end(garbage[i % garbage.length]);
      await once(peer, 'close');
    }
    // 240 sessions, and 60 peers that said nothing and left (no session)
    const ended = (): number => listen.stderr().match(/^(listening on |lanchat: \S+: connected and left without a word$)/gm)?.length ?? 0;
    const deadline = Date.now() + 20_000;
    while (ended() < 301 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(ended()).toBe(301);
    expect(openFds(pid)).toBeLessThanOrEqual(baseline + 2);
    expect(listen.stderr()).not.toMatch(/MaxListenersExceeded|Warning/);
    // still serving
    const fd = openSync(join(tmp(), 'in'), 'w+');
    writeFileSync(fd, 'still alive\n');
    closeSync(fd);
    const sender = lanchat(['connect', '127.0.0.1', String(listen.port)], { stdin: openSync(join(tmp(), 'in2'), 'w+') });
    await listen.waitForStderr(/connected to \S+ \(127\.0\.0\.1/);
    sender.child.kill('SIGTERM');
    await sender.exited;
  }, 60_000);

  it('with --keep --known-only, 150 peers turned away at the door leave nothing behind', async () => {
    const listen = await listener(['--keep', '--known-only']);
    const pid = listen.child.pid!;
    const baseline = openFds(pid);
    const tlsJunk = Buffer.concat([Buffer.from([0x16, 0x03, 0x01, 0x00, 0x05]), Buffer.from('junk!\n')]);
    const knocks: Array<() => Promise<void>> = [
      async () => void (await rawPeer(listen.port)).end(tlsJunk), // a broken TLS handshake
      async () => void (await rawPeer(listen.port)).end('{"type":"hello","version":1,"nick":"x","maxLine":9}\n'), // plaintext lanchat
      async () => void (await rawPeer(listen.port)).end('plain text\n'), // netcat
      async () => void (await rawPeer(listen.port)).end(), // nothing at all
      async () => {
        // a TLS client with no certificate, then a lanchat connector whose key is unknown
        const client = tlsConnect({ host: '127.0.0.1', port: listen.port, rejectUnauthorized: false }).on('error', () => {});
        await once(client.resume(), 'close');
      },
    ];
    for (let i = 0; i < 150; i++) {
      const peer = knocks[i % knocks.length];
      await peer();
    }
    const stranger = lanchat(['connect', '127.0.0.1', String(listen.port)], { env: { LANCHAT_HOME: tmp() }, stdin: 'ignore' });
    expect((await stranger.exited).code).toBe(1);
    const refused = (): number => listen.stderr().match(/^(refused |lanchat: 127)/gm)?.length ?? 0;
    const deadline = Date.now() + 20_000;
    while (refused() < 151 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(refused()).toBe(151);
    await new Promise((resolve) => setTimeout(resolve, 1200)); // refusals close their sockets within a second
    expect(openFds(pid)).toBeLessThanOrEqual(baseline + 2);
    expect(listen.stderr()).not.toMatch(/MaxListenersExceeded|Warning|\n\s+at /);
    expect(listen.stderr()).not.toMatch(/^connected to/m);
    listen.child.kill('SIGTERM');
    expect((await listen.exited).code).toBe(143);
  }, 60_000);
});

describe('faults', () => {
  it('stdout closed early (| head -1) exits quietly, without a stack trace', async () => {
    const listen = spawnProc('sh', ['-c', `node ${CLI} listen 0 --host 127.0.0.1 | head -1`]);
    const [, port] = await listen.waitForStderr(/listening on 127\.0\.0\.1:(\d+)/);
    const sender = spawnProc('sh', ['-c', `seq 1 100000 | node ${CLI} connect 127.0.0.1 ${port}`]);
    await listen.exited;
    expect(listen.stdout().toString()).toBe('1\n');
    expect(listen.stderr()).not.toMatch(/Error|\n\s+at /);
    expect((await sender.exited).code).toBe(1);
    expect(sender.stderr()).toMatch(/lines? not confirmed/);
  });

  it('/save to an unwritable place is an error, and the session goes on', async () => {
    const dir = tmp();
    const listen = await listener();
    const connect = lanchat(['connect', '127.0.0.1', String(listen.port), '--commands'], { cwd: dir });
    connect.child.stdin!.write('/save /proc/nope/chat.txt\nstill going\n');
    await connect.waitForStderr(/^lanchat: cannot save \/proc\/nope\/chat\.txt: no such directory$/m);
    await listen.waitForStdout('still going\n'.length);
    connect.child.stdin!.end();
    expect((await connect.exited).code).toBe(0);
    expect((await listen.exited).code).toBe(0);
    expect(listen.stdout().toString()).toBe('still going\n');
  });

  it('an unwritable --log or a device (/dev/full) is refused up front: one line, exit 1, no session', async () => {
    // A full disk during the session is in transcript.test.ts (a small tmpfs).
    for (const [path, why] of [
      ['/proc/lanchat-cannot-write-here.log', 'no such file or directory'],
      ['/dev/full', 'it is not a regular file'],
    ]) {
      const listen = lanchat(['listen', '0', '--host', '127.0.0.1', '--log', path]);
      expect((await listen.exited).code).toBe(1);
      expect(listen.stderr()).toBe(`lanchat: cannot log to ${path}: ${why}\n`);
    }
  });

  it('a peer reset right after being refused does not disturb the listener', async () => {
    const listen = await listener(['--insecure']);
    const first = await rawPeer(listen.port);
    first.write('{"type":"hello","version":1,"nick":"alice","maxLine":100}\n');
    await listen.waitForStderr(/connected to alice/);
    for (let i = 0; i < 20; i++) {
      const intruder = await rawPeer(listen.port);
      intruder.resetAndDestroy();
    }
    first.end('{"type":"bye"}\n');
    expect((await listen.exited).code).toBe(0);
  });
});

describe('terminal safety', () => {
  it('escape sequences from a peer show up escaped on a real terminal (tmux)', async () => {
    try {
      execFileSync('tmux', ['-V']);
    } catch {
      return; // no tmux here
    }
    const socket = `lanchat-esc-${process.pid}`;
    const tmux = (...args: string[]): string => execFileSync('tmux', ['-L', socket, ...args], { encoding: 'utf8' });
    const port = String(await (await import('./cli-helpers.js')).freePort());
    tmux(
      'new-session',
      '-d',
      '-s',
      'victim',
      '-x',
      '120',
      '-y',
      '20',
      `${process.execPath} ${CLI} listen ${port} --host 127.0.0.1 --insecure; sleep 30`,
    );
    try {
      const deadline = Date.now() + 5000;
      while (!tmux('capture-pane', '-p', '-t', 'victim').includes('listening on')) {
        if (Date.now() > deadline) throw new Error('listener did not start');
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const peer = await rawPeer(Number(port));
      peer.write('{"type":"hello","version":1,"nick":"mallory","maxLine":100}\n');
      const evil = 'hi\x1b[2J\x1b]0;pwned\x07\rbob: fake \u202eevil\n';
      peer.write(`{"type":"msg","id":1,"size":${Buffer.byteLength(evil)}}\n${evil}`);
      let screen = '';
      while (!(screen = tmux('capture-pane', '-p', '-t', 'victim')).includes('fake')) {
        if (Date.now() > deadline) throw new Error(`message never shown:\n${screen}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(screen).toContain('mallory: hi\\x1b[2J\\x1b]0;pwned\\x07\\x0dbob: fake \\u202eevil');
      expect(screen).toContain('listening on'); // the screen was not cleared
      peer.destroy();
    } finally {
      tmux('kill-server');
    }
  });
});
