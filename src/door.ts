// The door of a listener: what kind of peer a new connection is (TLS,
// plaintext lanchat, netcat), whether it may come in, and telling it why not
// in a form it reads. Free of process.*: the command gives it a place to log.
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { LanchatError } from './errors.js';
import type { Identity } from './identity.js';
import { refuse } from './peer.js';
import { secureServer, sniffPeer, type PeerKind, type SniffLimits } from './secure.js';
import { formatAddress, type Endpoint } from './address.js';
import { remoteEndpoint } from './transport.js';
import { impostorWarning, loadKeyBook, whoseKey, type KeyBook } from './trust.js';
import type { SessionSecurity } from './conversation.js';

/** Who may come in (listen's --insecure, --secure-only, --known-only). */
export interface DoorPolicy {
  /** Also accept the plaintext lanchat protocol. */
  insecure?: boolean;
  /** Accept TLS only: no plaintext lanchat, no netcat. */
  secureOnly?: boolean;
  /** Accept only connectors whose key is a contact's or a known peer's. */
  knownOnly?: boolean;
}

/** A peer let in: the stream to talk on (the socket, or TLS over it) and what the session needs to know. */
export interface Admitted {
  stream: Duplex;
  from: Endpoint;
  /** For Chat.run: the peer's key and nick check, and whether it is plain text (netcat): the door's verdict, final. */
  security: SessionSecurity & { plain: boolean };
  /**
   * A peer let in without a word (taken for netcat after the grace): true
   * while nothing has passed either way since. Such a peer holds the seat
   * only until one that speaks arrives (see listen).
   */
  quiet?: () => boolean;
}

/** How long a new peer may stay silent before it is taken for netcat. */
const GRACE_MS = 2000;
/** How long a TLS handshake, and then the connector's hello, may take. */
const HANDSHAKE_MS = 10_000;
/** At the door: a first byte within the grace; a first line that may be a hello, within the handshake's time. */
const FIRST_WORDS: SniffLimits = { silentMs: GRACE_MS, lineMs: HANDSHAKE_MS };
/** Inside TLS, the connector's hello comes at once (or it did not accept our key and leaves). */
const HELLO_IN_TLS: SniffLimits = { silentMs: HANDSHAKE_MS, lineMs: HANDSHAKE_MS };
const ENCRYPTED_ONLY = 'this listener accepts only encrypted lanchat sessions';

class Refused extends Error {
  constructor(
    /** What we note on our stderr. */
    readonly noted: string,
    /** What the peer is told. */
    readonly told: string,
  ) {
    super(noted);
  }
}

/** Why a plaintext peer is turned away, or null to let it in. */
function plaintextRefusal(kind: PeerKind, flags: DoorPolicy): Refused | null {
  const strict = flags.secureOnly ? '--secure-only' : flags.knownOnly ? '--known-only' : null;
  if (strict)
    return new Refused(`not encrypted (${strict})`, kind === 'lanchat' ? `${ENCRYPTED_ONLY}: connect without --insecure` : ENCRYPTED_ONLY);
  if (kind === 'lanchat' && !flags.insecure) {
    return new Refused(
      'a lanchat connector without encryption (listen --insecure lets it in)',
      `${ENCRYPTED_ONLY}: connect without --insecure`,
    );
  }
  return null;
}

/**
 * Looks at a new connection — TLS, plaintext lanchat or netcat — and lets it
 * in or turns it away, telling it why in a form it reads (over TLS, as a
 * lanchat error, or as a plain line) and noting it on `log`. Resolves to the
 * admitted peer, or null.
 */
export async function admit(
  socket: Socket,
  flags: DoorPolicy,
  identity: Identity,
  env: NodeJS.ProcessEnv,
  log: (line: string) => void,
): Promise<Admitted | null> {
  const from = remoteEndpoint(socket);
  const address = formatAddress(from.host, from.port);
  let stream: Duplex = socket;
  let plain = false;
  try {
    const sniffed = await sniffPeer(socket, FIRST_WORDS);
    const { kind } = sniffed;
    stream = sniffed.stream;
    // A port probe (nc -z) or a peer that changed its mind is no session.
    if (kind === 'gone') throw new Error('connected and left without a word');
    plain = kind !== 'tls' && kind !== 'lanchat';
    if (kind !== 'tls') {
      const refusal = plaintextRefusal(kind, flags);
      if (refusal) throw refusal;
      if (kind === 'silent') return { stream, from, security: { plain }, quiet: () => socket.bytesRead === 0 && socket.bytesWritten === 0 };
      if (plain) return { stream, from, security: { plain } }; // netcat has no nick to check
      const book = await currentKeyBook(env, flags, log);
      return {
        stream,
        from,
        security: { plain, vouch: (nick, own) => impostorWarning(book, nick, null, { nick: own, fingerprint: null }) },
      };
    }

    const secure = await secureServer(socket, identity, HANDSHAKE_MS).catch((error: LanchatError) => {
      throw error.code === 'ERR_TLS_LEFT' ? new Error(`${error.message} (it may not have accepted this listener's key)`) : error;
    });
    stream = secure.socket;
    const { fingerprint } = secure;
    if (!fingerprint) {
      plain = true; // no lanchat client: tell it in text
      throw new Refused(
        'no certificate: not a lanchat connector',
        'lanchat peers present a certificate (their identity); this one did not',
      );
    }
    const book = await currentKeyBook(env, flags, log); // after the handshake: a refusal goes over TLS
    const whose = whoseKey(book, fingerprint);
    if (flags.knownOnly && !whose) {
      throw new Refused(
        `unknown key ${fingerprint} (--known-only)`,
        'your key is not known here: this listener accepts only its contacts and the peers it has connected to (send them your `lanchat id`)',
      );
    }
    // A connector checks our key once TLS is up, and leaves without a word if it is not the one it pinned.
    const first = await sniffPeer(secure.socket, HELLO_IN_TLS);
    stream = first.stream;
    if (first.kind === 'gone')
      throw new Error("left after the TLS handshake without a word (it may not have accepted this listener's key)");
    if (first.kind === 'silent') throw new Error(`said nothing within ${HANDSHAKE_MS / 1000} s of the TLS handshake`);
    const key = { fingerprint, note: whose ?? 'a new key: not a contact or known peer; /contact NAME PORT saves it' };
    return {
      stream,
      from,
      security: {
        plain: first.kind !== 'lanchat',
        key,
        vouch: (nick, own) => impostorWarning(book, nick, fingerprint, { nick: own, fingerprint: identity.fingerprint }),
      },
    };
  } catch (error) {
    if (!(error instanceof Refused)) {
      log(`lanchat: ${address}: ${(error as Error).message}`);
      stream.destroy();
      return null;
    }
    log(`refused ${address}: ${error.noted}`);
    void refuse(stream, error.told, plain);
    return null;
  }
}

/**
 * Turns away a peer whose address may not connect (--allow), in the form it
 * reads, without taking a place at the door: its first words and its TLS
 * handshake get only the grace of a silent peer. (listen caps how many are
 * turned away at once.)
 */
export async function barOut(socket: Socket, identity: Identity): Promise<void> {
  const reason = 'not allowed from your address';
  try {
    const { kind, stream } = await sniffPeer(socket, { silentMs: GRACE_MS, lineMs: GRACE_MS });
    if (kind === 'tls') await refuse((await secureServer(socket, identity, GRACE_MS)).socket, reason);
    else if (kind === 'lanchat' || kind === 'text') await refuse(stream, reason, kind === 'text');
    else socket.destroy();
  } catch {
    socket.destroy();
  }
}

/**
 * The pins as they are now (contacts may have changed since the last peer). A
 * file broken meanwhile is reported, and peers go unrecognised until it is
 * fixed — except under --known-only, which cannot check anyone then.
 */
async function currentKeyBook(env: NodeJS.ProcessEnv, flags: DoorPolicy, log: (line: string) => void): Promise<KeyBook> {
  try {
    return await loadKeyBook(env);
  } catch (error) {
    log(`lanchat: ${(error as Error).message}`);
    if (flags.knownOnly) throw new Refused('keys cannot be checked (--known-only)', 'this listener cannot check keys right now');
    return { contacts: [], peers: {} };
  }
}
