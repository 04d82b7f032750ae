// TLS 1.3 for lanchat sessions, with this install's identity on both sides
// (mutual TLS). Certificates are self-signed, so nothing here trusts a CA:
// peers are recognised by the SHA-256 fingerprint of their certificate, pinned
// on first use (known-peers.json), like ssh's accept-new.
import { once } from 'node:events';
import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';
import * as tls from 'node:tls';
import { LanchatError } from './errors.js';
import type { Identity } from './identity.js';
import { readText, storePath, updateText } from './store.js';

const KNOWN_PEERS_FILE = 'known-peers.json';
/** The first byte of a TLS handshake record. */
export const TLS_HANDSHAKE = 0x16;

function tlsOptions(identity: Identity): tls.SecureContextOptions & tls.CommonConnectionOptions {
  return { key: identity.key, cert: identity.cert, minVersion: 'TLSv1.3', rejectUnauthorized: false };
}

async function handshake(socket: tls.TLSSocket, event: 'secureConnect' | 'secure', timeoutMs: number): Promise<string> {
  const timer = setTimeout(() => socket.destroy(new LanchatError('ERR_TLS', `no TLS handshake within ${timeoutMs / 1000} s`)), timeoutMs);
  try {
    await once(socket, event);
  } catch (error) {
    throw error instanceof LanchatError ? error : new LanchatError('ERR_TLS', `the TLS handshake failed: ${(error as Error).message}`);
  } finally {
    clearTimeout(timer);
  }
  const fingerprint = socket.getPeerX509Certificate()?.fingerprint256;
  if (!fingerprint) throw new LanchatError('ERR_TLS', 'the peer presented no certificate');
  return fingerprint;
}

/** Connector: TLS over a connected socket; resolves to the TLS socket and the peer's fingerprint. */
export async function secureClient(socket: Socket, identity: Identity, timeoutMs: number): Promise<{ socket: tls.TLSSocket; fingerprint: string }> {
  const secure = tls.connect({ socket, ...tlsOptions(identity) });
  return { socket: secure, fingerprint: await handshake(secure, 'secureConnect', timeoutMs) };
}

/**
 * Listener: TLS over an accepted socket whose first bytes were already read
 * (to tell TLS from the other kinds of peer). They are replayed through a small
 * stream wrapper, since a TLS socket built on the raw handle would not see them.
 */
export async function secureServer(socket: Socket, first: Buffer, identity: Identity, timeoutMs: number): Promise<{ socket: tls.TLSSocket; fingerprint: string }> {
  const replay = new Duplex({
    read: () => void socket.resume(),
    write: (chunk, encoding, callback) => void socket.write(chunk, encoding, callback),
    final: (callback) => void socket.end(callback),
    destroy: (error, callback) => {
      socket.destroy();
      callback(error);
    },
  });
  replay.push(first);
  socket.on('data', (chunk: Buffer) => replay.push(chunk) || socket.pause());
  socket.on('end', () => replay.push(null));
  socket.on('error', (error) => replay.destroy(error));
  const secure = new tls.TLSSocket(replay, { isServer: true, requestCert: true, ...tlsOptions(identity) });
  // A TLS socket over a stream wrapper does not notice a peer that leaves mid-handshake (a connector that
  // refused our key, say): tell it, rather than wait for the timeout.
  let established = false;
  secure.once('secure', () => (established = true));
  socket.once('end', () => established || secure.destroy(new LanchatError('ERR_TLS', 'the peer left during the TLS handshake')));
  return { socket: secure, fingerprint: await handshake(secure, 'secure', timeoutMs) };
}

interface KnownPeers {
  version: 1;
  peers: Record<string, string>;
}

function parseKnownPeers(text: string | null, path: string): KnownPeers {
  if (text === null) return { version: 1, peers: {} };
  try {
    const data = JSON.parse(text) as KnownPeers;
    if (data.version !== 1 || typeof data.peers !== 'object' || data.peers === null) throw new Error('not a known-peers file');
    return data;
  } catch (error) {
    throw new LanchatError('ERR_KNOWN_PEERS_CORRUPT', `${path}: ${(error as Error).message}; fix or remove the file`);
  }
}

/**
 * Trust on first use for the address we dialled: a new address is pinned and
 * reported as new; a known one must present the same key, or the session is
 * refused before anything is exchanged.
 */
export async function checkPin(env: NodeJS.ProcessEnv, address: string, fingerprint: string): Promise<'new' | 'known'> {
  const path = storePath(env, KNOWN_PEERS_FILE);
  const known = parseKnownPeers(await readText(path), path).peers[address];
  if (known === fingerprint) return 'known';
  if (known !== undefined) {
    throw new LanchatError(
      'ERR_KEY_CHANGED',
      `WARNING: ${address} presented a different key than before (someone may be in the middle)\n` +
        `  expected  ${known}\n  presented ${fingerprint}\n` +
        `nothing was sent. If the peer really has a new key: lanchat forget ${address}`,
    );
  }
  await updateText(path, (text) => {
    const data = parseKnownPeers(text, path);
    data.peers[address] ??= fingerprint;
    return { text: `${JSON.stringify(data, null, 2)}\n`, result: undefined };
  });
  return 'new';
}

/** `lanchat forget ADDRESS`: drops a pinned key; resolves to whether there was one. */
export function forgetPin(env: NodeJS.ProcessEnv, address: string): Promise<boolean> {
  const path = storePath(env, KNOWN_PEERS_FILE);
  return updateText(path, (text) => {
    const data = parseKnownPeers(text, path);
    if (!(address in data.peers)) return { text: null, result: false };
    delete data.peers[address];
    return { text: `${JSON.stringify(data, null, 2)}\n`, result: true };
  });
}

/** The first bytes a new connection sends, or null if it sends nothing within `ms` (or leaves). */
function firstChunk(socket: Socket, ms: number): Promise<Buffer | null> {
  return new Promise((resolve) => {
    const done = (chunk: Buffer | null): void => {
      clearTimeout(timer);
      socket.off('data', done).off('end', onEnd).off('close', onEnd);
      socket.pause();
      resolve(chunk);
    };
    const onEnd = (): void => done(null);
    const timer = setTimeout(onEnd, ms);
    socket.on('data', done).once('end', onEnd).once('close', onEnd);
  });
}

/**
 * Listener: tells a TLS client (its first byte opens a handshake) from a
 * plaintext one, and sets up TLS for the former. Resolves to the stream to run
 * the session on, the peer's fingerprint when encrypted, and whether the
 * plaintext peer's first bytes are still to come (so detection need not wait again).
 */
export async function acceptPeer(
  socket: Socket,
  identity: Identity,
  graceMs: number,
  timeoutMs: number,
): Promise<{ stream: Duplex; fingerprint: string | null; silent: boolean }> {
  const first = await firstChunk(socket, graceMs);
  if (first && first[0] === TLS_HANDSHAKE) {
    const secure = await secureServer(socket, first, identity, timeoutMs);
    return { stream: secure.socket, fingerprint: secure.fingerprint, silent: false };
  }
  if (first) socket.unshift(first);
  return { stream: socket, fingerprint: null, silent: first === null };
}
