// How sessions end, seen from outside: exit codes that never claim a delivery
// that did not happen, end notices that always come, nothing left behind.
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CLI, fileInput, killAll, lanchat, listener, rawPeer, spawnProc } from './cli-helpers.js';

afterEach(killAll);

const tmp = (): string => mkdtempSync(join(tmpdir(), 'lanchat-test-'));
const numbered = (from: number, to: number): string => Array.from({ length: to - from + 1 }, (_, i) => `${from + i}\n`).join('');

describe('a piped sender whose peer leaves first', () => {
  it('exits 1 and counts the lines of input it never sent', async () => {
    const listen = await listener(['--nick', 'bob', '--commands']);
    const connect = lanchat(['connect', '127.0.0.1', String(listen.port)]);
    connect.child.stdin!.write(numbered(1, 92));
    await listen.waitForStdout(numbered(1, 92).length);
    listen.child.stdin!.write('/quit\n'); // bob leaves in the middle of alice's input
    await connect.waitForStderr(/^bob left$/m);
    connect.child.stdin!.end(numbered(93, 400));
    expect((await connect.exited).code).toBe(1);
    expect(connect.stderr()).toMatch(/^lanchat: 308 lines of input not sent: bob left$/m);
    expect(listen.stdout().toString()).toBe(numbered(1, 92));
  });

  it('whose input had ended gets exit 0 as before', async () => {
    const listen = await listener(['--nick', 'bob']);
    const connect = lanchat(['connect', '127.0.0.1', String(listen.port)], { stdin: fileInput(numbered(1, 50)) });
    expect((await connect.exited).code).toBe(0);
    expect((await listen.exited).code).toBe(0);
    expect(connect.stderr()).not.toMatch(/not sent/);
  });
});

describe('a receiver whose sender stopped before the end of its input', () => {
  it.each(['SIGINT', 'SIGTERM'] as const)('says so and exits 1 when the sender got %s mid-input', async (signal) => {
    const listen = await listener([], { stdin: 'ignore' });
    const connect = lanchat(['connect', '127.0.0.1', String(listen.port), '--nick', 'alice']);
    connect.child.stdin!.write(numbered(1, 10));
    await listen.waitForStdout(numbered(1, 10).length);
    connect.child.kill(signal);
    expect((await connect.exited).code).toBe(signal === 'SIGINT' ? 130 : 143);
    expect((await listen.exited).code).toBe(1);
    expect(listen.stderr()).toMatch(/^alice left$/m);
    expect(listen.stderr()).toMatch(/^lanchat: alice stopped before the end of its input: what it sent is incomplete$/m);
  });
});

describe('the end of a session after its output', () => {
  it('comes, with its notice and exit 0, once a slow reader has taken less than a buffer of output', async () => {
    const dir = tmp();
    const counted = join(dir, 'count');
    // Less than a pipe's and a stream's buffer together: no 'drain' will ever be emitted.
    const shell = spawnProc('bash', [
      '-c',
      `node ${CLI} listen 0 --host 127.0.0.1 </dev/null > >(sleep 2; wc -c > ${counted}); echo "exit $?" >&2`,
    ]);
    const [, port] = await shell.waitForStderr(/listening on 127\.0\.0\.1:(\d+)/);
    const peer = await rawPeer(Number(port));
    peer.write(Buffer.alloc(64 * 1024, 'a\n')); // fills the pipe to the reader
    await new Promise((resolve) => setTimeout(resolve, 300)); // so that the rest is read on its own
    peer.end(Buffer.alloc(8 * 1024, 'b\n'));
    await shell.waitForStderr(/^exit 0$/m, 10_000);
    expect(shell.stderr()).toMatch(/^127\.0\.0\.1:\d+ left$/m);
    await shell.exited;
    await waitFor(() => readFileSync(counted, 'utf8').trim() === String(72 * 1024), 'the reader to count every byte');
  });

  it('is a signal exit (143) with the end notice when stopped while the output waits for its reader', async () => {
    const shell = spawnProc('bash', ['-c', `exec node ${CLI} listen 0 --host 127.0.0.1 </dev/null > >(exec sleep 30 >/dev/null 2>&1)`]);
    const [, port] = await shell.waitForStderr(/listening on 127\.0\.0\.1:(\d+)/);
    const peer = await rawPeer(Number(port));
    peer.write(Buffer.alloc(64 * 1024, 'c\n')); // fills the pipe to the reader
    await new Promise((resolve) => setTimeout(resolve, 300)); // so that the rest is read on its own
    peer.end(Buffer.alloc(8 * 1024, 'd\n'));
    await shell.waitForStderr(/connected to/);
    await new Promise((resolve) => setTimeout(resolve, 500)); // the session is over; its output waits for a reader
    shell.child.kill('SIGTERM');
    expect((await shell.exited).code).toBe(143);
    expect(shell.stderr()).toMatch(/left$/m);
  });
});

describe('Ctrl-C while connecting', () => {
  let server: Server;
  afterEach(() => server?.close());

  it('during the TLS handshake ends it at once with 130', async () => {
    const arrived: Socket[] = [];
    server = createServer((socket) => arrived.push(socket)); // accepts, never answers the handshake
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const connect = lanchat(['connect', '127.0.0.1', String((server.address() as AddressInfo).port)], { stdin: 'ignore' });
    await waitFor(() => arrived.length > 0, 'the connection');
    const at = Date.now();
    connect.child.kill('SIGINT');
    expect((await connect.exited).code).toBe(130);
    expect(Date.now() - at).toBeLessThan(3000); // not the 10 s handshake timeout
    expect(connect.stderr()).not.toMatch(/handshake/);
    for (const socket of arrived) socket.destroy();
  });
});

describe('what is recorded', () => {
  it('--log and /save hold only lines that were sent: nothing after a piped /quit', async () => {
    const dir = tmp();
    const log = join(dir, 'chat.log');
    const listen = await listener(['--nick', 'bob'], { stdin: 'ignore' });
    const input = `hi\n/save ${join(dir, 'saved.txt')}\n/quit\nnever sent\n/me never\n`;
    const connect = lanchat(['connect', '127.0.0.1', String(listen.port), '--nick', 'alice', '--commands', '--log', log], {
      stdin: fileInput(input),
    });
    expect((await connect.exited).code).toBe(0);
    await listen.exited;
    const logged = readFileSync(log, 'utf8');
    expect(logged).toMatch(/alice: hi$/m);
    expect(logged).not.toMatch(/never/);
    expect(listen.stdout().toString()).toBe('hi\n');
  });

  it('the /save spool leaves nothing in TMPDIR, even while a session runs', async () => {
    const spoolDir = tmp();
    const listen = await listener(['--nick', 'bob', '--commands'], { env: { TMPDIR: spoolDir } });
    const connect = lanchat(['connect', '127.0.0.1', String(listen.port), '--nick', 'alice']);
    connect.child.stdin!.write('kept for /save\n');
    await listen.waitForStdout('kept for /save\n'.length, 10_000);
    expect(readdirSync(spoolDir)).toEqual([]);
    const saved = join(tmp(), 'saved.txt');
    listen.child.stdin!.write(`/save ${saved}\n`);
    await listen.waitForStderr(/saved \d+ lines? to/, 10_000);
    expect(readFileSync(saved, 'utf8')).toMatch(/alice: kept for \/save\n$/);
    listen.child.kill('SIGKILL');
    connect.child.kill('SIGKILL');
    expect(readdirSync(spoolDir)).toEqual([]);
  });
});

/** Polls `ready` (every 20 ms, 5 s at most), naming `what` on timeout. */
async function waitFor(ready: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  for (;;) {
    try {
      if (ready()) return;
    } catch {
      // not there yet
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
