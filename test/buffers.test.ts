// Reused read buffers: the pool's rules, and sockets that read into it (a
// listener's accepted ones, a plaintext connector's) over real loopback TCP.
import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, describe, expect, it } from 'vitest';
import { BufferPool } from '../src/buffers.js';
import { loadIdentity } from '../src/identity.js';
import { adoptAccepted, dial, openServer, readTlsIntoPool, recycleRead, socketReads, tlsReads } from '../src/transport.js';

const open: Array<net.Socket | net.Server> = [];
afterEach(() => {
  for (const thing of open.splice(0)) {
    if ('destroy' in thing) thing.destroy();
    else thing.close();
  }
});

describe('BufferPool', () => {
  it('lends a buffer again once it is given back (as any slice of it)', () => {
    const pool = new BufferPool(1024, 2);
    const first = pool.take();
    expect(first.length).toBe(1024);
    pool.give(first.subarray(10, 20));
    expect(pool.take().buffer).toBe(first.buffer);
  });

  it('ignores what it did not lend and a second give, so no two reads share memory', () => {
    const pool = new BufferPool(1024, 4);
    const lent = pool.take();
    pool.give(Buffer.alloc(1024));
    pool.give(lent);
    pool.give(lent);
    const [a, b] = [pool.take(), pool.take()];
    expect(a.buffer).toBe(lent.buffer);
    expect(b.buffer).not.toBe(lent.buffer);
  });

  it("forgets a buffer that is never given back (a socket's last read)", async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const inUse = async (): Promise<number> => {
      gc();
      await new Promise((resolve) => setImmediate(resolve));
      gc();
      return process.memoryUsage().arrayBuffers;
    };
    const pool = new BufferPool(1024 * 1024, 2);
    const before = await inUse();
    for (let i = 0; i < 64; i++) pool.take();
    expect((await inUse()) - before).toBeLessThan(16 * 1024 * 1024);
  });

  it('keeps at most its number of spare buffers', () => {
    const pool = new BufferPool(16, 1);
    const [a, b] = [pool.take(), pool.take()];
    pool.give(a);
    pool.give(b);
    expect(pool.take().buffer).toBe(a.buffer);
    expect(pool.take().buffer).not.toBe(b.buffer);
  });
});

/** 1 MiB of numbered lines, so that a byte out of place shows. */
const DATA = Buffer.from(Array.from({ length: 20_000 }, (_, i) => `${String(i).padStart(8, '0')} ${'r'.repeat(42)}\n`).join(''));

/**
 * Collects what `socket` emits, giving each chunk back to the pool at once
 * (copied first). Reads into the pool then keep landing in the same one or
 * two buffers; Node's own reads would each bring a new one.
 */
function collect(socket: net.Socket): { done: Promise<Buffer>; reused: () => boolean } {
  const chunks: Buffer[] = [];
  const memory = new Set<ArrayBufferLike>();
  socket.on('data', (chunk: Buffer) => {
    memory.add(chunk.buffer);
    chunks.push(Buffer.from(chunk));
    socketReads.give(chunk);
  });
  socket.resume();
  return { done: once(socket, 'end').then(() => Buffer.concat(chunks)), reused: () => chunks.length >= 4 && memory.size <= 2 };
}

/** A plaintext connection dialled to reading into the pool (paused until resumed), its peer served by `serve`. */
async function dialPooled(serve: (peer: net.Socket) => void): Promise<net.Socket> {
  const server = net.createServer(serve);
  open.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const socket = await dial('127.0.0.1', (server.address() as net.AddressInfo).port, {
    timeoutMs: 5000,
    retries: 0,
    signal: new AbortController().signal,
    pooledReads: true,
  });
  open.push(socket);
  return socket;
}

describe('sockets that read into reused buffers', () => {
  it('a listener adopts an accepted connection: it reads into the pool, and still answers', async () => {
    const { server } = await openServer('127.0.0.1', 0);
    open.push(server);
    const accepted = once(server, 'connection') as Promise<[net.Socket]>;
    const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    open.push(client);
    const socket = adoptAccepted((await accepted)[0]);
    open.push(socket);
    const received = collect(socket);
    client.end(DATA);
    expect((await received.done).equals(DATA)).toBe(true);
    expect(received.reused()).toBe(true);
    const answer = once(client, 'data');
    socket.end('pong\n');
    expect(String((await answer)[0])).toBe('pong\n');
  });

  it('a plaintext connector reads into the pool and loses nothing sent before its reader is there', async () => {
    const socket = await dialPooled((peer) => peer.end(DATA));
    await new Promise((resolve) => setTimeout(resolve, 100)); // the data is here by now, waiting
    const received = collect(socket);
    expect((await received.done).equals(DATA)).toBe(true);
    expect(received.reused()).toBe(true);
  });

  it('copies small reads out, so that held chat lines do not each keep a 256 KiB buffer', async () => {
    // A line each time the reader asks: a read each.
    const socket = await dialPooled((peer) => {
      let sent = 0;
      peer.on('data', () => (sent < 300 ? peer.write(`line ${sent++}\n`) : peer.end()));
    });
    const held: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => held.push(chunk) && socket.write('k')); // kept, as while stdout stalls
    socket.resume();
    socket.write('k');
    await once(socket, 'end');
    expect(Buffer.concat(held).toString()).toBe(Array.from({ length: 300 }, (_, i) => `line ${i}\n`).join(''));
    expect(held.length).toBeGreaterThanOrEqual(20);
    expect(held.filter((chunk) => chunk.buffer.byteLength === socketReads.size)).toEqual([]);
  });
});

/** A TLS 1.3 connection over loopback, its listener's end made over the accepted socket (as the door makes it). */
async function tlsPair(): Promise<{ server: tls.TLSSocket; client: tls.TLSSocket }> {
  const { key, cert } = await loadIdentity({ LANCHAT_HOME: mkdtempSync(join(tmpdir(), 'lanchat-reads-')) });
  const listening = net.createServer();
  open.push(listening);
  listening.listen(0, '127.0.0.1');
  await once(listening, 'listening');
  const accepted = once(listening, 'connection') as Promise<[net.Socket]>;
  const options = { key, cert, minVersion: 'TLSv1.3' as const };
  const client = tls.connect({
    ...options,
    port: (listening.address() as net.AddressInfo).port,
    host: '127.0.0.1',
    rejectUnauthorized: false,
  });
  const server = new tls.TLSSocket((await accepted)[0], { ...options, isServer: true });
  open.push(client, server);
  await Promise.all([once(client, 'secureConnect'), once(server, 'secure')]);
  return { server, client };
}

/**
 * Collects what a TLS socket emits (copied), giving each chunk back as a
 * session does (recycleRead); every `pauseEvery` chunks it pauses for 20 ms,
 * while more records arrive. Also counts the memory the chunks came in.
 */
function collectTls(
  socket: tls.TLSSocket,
  pauseEvery = 0,
): { done: Promise<Buffer>; chunks: () => number; memory: () => number; whilePaused: () => number } {
  const chunks: Buffer[] = [];
  const memory = new Set<ArrayBufferLike>();
  let whilePaused = 0;
  socket.on('data', (chunk: Buffer) => {
    if (socket.isPaused()) whilePaused++;
    memory.add(chunk.buffer);
    chunks.push(Buffer.from(chunk));
    recycleRead(chunk);
    if (pauseEvery > 0 && chunks.length % pauseEvery === 0) {
      socket.pause();
      setTimeout(() => socket.resume(), 20);
    }
  });
  socket.resume();
  return {
    done: once(socket, 'end').then(() => Buffer.concat(chunks)),
    chunks: () => chunks.length,
    memory: () => memory.size,
    whilePaused: () => whilePaused,
  };
}

describe('TLS sockets that read into reused buffers (readTlsIntoPool)', () => {
  it('reads every record into the pool, byte-exact, after the bytes a sniffer put back', async () => {
    const { server, client } = await tlsPair();
    client.write('{"type":"hello"}\n');
    const [first] = (await once(server, 'data')) as [Buffer];
    server.pause();
    server.unshift(first); // as the door's sniffer does
    readTlsIntoPool(server);
    const received = collectTls(server);
    client.end(DATA);
    expect((await received.done).equals(Buffer.concat([Buffer.from('{"type":"hello"}\n'), DATA]))).toBe(true);
    // 1 MiB comes as 16 KiB records: in the pool's few buffers, given back and lent again (Node's would be 64 new ones).
    expect(received.chunks()).toBeGreaterThanOrEqual(64);
    expect(received.memory()).toBeLessThanOrEqual(4);
  });

  it('emits nothing while paused and keeps the order when records go on arriving', async () => {
    const { server, client } = await tlsPair();
    readTlsIntoPool(server);
    const received = collectTls(server, 5);
    client.end(DATA);
    expect((await received.done).equals(DATA)).toBe(true);
    expect(received.chunks()).toBeGreaterThanOrEqual(64);
    expect(received.whilePaused()).toBe(0); // records decrypted after a pause wait in the stream's buffer
  });

  it('copies small records out, so that held chat lines do not each keep a 16 KiB buffer', async () => {
    const { server, client } = await tlsPair();
    readTlsIntoPool(server);
    const held: Buffer[] = [];
    server.on('data', (chunk: Buffer) => held.push(chunk)); // kept, as while stdout stalls
    server.resume();
    const lines = Array.from({ length: 300 }, (_, i) => `line ${i}\n`);
    for (const line of lines) await new Promise<void>((resolve) => client.write(line, () => resolve())); // a record each
    client.end();
    await once(server, 'end');
    expect(Buffer.concat(held).toString()).toBe(lines.join(''));
    expect(held.length).toBeGreaterThanOrEqual(100);
    expect(held.filter((chunk) => chunk.buffer.byteLength === tlsReads.size)).toEqual([]);
  });

  it('lends a record buffer again only once it is given back', async () => {
    const { server, client } = await tlsPair();
    readTlsIntoPool(server);
    const held: Buffer[] = [];
    server.on('data', (chunk: Buffer) => held.push(chunk)); // kept, not given back
    server.resume();
    client.end(DATA.subarray(0, 256 * 1024));
    await once(server, 'end');
    expect(new Set(held.map((chunk) => chunk.buffer)).size).toBe(held.length);
    expect(Buffer.concat(held).equals(DATA.subarray(0, 256 * 1024))).toBe(true);
    for (const chunk of held) recycleRead(chunk);
    expect(held.map((chunk) => chunk.buffer)).toContain(tlsReads.take().buffer);
  });
});
