// TLS 1.3 for lanchat sessions, with this install's identity on both sides
// (mutual TLS). Certificates are self-signed, so nothing here trusts a CA:
// peers are recognised by the SHA-256 fingerprint of their certificate (see
// trust.ts). Also how a listener tells what kind of peer has connected.
import { once } from 'node:events';
import type { Socket } from 'node:net';
import { Duplex, Readable } from 'node:stream';
import * as tls from 'node:tls';
import { LanchatError } from './errors.js';
import type { Identity } from './identity.js';
import { MAX_HEADER_BYTES, isHelloLine } from './protocol.js';

/** The first byte of a TLS handshake record. */
const TLS_HANDSHAKE = 0x16;

function tlsOptions(identity: Identity): tls.SecureContextOptions & tls.CommonConnectionOptions {
  return { key: identity.key, cert: identity.cert, minVersion: 'TLSv1.3', rejectUnauthorized: false };
}

/** Resolves to the peer's fingerprint, or null if it presented no certificate. `stop`: gives up at once (ERR_ABORTED). */
async function handshake(
  socket: tls.TLSSocket,
  event: 'secureConnect' | 'secure',
  timeoutMs: number,
  stop?: AbortSignal,
): Promise<string | null> {
  const timer = setTimeout(() => socket.destroy(new LanchatError('ERR_TLS', `no TLS handshake within ${timeoutMs / 1000} s`)), timeoutMs);
  const onStop = (): void => void socket.destroy(new LanchatError('ERR_ABORTED', 'stopped'));
  if (stop?.aborted) onStop();
  stop?.addEventListener('abort', onStop);
  const settled = new AbortController();
  try {
    await Promise.race([
      once(socket, event, { signal: settled.signal }),
      // A peer that leaves mid-handshake (a connector that did not like our key) raises no error; on a
      // half-open socket it does not even close it.
      Promise.race([once(socket, 'end', { signal: settled.signal }), once(socket, 'close', { signal: settled.signal })]).then(() => {
        throw new LanchatError('ERR_TLS_LEFT', 'the peer left during the TLS handshake');
      }),
    ]);
  } catch (error) {
    if (error instanceof LanchatError) throw error;
    const { reason, message, code } = error as NodeJS.ErrnoException & { reason?: string };
    if (code === 'ECONNRESET' || code === 'EPIPE') throw new LanchatError('ERR_TLS_LEFT', 'the peer hung up during the TLS handshake');
    // OpenSSL's messages run to file names and line numbers: its reason ("wrong version number") says enough.
    throw new LanchatError('ERR_TLS', `the TLS handshake failed: ${reason ?? message}`);
  } finally {
    settled.abort();
    clearTimeout(timer);
    stop?.removeEventListener('abort', onStop);
  }
  return socket.getPeerX509Certificate()?.fingerprint256 ?? null;
}

/** Connector: TLS over a connected socket; resolves to the TLS socket and the peer's fingerprint. */
export async function secureClient(
  socket: Socket,
  identity: Identity,
  timeoutMs: number,
  stop?: AbortSignal,
): Promise<{ socket: tls.TLSSocket; fingerprint: string }> {
  // A listener that hangs up at once (too many connections, an address it does not allow) may already have:
  // a TLS socket made now would never hear of it.
  if (socket.readableEnded || socket.destroyed) throw new LanchatError('ERR_TLS_LEFT', 'the peer hung up at once');
  const secure = tls.connect({ socket, ...tlsOptions(identity) });
  const fingerprint = await handshake(secure, 'secureConnect', timeoutMs, stop);
  if (!fingerprint) throw new LanchatError('ERR_TLS', 'the peer presented no certificate');
  return { socket: secure, fingerprint };
}

/**
 * Listener: TLS over an accepted socket whose first bytes were already read
 * (to tell TLS from the other kinds of peer) and put back with unshift(): a
 * TLS socket made on it feeds what the socket holds to the TLS engine first.
 */
export async function secureServer(
  socket: Socket,
  identity: Identity,
  timeoutMs: number,
): Promise<{ socket: tls.TLSSocket; fingerprint: string | null }> {
  const secure = new tls.TLSSocket(socket, { isServer: true, requestCert: true, ...tlsOptions(identity) });
  return { socket: secure, fingerprint: await handshake(secure, 'secure', timeoutMs) };
}

/**
 * What kind of peer a listener has, by what it sends first: a TLS handshake,
 * a plaintext lanchat hello, other text (netcat) — or nothing, either
 * staying connected ('silent') or leaving ('gone').
 */
export type PeerKind = 'tls' | 'lanchat' | 'text' | 'silent' | 'gone';

/** How long sniffPeer waits (both from its start). */
export interface SniffLimits {
  /** For a first byte: a peer that sends none is 'silent'. */
  silentMs: number;
  /** For the end of a first line that may be a hello: unfinished by then, it is 'text'. */
  lineMs: number;
}

/** What a peer sniffed was, and the stream to go on with (the socket, its first bytes put back). */
export interface Sniffed {
  kind: PeerKind;
  stream: Duplex;
}

/**
 * The kind of a peer by its first bytes, or null while they may still be the
 * start of a hello: a hello is one JSON line, so a first line that opens with
 * "{" is waited for up to its end (a hello cut by the network, or typed
 * slowly, is still a hello), but never past MAX_HEADER_BYTES. `ended`: the
 * peer sent nothing more.
 */
export function classifyFirstBytes(bytes: Buffer, ended = false): 'tls' | 'lanchat' | 'text' | null {
  if (bytes.length === 0) return null;
  if (bytes[0] === TLS_HANDSHAKE) return 'tls';
  const newline = bytes.indexOf(0x0a);
  if (newline >= 0) return isHelloLine(bytes.subarray(0, newline)) ? 'lanchat' : 'text';
  if (bytes[0] !== 0x7b || bytes.length >= MAX_HEADER_BYTES || ended) return 'text';
  return null;
}

/**
 * Listener: the kind of a new peer (or of what comes first inside TLS), told
 * once: the session takes it as it is. What was read is put back for whoever
 * reads next. A peer that leaves after a few bytes, no whole line yet, can no
 * longer have them put back (its end was read): it is handed on as a stream
 * that replays them, then ends.
 */
export function sniffPeer(socket: Socket, limits: SniffLimits): Promise<Sniffed> {
  return new Promise((resolve) => {
    // It may have gone while we were busy elsewhere (a TLS peer while its keys were looked up).
    if (socket.destroyed || socket.readableEnded) return resolve({ kind: 'gone', stream: socket });
    const chunks: Buffer[] = [];
    let bytes = 0;
    const finish = (kind: PeerKind, stream: Duplex = socket): void => {
      clearTimeout(silentTimer);
      clearTimeout(lineTimer);
      socket.off('data', onData).off('end', onEnd).off('close', onClose);
      socket.pause();
      // After pause(): a flowing socket would hand it straight back. One chunk (the usual case) goes back as it
      // came, so that its reader can recycle it (transport.ts: socketReads).
      if (bytes > 0 && !socket.readableEnded) socket.unshift(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks));
      resolve({ kind, stream });
    };
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      bytes += chunk.length;
      const kind = classifyFirstBytes(chunks.length === 1 ? chunk : Buffer.concat(chunks));
      if (kind) finish(kind);
    };
    const onEnd = (): void => (bytes === 0 ? finish('gone') : finish('text', replayThenEnd(Buffer.concat(chunks), socket)));
    const onClose = (): void => finish('gone'); // reset: nobody left to talk to
    const silentTimer = setTimeout(() => bytes === 0 && finish('silent'), limits.silentMs);
    const lineTimer = setTimeout(() => finish(bytes === 0 ? 'silent' : 'text'), Math.max(limits.lineMs, limits.silentMs));
    socket.on('data', onData).once('end', onEnd).once('close', onClose);
    socket.resume(); // an accepted socket starts paused (transport.ts: adoptAccepted)
  });
}

/** A stream that reads `bytes` and then its end, and writes to `socket`. */
function replayThenEnd(bytes: Buffer, socket: Socket): Duplex {
  return Duplex.from({ readable: Readable.from([bytes], { objectMode: false }), writable: socket });
}
