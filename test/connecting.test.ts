// Connecting as a new user would (issue 17): HOST:PORT as one argument, usage
// errors for hosts that cannot be one, what a terminal sees while connecting,
// and a TLS connect answered by something that is not lanchat.
import { mkdtempSync } from 'node:fs';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { connect, type ConnectFlags } from '../src/commands/connect.js';
import { Screen } from './screen.js';
import { fileInput, killAll, lanchat, listener } from './cli-helpers.js';

const home = (): string => mkdtempSync(join(tmpdir(), 'lanchat-connecting-'));

/** `lanchat id` of this home: the fingerprint, and the digit groups for reading aloud (two lines). */
async function idOf(dir: string): Promise<{ fingerprint: string; digits: string }> {
  const id = lanchat(['id'], { env: { LANCHAT_HOME: dir }, stdin: 'ignore' });
  await id.exited;
  const [fingerprint, first, second] = id.stdout().toString().split('\n');
  return { fingerprint, digits: `${first}\n${second}` };
}

const servers: Server[] = [];
afterEach(() => {
  killAll();
  for (const server of servers.splice(0)) server.close();
});

/** A plain TCP listener, as `nc -l` is: `answer` runs on what the connector sends first. */
async function plainListener(answer: (socket: Socket) => void): Promise<number> {
  const server = createServer((socket) => {
    socket.on('error', () => {});
    socket.once('data', () => answer(socket));
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

describe('connect HOST:PORT', () => {
  it('takes HOST:PORT as one argument', async () => {
    const listen = await listener([], { stdin: 'ignore' });
    const connect = lanchat(['connect', `127.0.0.1:${listen.port}`], { stdin: fileInput('joined\n') });
    expect((await connect.exited).code).toBe(0);
    expect((await listen.exited).code).toBe(0);
    expect(listen.stdout().toString()).toBe('joined\n');
  });

  it('takes [v6]:PORT as one argument', async () => {
    const listen = lanchat(['listen', '0', '--host', '::1'], { stdin: 'ignore' });
    const [, port] = await listen.waitForStderr(/^listening on \[::1\]:(\d+)$/m);
    const connect = lanchat(['connect', `[::1]:${port}`], { stdin: fileInput('v6 joined\n') });
    expect((await connect.exited).code).toBe(0);
    expect((await listen.exited).code).toBe(0);
    expect(listen.stdout().toString()).toBe('v6 joined\n');
  });

  it.each([
    [['127.0.0.1'], /^lanchat: no port given for 127\.0\.0\.1: write HOST PORT or HOST:PORT/],
    [['::1'], /^lanchat: no port given for ::1: write HOST PORT or HOST:PORT \(\[v6\]:PORT for IPv6\)/],
    [['127.0.0.1:70000'], /^lanchat: invalid port '70000' in "127\.0\.0\.1:70000": a port is a whole number from 1 to 65535/],
    [['127.0.0.1:5000', '5000'], /^lanchat: invalid host "127\.0\.0\.1:5000": .*\(HOST PORT, or HOST:PORT alone\)/],
    [['bad host!', '5000'], /^lanchat: invalid host "bad host!": give an IPv4 or IPv6 address or a host name\n/],
    [['bad host!:5000'], /^lanchat: invalid address "bad host!:5000": write HOST PORT or HOST:PORT/],
    [['5000', '192.0.2.7'], /^lanchat: the host comes first: lanchat connect 192\.0\.2\.7 5000\n\(see lanchat connect --help\)\n$/],
    [['--nick', 'bob', '5000', 'localhost'], /^lanchat: the host comes first: lanchat connect localhost 5000\n/],
  ])('connect %j is a usage error (exit 2) that says how to write it', async (args, message) => {
    const proc = lanchat(['connect', ...args], { stdin: 'ignore' });
    expect((await proc.exited).code).toBe(2);
    expect(proc.stderr()).toMatch(message);
  });

  it('listen HOST PORT is a usage error (exit 2) that says how to listen on one address', async () => {
    const proc = lanchat(['listen', '127.0.0.1', '5000'], { stdin: 'ignore' });
    expect((await proc.exited).code).toBe(2);
    expect(proc.stderr()).toBe(
      'lanchat: listen takes a port; to listen on one address only: lanchat listen 5000 --host 127.0.0.1\n(see lanchat listen --help)\n',
    );
  });
});

describe('connect --fingerprint', () => {
  it('takes the digit groups `lanchat id` prints for reading aloud: the right ones connect, wrong ones are refused', async () => {
    const bobHome = home();
    const { digits } = await idOf(bobHome);
    // as read aloud and typed: one line, or pasted with its newline, or with dashes
    for (const typed of [digits.replace('\n', ' '), digits, digits.replace(/\s/g, '-')]) {
      const right = await listener([], { env: { LANCHAT_HOME: bobHome }, stdin: 'ignore' });
      const connect = lanchat(['connect', '127.0.0.1', String(right.port), '--fingerprint', typed], {
        env: { LANCHAT_HOME: home() },
        stdin: fileInput('checked\n'),
      });
      expect((await connect.exited).code).toBe(0);
      expect((await right.exited).code).toBe(0);
      expect(right.stdout().toString()).toBe('checked\n');
    }
    const other = await listener([], { env: { LANCHAT_HOME: home() }, stdin: 'ignore' });
    const refused = lanchat(['connect', '127.0.0.1', String(other.port), '--fingerprint', digits], {
      env: { LANCHAT_HOME: home() },
      stdin: fileInput('secret\n'),
    });
    expect((await refused.exited).code).toBe(1);
    expect(refused.stderr()).toMatch(
      /^lanchat: WARNING: 127\.0\.0\.1:\d+ presented another key than the one given with --fingerprint\n {2}expected {2}(\d{5} ){7}\d{5}\n {2}presented (\d{5} ){7}\d{5}\nnothing was sent$/m,
    );
    const short = lanchat(['connect', '127.0.0.1', '5000', '--fingerprint', '12345 67890'], { stdin: 'ignore' });
    expect((await short.exited).code).toBe(2);
  });
});

describe('a default (TLS) connect to a plain listener (nc -l)', () => {
  it.each([
    [
      'says nothing',
      (): void => {},
      /^lanchat: the listener said nothing to the TLS handshake within 2 s: not a lanchat listener \(netcat\? nc -l takes connect --raw\)$/m,
    ],
    [
      'answers a few typed letters',
      (socket: Socket): void => void socket.write('hi\n'),
      /^lanchat: the listener answered in plain text, not TLS: not a lanchat listener \(netcat\? nc -l takes connect --raw\)$/m,
    ],
    [
      'answers a line of text',
      (socket: Socket): void => void socket.write('what is this?\n'),
      /^lanchat: the listener answered in plain text, not TLS: not a lanchat listener/m,
    ],
  ])('that %s is recognised (not the 10 s timeout), exit 1 with the --raw hint', async (_, answer, message) => {
    const port = await plainListener(answer);
    const connect = lanchat(['connect', '127.0.0.1', String(port)], { stdin: 'ignore' });
    expect((await connect.exited).code).toBe(1);
    expect(connect.stderr()).toMatch(message);
  });

  it('a --timeout shorter than that still gives up first, as before', async () => {
    const port = await plainListener(() => {});
    const connect = lanchat(['connect', '127.0.0.1', String(port), '--timeout', '0.5'], { stdin: 'ignore' });
    expect((await connect.exited).code).toBe(1);
    expect(connect.stderr()).toMatch(/^lanchat: no TLS handshake within 0\.5 s/m);
  });
});

describe('while connecting', () => {
  const flags: ConnectFlags = { timeout: 10, retry: 0, maxLine: 1024, wait: 1, alive: 15 };
  const run = (port: number, stderr: Screen, stop: AbortController): Promise<number> =>
    connect('127.0.0.1', port, flags, {
      stdin: new PassThrough(),
      stdout: new Screen(),
      stderr,
      cwd: process.cwd(),
      env: { LANCHAT_HOME: home(), LANCHAT_MDNS: 'off' },
      signal: stop.signal,
    });

  it('says `connecting to HOST:PORT…` on stderr at a terminal, before the listener has answered', async () => {
    const port = await plainListener(() => {}); // holds the handshake
    const stderr = Object.assign(new Screen(), { isTTY: true });
    const stop = new AbortController();
    const code = run(port, stderr, stop);
    await stderr.waitFor(/^connecting to 127\.0\.0\.1:\d+…\n$/);
    stop.abort('SIGINT');
    expect(await code).toBe(130);
  });

  it('says nothing of the kind when stderr is no terminal (a script reads it)', async () => {
    const port = await plainListener((socket) => socket.end('lanchat: busy\n'));
    const stderr = new Screen();
    await expect(run(port, stderr, new AbortController())).rejects.toMatchObject({ code: 'ERR_NOT_TLS' });
    expect(stderr.text).toBe('');
  });
});
