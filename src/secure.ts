// TLS 1.3 for lanchat sessions, with this install's identity on both sides
// (mutual TLS). Certificates are self-signed, so nothing here trusts a CA:
// peers are recognised by the SHA-256 fingerprint of their certificate (see
// trust.ts). The door (door.ts) and connect call these.
import { constants as cryptoConstants } from 'node:crypto';
import { once } from 'node:events';
import type { Socket } from 'node:net';
import * as tls from 'node:tls';
import { LanchatError } from './errors.js';
import type { Identity } from './identity.js';

/**
 * The TLS context of an identity, built once: building one parses the PEM
 * key and certificate, which costs about as much as a handshake (a listener
 * built one per connection). An identity is loaded once per process and never
 * changes, so neither does its context.
 */
const contexts = new WeakMap<Identity, tls.SecureContext>();

function tlsOptions(identity: Identity): tls.CommonConnectionOptions {
  let secureContext = contexts.get(identity);
  if (!secureContext) {
    secureContext = tls.createSecureContext({
      key: identity.key,
      cert: identity.cert,
      minVersion: 'TLSv1.3',
      // No resumption: every lanchat connect is a new process. Without this, a listener encrypts a copy of each
      // session (the connector's certificate in it) into the TLS 1.3 tickets it must send; with it, the tickets
      // are bare session ids that nothing remembers.
      secureOptions: cryptoConstants.SSL_OP_NO_TICKET,
    });
    contexts.set(identity, secureContext);
  }
  return { secureContext, rejectUnauthorized: false };
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
  // A TLS listener answers our hello at once, with a whole flight of records; a plain one (nc -l) shows
  // its user our binary hello and says nothing, or a few typed letters that OpenSSL would wait on.
  const silence = setTimeout(() => {
    if (socket.bytesRead < TLS_RECORD_HEADER) secure.destroy(notTls(socket.bytesRead > 0, NOT_TLS_SILENCE_MS));
  }, NOT_TLS_SILENCE_MS);
  try {
    const fingerprint = await handshake(secure, 'secureConnect', timeoutMs, stop);
    if (!fingerprint) throw new LanchatError('ERR_TLS', 'the peer presented no certificate');
    return { socket: secure, fingerprint };
  } catch (error) {
    // Text where a TLS record should be: OpenSSL reads its first bytes as a record header of another version.
    const plainText = error instanceof LanchatError && /wrong version number|packet length too long/.test(error.message);
    throw plainText ? notTls(true) : error;
  } finally {
    clearTimeout(silence);
  }
}

/** Bytes of a TLS record's header: fewer than that back, and no TLS listener has answered. */
const TLS_RECORD_HEADER = 5;
/** How long a connector waits for the first answer to its TLS hello before it takes the listener for a plain one. */
const NOT_TLS_SILENCE_MS = 2000;

/** A listener that answered our TLS hello in plain text, or not at all (`silentMs`). */
function notTls(answered: boolean, silentMs?: number): LanchatError {
  return answered
    ? new LanchatError('ERR_NOT_TLS', 'the listener answered in plain text, not TLS')
    : new LanchatError('ERR_NOT_TLS', `the listener said nothing to the TLS handshake within ${silentMs! / 1000} s`);
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
