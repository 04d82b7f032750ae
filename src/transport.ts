// TCP plumbing: open a listening socket, dial a peer (with timeout and retries),
// and turn the errors both can meet into one clear LanchatError each.
import * as net from 'node:net';
import type * as tls from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';
import { formatAddress, plainHost, type Endpoint } from './address.js';
import { BufferPool } from './buffers.js';
import { LanchatError } from './errors.js';

const RETRY_DELAY_MS = 1000;

/**
 * What plaintext sockets read into, up to 256 KiB at a time (Node's own reads
 * take 64 KiB of fresh memory each). Whoever handles a socket's 'data' gives
 * each chunk back here once done with it — or never: it is then collected.
 */
export const socketReads = new BufferPool(256 * 1024, 8);

/** Reads shorter than this are copied out of the read buffer (see ReadBuffers): Node's own pool takes them. */
const SMALL_READ = 4096;

/**
 * The buffers one socket reads into, from `pool`. A read of SMALL_READ bytes
 * or more is lent as it is, for its reader to give back; a smaller one (a chat
 * line, an ack) is copied out and the buffer read into again: held until
 * written, each would keep a whole buffer alive while stdout stalls, and what
 * pauses the reading counts the bytes to write, not that (TLS, 300,000
 * one-byte lines to a stalled stdout: 1,455 MiB against Node's 395).
 */
class ReadBuffers {
  readonly #pool: BufferPool;
  #current: Buffer | null = null;

  constructor(pool: BufferPool) {
    this.#pool = pool;
  }

  /** The buffer for the next read: the last one again unless it was lent (arrow functions: Node calls them). */
  next = (): Buffer => (this.#current ??= this.#pool.take());

  /** The `bytes` just read into `buffer`: lent, or copied out. */
  chunk = (bytes: number, buffer: Uint8Array): Buffer => {
    if (bytes < SMALL_READ) return Buffer.from(buffer.subarray(0, bytes));
    this.#current = null;
    return (buffer as Buffer).subarray(0, bytes);
  };
}

/**
 * Node's `onread` option, set to read into socketReads. Each read is still
 * emitted as 'data', so readers (the door, a session) need not know. It is
 * emitted whether or not anyone listens yet: such a socket must stay paused
 * until its reader is there.
 */
function pooledReads(socket: () => net.Socket): net.OnReadOpts {
  const reads = new ReadBuffers(socketReads);
  const callback = (bytes: number, buffer: Uint8Array): boolean => {
    socket().emit('data', reads.chunk(bytes, buffer));
    return true; // keep reading: a reader that wants a pause calls pause()
  };
  return { buffer: reads.next, callback };
}

/**
 * A connection accepted by a server that pauses new connections
 * (openServer's), rebuilt to read into socketReads: Node offers `onread`
 * only to sockets it makes from options, and a server makes the ones it
 * accepts itself. Nothing has been read yet, so the new socket takes over the
 * connection's handle as it is; the old one closes without closing the
 * connection (the server no longer counts it: nothing here asks the server
 * for its connections). Paused like the old one: resume() starts reading.
 * Should a Node version not let us take the handle, the socket is returned
 * unchanged, to be read the usual way.
 */
export function adoptAccepted(accepted: net.Socket): net.Socket {
  const shell = accepted as unknown as { _handle: object | null };
  const handle = shell._handle;
  if (!handle) return accepted;
  try {
    shell._handle = null;
  } catch {
    return accepted;
  }
  accepted.destroy();
  const options = { handle, allowHalfOpen: true, pauseOnCreate: true, onread: pooledReads(() => socket) };
  const socket: net.Socket = new net.Socket(options);
  socket.pause(); // stops the handle even if pauseOnCreate were ever ignored
  return socket;
}

/**
 * What TLS sockets' clear text is read into (see readTlsIntoPool): a TLS
 * record holds at most 16 KiB. Up to 512 spares (8 MiB): a file's receiver
 * holds its whole window (4 MiB, 256 records) until the disk has it, and with
 * fewer spares than that buffers churned: 103–126 MiB at the peak with 16 or
 * 128 kept, 64 with 512 (a chat during a 1 GiB transfer), 81 before the pool.
 */
export const tlsReads = new BufferPool(16 * 1024, 512);

/** Gives back a chunk read into socketReads or tlsReads (a session's `recycle`); any other is ignored. */
export function recycleRead(chunk: Buffer): void {
  socketReads.give(chunk);
  tlsReads.give(chunk);
}

/**
 * Reads a TLS socket's clear text into tlsReads, as `onread` does for a
 * plaintext socket: Node hands each TLS record to JavaScript in fresh memory
 * and through the stream's buffer, which cost a bare Node receiver a quarter
 * of its CPU (256 MiB, whole process, five interleaved runs: 0.48–0.53 s
 * against 0.36–0.40).
 * Node takes `onread` only in a tls.connect that makes its own socket; ours
 * are made over one (dialled, or accepted and sniffed), so the three fields
 * that `onread` sets on a socket are set here, found by name, and the TLS
 * handle is told to use our buffer, as Node does then. Where those fields are
 * not found (another Node), the socket is read the usual way. A record is
 * emitted at once when the socket flows to a reader with nothing waiting in
 * its buffer; otherwise (paused, or behind bytes put back) it waits in that
 * buffer, in order (small records copied out, as ReadBuffers says: TLSWrap
 * goes on emitting the records it has decrypted after a pause).
 */
export function readTlsIntoPool(socket: tls.TLSSocket): void {
  const handle = (socket as unknown as { _handle?: { useUserBuffer?: (buffer: Uint8Array) => void } | null })._handle;
  const symbols = Object.getOwnPropertySymbols(socket);
  const field = (name: string): symbol | undefined => symbols.find((symbol) => symbol.description === name);
  const [buffer, callback, next] = [field('kBuffer'), field('kBufferCb'), field('kBufferGen')];
  const fields = socket as unknown as Record<symbol, unknown>;
  if (typeof handle?.useUserBuffer !== 'function' || !buffer || !callback || !next || fields[buffer] !== null) return;
  const reads = new ReadBuffers(tlsReads);
  fields[callback] = (bytes: number, into: Buffer): boolean => {
    const chunk = reads.chunk(bytes, into);
    if (!socket.readableFlowing || socket.readableLength > 0 || socket.listenerCount('data') === 0) return socket.push(chunk);
    socket.emit('data', chunk);
    return true;
  };
  const first = reads.next();
  fields[next] = reads.next;
  fields[buffer] = first;
  handle.useUserBuffer(first);
}

/** Where a connected socket's peer is. */
export function remoteEndpoint(socket: net.Socket): Endpoint {
  return { host: plainHost(socket.remoteAddress ?? '?'), port: socket.remotePort ?? 0 };
}

function listenError(error: NodeJS.ErrnoException, host: string | undefined, port: number): LanchatError {
  switch (error.code) {
    case 'EADDRINUSE':
      return new LanchatError('ERR_ADDRESS_IN_USE', `port ${port} is already in use (pick another, or 0 for any free port)`);
    case 'EACCES':
      return new LanchatError('ERR_PERMISSION', `no permission to listen on port ${port} (ports below 1024 need root)`);
    case 'EADDRNOTAVAIL':
      return new LanchatError('ERR_ADDRESS', `${host} is not an address of this machine`);
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new LanchatError('ERR_UNKNOWN_HOST', `cannot resolve host "${host}"`);
    default:
      return new LanchatError('ERR_LISTEN', `cannot listen on port ${port}: ${error.message}`);
  }
}

/**
 * Listens on `host` (default: every interface, IPv4 and IPv6) and resolves to
 * the server and the address to show, with the real port when `port` is 0.
 */
export async function openServer(host: string | undefined, port: number): Promise<{ server: net.Server; address: string }> {
  // Half-open: a netcat peer that has finished sending (nc -N) still reads our lines.
  // Paused: see adoptAccepted.
  const server = net.createServer({ noDelay: true, allowHalfOpen: true, pauseOnConnect: true });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error) => reject(listenError(error, host, port)));
    server.listen({ host, port }, resolve);
  });
  const bound = server.address() as net.AddressInfo;
  // Dual-stack "::" answers on IPv4 too; 0.0.0.0 is the form people (and scripts) dial.
  const shown = host === undefined ? '0.0.0.0' : bound.address;
  return { server, address: formatAddress(shown, bound.port) };
}

function connectError(error: NodeJS.ErrnoException, target: string, host: string): LanchatError {
  switch (error.code) {
    case 'ECONNREFUSED':
      return new LanchatError('ERR_REFUSED', `connection refused by ${target} (is lanchat listening there?)`);
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_NONAME':
      return new LanchatError('ERR_UNKNOWN_HOST', `cannot resolve host "${host}"`);
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return new LanchatError('ERR_UNREACHABLE', `${target} is unreachable (${error.code}: check the address and the network)`);
    default:
      return new LanchatError('ERR_CONNECT', `cannot connect to ${target}: ${error.message}`);
  }
}

function connectOnce(host: string, port: number, options: DialOptions): Promise<net.Socket> {
  const { timeoutMs, signal } = options;
  const target = formatAddress(host, port);
  return new Promise((resolve, reject) => {
    const pooled = options.pooledReads ? { onread: pooledReads(() => socket) } : {};
    const socket: net.Socket = net.connect({ host, port, noDelay: true, allowHalfOpen: true, ...pooled });
    const fail = (error: LanchatError): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      socket.destroy();
      reject(error);
    };
    const onAbort = (): void => fail(new LanchatError('ERR_ABORTED', 'stopped'));
    const timer = setTimeout(
      () => fail(new LanchatError('ERR_TIMEOUT', `no answer from ${target} within ${timeoutMs / 1000} s`)),
      timeoutMs,
    );
    signal.addEventListener('abort', onAbort);
    socket.once('error', (error) => fail(connectError(error, target, host)));
    socket.once('connect', () => {
      if (options.pooledReads) socket.pause(); // not a byte is emitted before the reader is there
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      socket.removeAllListeners('error');
      resolve(socket);
    });
  });
}

export interface DialOptions {
  timeoutMs: number;
  /** Further attempts, a second apart, while nobody answers. */
  retries: number;
  signal: AbortSignal;
  /** Told before each retry. */
  onRetry?: (error: LanchatError, attempt: number) => void;
  /**
   * Read into socketReads (plaintext only: TLS reads for itself). The socket
   * comes paused; resume() starts reading.
   */
  pooledReads?: boolean;
}

/** Connects to host:port; throws a LanchatError naming what went wrong. */
export async function dial(host: string, port: number, options: DialOptions): Promise<net.Socket> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await connectOnce(host, port, options);
    } catch (error) {
      const failure = error as LanchatError;
      if (attempt > options.retries || failure.code === 'ERR_ABORTED') throw failure;
      options.onRetry?.(failure, attempt);
      await sleep(RETRY_DELAY_MS, undefined, { signal: options.signal }).catch(() => {});
      if (options.signal.aborted) throw new LanchatError('ERR_ABORTED', 'stopped');
    }
  }
}
