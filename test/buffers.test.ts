// Reused read buffers: the pool's rules, and sockets that read into it (a
// listener's accepted ones, a plaintext connector's) over real loopback TCP.
import { once } from 'node:events';
import * as net from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, describe, expect, it } from 'vitest';
import { BufferPool } from '../src/buffers.js';
import { adoptAccepted, dial, openServer, socketReads } from '../src/transport.js';

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
    const server = net.createServer((peer) => peer.end(DATA));
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
    await new Promise((resolve) => setTimeout(resolve, 100)); // the data is here by now, waiting
    const received = collect(socket);
    expect((await received.done).equals(DATA)).toBe(true);
    expect(received.reused()).toBe(true);
  });
});
