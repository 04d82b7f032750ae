// The door of a listener, end to end: who gets the one seat, what a barred
// address may cost, and that a peer is classified once, by the door.
import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { connect as dialTcp, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Door, type Admitted } from '../src/door.js';
import { loadIdentity } from '../src/identity.js';
import { openServer } from '../src/transport.js';
import { CLI, fileInput, killAll, lanchat, listener, rawPeer, spawnProc } from './cli-helpers.js';

const sockets: Socket[] = [];
const servers: Server[] = [];
afterEach(() => {
  killAll();
  for (const socket of sockets.splice(0)) socket.destroy();
  for (const server of servers.splice(0)) server.close();
});

const home = (): string => mkdtempSync(join(tmpdir(), 'lanchat-door-'));

/** A raw client that keeps what it is told. */
async function quietPeer(port: number): Promise<{ socket: Socket; told: () => string }> {
  const socket = await rawPeer(port);
  sockets.push(socket);
  let told = '';
  socket.setEncoding('utf8').on('data', (chunk: string) => (told += chunk));
  return { socket, told: () => told };
}

describe('nobody squats a listener', () => {
  it('a connection that said nothing and was told nothing gives its seat to a connector, with a line saying why', async () => {
    const listen = await listener(['--nick', 'bob'], { stdin: 'pipe' }); // piped input with nothing in it yet
    const squatter = await quietPeer(listen.port);
    await listen.waitForStderr(/^connected to 127\.0\.0\.1:\d+ \(plain text/m); // taken for netcat after the grace
    const closed = once(squatter.socket, 'close');
    const connect = lanchat(['connect', '127.0.0.1', String(listen.port), '--nick', 'alice'], {
      env: { LANCHAT_HOME: home() },
      stdin: 'pipe',
    });
    await listen.waitForStderr(/^connected to alice \(127\.0\.0\.1:\d+\)$/m);
    await closed;
    expect(squatter.told()).toBe('lanchat: someone else came to talk, and you had said nothing: closing\n');
    expect(listen.stderr()).toMatch(/^closed 127\.0\.0\.1:\d+: it said nothing, and 127\.0\.0\.1:\d+ came to talk$/m);
    // Both ways: the listener's input now goes to the newcomer.
    connect.child.stdin!.write('hello bob\n');
    await listen.waitForStdout(10);
    listen.child.stdin!.end('for alice\n');
    await connect.waitForStdout(10);
    connect.child.stdin!.end();
    expect((await connect.exited).code).toBe(0);
    expect((await listen.exited).code).toBe(0);
    expect(connect.stdout().toString()).toBe('for alice\n');
    expect(listen.stdout().toString()).toBe('hello bob\n');
    expect(listen.stderr().match(/^listening on /gm)).toHaveLength(1); // one listen, not a second session
  });

  it('a silent peer that was told something keeps its seat: the next one hears that the listener is busy', async () => {
    const listen = await listener([], { stdin: 'pipe' });
    const receiver = await quietPeer(listen.port);
    await listen.waitForStderr(/^connected to 127\.0\.0\.1:\d+ \(plain text/m);
    listen.child.stdin!.write('for the receiver\n');
    while (receiver.told() === '') await once(receiver.socket, 'data');
    const connect = lanchat(['connect', '127.0.0.1', String(listen.port)], { env: { LANCHAT_HOME: home() }, stdin: 'ignore' });
    expect((await connect.exited).code).toBe(1);
    expect(connect.stderr()).toMatch(/^lanchat: the peer refused: busy: already in a chat, try again later$/m);
    expect(receiver.told()).toBe('for the receiver\n');
    expect(receiver.socket.destroyed).toBe(false);
  });
});

describe('barred addresses (--allow)', () => {
  it('150 silent connections from a barred address cannot exhaust a listener under ulimit -n 64: an allowed peer still gets in', async () => {
    const listen = spawnProc(
      'sh',
      ['-c', `ulimit -n 64 && exec "${process.execPath}" "${CLI}" listen 0 --host 127.0.0.1 --allow 127.0.0.1`],
      { stdin: 'ignore' },
    );
    const [, port] = await listen.waitForStderr(/^listening on 127\.0\.0\.1:(\d+)$/m);
    const barred = await Promise.all(
      Array.from({ length: 150 }, async () => {
        const socket = dialTcp({ host: '127.0.0.1', port: Number(port), localAddress: '127.0.0.2' });
        sockets.push(socket);
        socket.on('error', () => {}).resume();
        await Promise.race([once(socket, 'connect'), once(socket, 'close')]);
      }),
    );
    expect(barred).toHaveLength(150);
    const connect = lanchat(['connect', '127.0.0.1', port], { env: { LANCHAT_HOME: home() }, stdin: fileInput('allowed in\n') });
    expect((await connect.exited).code).toBe(0);
    expect((await listen.exited).code).toBe(0);
    expect(listen.stdout().toString()).toBe('allowed in\n');
    expect(listen.stderr()).toMatch(/^refused 127\.0\.0\.2:\d+: not allowed \(--allow 127\.0\.0\.1\); too many at once, closed$/m);
  }, 30_000);
});

describe('a peer is classified once, by the door', () => {
  it.each(['{"ty', '{"type":"hello","ver'])(
    'a plaintext hello cut after %s and finished 2.6 s later is a lanchat session, not text',
    async (head) => {
      const listen = await listener(['--insecure']);
      const peer = await quietPeer(listen.port);
      const hello = '{"type":"hello","version":1,"nick":"alice","maxLine":100}\n';
      peer.socket.write(head);
      await new Promise((resolve) => setTimeout(resolve, 2600)); // the pause under test: past the 2 s grace
      peer.socket.end(`${hello.slice(head.length)}{"type":"msg","id":1,"size":7}\nsecret\n{"type":"bye"}\n`);
      expect((await listen.exited).code).toBe(0);
      expect(listen.stdout().toString()).toBe('secret\n');
      expect(listen.stderr()).toMatch(/^connected to alice \(127\.0\.0\.1:\d+\)$/m);
      expect(peer.told()).toMatch(/^\{"type":"hello","version":1,"nick":/);
    },
    15_000,
  );
});

describe('the door in-process: accepted connection in, admitted peer or refusal out', () => {
  /** A door on a loopback server, noting what it logs; `wire: false` leaves the server's connections to the test. */
  async function door(wire = true): Promise<{ door: Door; server: Server; port: number; logged: string[] }> {
    const identity = await loadIdentity({ LANCHAT_HOME: home() });
    const logged: string[] = [];
    const made = new Door({ policy: {}, identity, env: { LANCHAT_HOME: home() }, allow: null, log: (line) => logged.push(line) });
    const { server, address } = await openServer('127.0.0.1', 0);
    servers.push(server);
    if (wire) server.on('connection', made.take);
    return { door: made, server, port: Number(address.split(':')[1]), logged };
  }

  /** Everything a raw client is told, up to the listener closing it. */
  async function toldUntilClosed(peer: { socket: Socket; told: () => string }): Promise<string> {
    if (!peer.socket.closed) await once(peer.socket, 'close');
    return peer.told();
  }

  it('emits a netcat peer once, as plain text, and turns it away as busy in a line it reads', async () => {
    const { door: made, port, logged } = await door();
    const admitted: Admitted[] = [];
    made.on('admitted', (peer) => admitted.push(peer));
    const client = await quietPeer(port);
    const { localPort } = client.socket;
    client.socket.write('hello there\n');
    while (admitted.length === 0) await once(made, 'admitted');
    expect(admitted).toHaveLength(1);
    expect(admitted[0].security.plain).toBe(true);
    expect(admitted[0].from).toEqual({ host: '127.0.0.1', port: localPort });
    await made.turnAway(admitted[0], 'busy');
    expect(await toldUntilClosed(client)).toBe('lanchat: busy: already in a chat, try again later\n');
    expect(logged).toEqual([`refused 127.0.0.1:${localPort}: already in a chat`]);
  });

  it('close() is idempotent, and a peer let in after it is told that the listener has stopped', async () => {
    const { door: made, server, port, logged } = await door(false);
    const emitted: Admitted[] = [];
    made.on('admitted', (peer) => emitted.push(peer));
    const accepted = once(server, 'connection');
    const client = await quietPeer(port);
    const { localPort } = client.socket;
    const [socket] = (await accepted) as [Socket];
    made.take(socket); // at the door, silent so far, when the listener stops
    const closed = made.close();
    expect(made.close()).toBe(closed);
    client.socket.write('hello there\n'); // let in only now
    await closed;
    expect(await toldUntilClosed(client)).toBe('lanchat: the listener has stopped\n');
    expect(emitted).toEqual([]);
    expect(logged).toEqual([`refused 127.0.0.1:${localPort}: the listener stopped`]);
  });
});
