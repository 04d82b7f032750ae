// The door of a listener: from an accepted connection to an admitted peer or
// a refusal in the form the peer reads. It tells what kind of peer a new
// connection is (TLS, plaintext lanchat, netcat), whether its address may
// connect (--allow), how many may be looked at at once, whose key it holds
// (--known-only), and turns away whom the listener cannot take (busy,
// stopped). Where an admitted peer goes is the listener's business
// (commands/listen.ts). Free of process.*: the command gives it a place to log.
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { Duplex, Readable } from 'node:stream';
import { formatAddress, type AllowList, type Endpoint } from './address.js';
import type { LanchatError } from './errors.js';
import type { Identity } from './identity.js';
import { closeSoon } from './session.js';
import { MAX_HEADER_BYTES, encodeControl, isHelloLine, type ControlFrame } from './protocol.js';
import { secureServer } from './secure.js';
import { adoptAccepted, remoteEndpoint } from './transport.js';
import { KeyBookReader, impostorWarning, whoseKey, type KeyBook } from './trust.js';

/** The peer's key when the session is TLS, and how we know it ("pinned in contact bob", "a key not known here"). */
export interface PeerKey {
  fingerprint: string;
  note: string;
}

export interface SessionSecurity {
  key?: PeerKey;
  /** The key is not a contact's or a known peer's (the chat may say how to keep it). */
  newKey?: boolean;
  /**
   * A warning when the nick a peer claims (at hello or /nick) does not fit its
   * key, or passes for ours (`own`), else null.
   */
  vouch?: (nick: string, own: string) => string | null;
  /** The peer's hello arrived: it has proved to be lanchat (the connector pins a new key only now). */
  proven?: () => void;
}

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

export interface DoorOptions {
  policy: DoorPolicy;
  /** To serve connectors that ask for TLS. */
  identity: Identity;
  /** Where the pins are (trust.ts). */
  env: NodeJS.ProcessEnv;
  /** Who may connect (--allow); null: anyone. */
  allow: AllowList | null;
  /** Where the door notes whom it refused, and why. */
  log: (line: string) => void;
}

/** How long a new peer may stay silent before it is taken for netcat. */
const GRACE_MS = 2000;
/** How long a first line that may be a plaintext hello may take (a hello cut by the network, or typed slowly). */
const FIRST_LINE_MS = 10_000;
/**
 * How long a TLS handshake, and then the connector's hello, may take (sshd's
 * LoginGraceTime): a lanchat connector on a LAN is through in milliseconds.
 */
const HANDSHAKE_MS = 3000;
/** At the door: a first byte within the grace; a first line that may be a hello, within its time. */
const FIRST_WORDS: SniffLimits = { silentMs: GRACE_MS, lineMs: FIRST_LINE_MS };
/** Inside TLS, the connector's hello comes at once (or it did not accept our key and leaves). */
const HELLO_IN_TLS: SniffLimits = { silentMs: HANDSHAKE_MS, lineMs: HANDSHAKE_MS };
const ENCRYPTED_ONLY = 'this listener accepts only encrypted lanchat sessions';
/** What a default listener takes: plain text is netcat's, lanchat's own protocol comes encrypted. */
const NO_PLAINTEXT_LANCHAT = 'this listener accepts encrypted lanchat sessions and plain text (netcat), not lanchat unencrypted';
/** New connections looked at (first bytes, TLS handshake) at once, in all and from one address. */
const MAX_ADMITTING = 16;
const MAX_ADMITTING_FROM_ONE = 4;
/**
 * A connection at the door this long is stalled: when the door is full, a
 * newcomer may take its place (see makeRoom). A real peer is through long before.
 */
const STALLED_MS = 250;
/** Connections turned away at the door (barred by --allow, or no room), being told so at once; more are closed without a word. */
const MAX_SENDING_AWAY = 8;
/** Connections reset before they could be accepted are noted together, at most this often (a storm is a line, not thousands). */
const GONE_NOTE_MS = 1000;
/** How long close() waits for the peers still at the door to be told, before it drops them. */
const CLOSE_MS = 1000;

/** Why a listener turns an admitted peer away: what we note, and what the peer is told. */
const TURNED_AWAY = {
  busy: { noted: 'already in a chat', told: 'busy: already in a chat, try again later' },
  stopped: { noted: 'the listener stopped', told: 'the listener has stopped' },
  full: { noted: 'the room is full', told: 'busy: the room is full, try again later' },
} as const;

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

/** A connection being looked at: where it comes from, since when, and its admission. */
interface AtTheDoor {
  from: Endpoint;
  since: number;
  admission: Promise<void>;
  /** Closed to make room for a newcomer (noted so then: its admission notes nothing more). */
  closedToMakeRoom: boolean;
}

const address = (from: Endpoint): string => formatAddress(from.host, from.port);

/** A peer may reset at any time before (or while) it is told anything: no concern of ours. */
function ignoreError(): void {}

/**
 * The listener's door. Give it each accepted connection (`take`, fit for a
 * server's 'connection' event); it emits 'admitted' for each peer it lets in,
 * looking at new connections side by side, so that a slow or silent one holds
 * up neither the running chat nor the next peer.
 */
export class Door extends EventEmitter<{ admitted: [peer: Admitted] }> {
  readonly #options: DoorOptions;
  /** The connections being looked at, oldest first. */
  readonly #admitting = new Map<Socket, AtTheDoor>();
  /** Connections turned away at the door being told so, by why. */
  readonly #sendingAway = { barred: 0, busy: 0 };
  #closed: Promise<void> | null = null;
  /** Connections reset before they could be accepted, not noted yet. */
  #gone = 0;
  readonly #keys: KeyBookReader;

  constructor(options: DoorOptions) {
    super();
    this.#options = options;
    this.#keys = new KeyBookReader(options.env);
  }

  /** A connection accepted by openServer's server (paused): let in, turned away, or dropped. */
  readonly take = (accepted: Socket): void => {
    const { allow } = this.#options;
    // Where it comes from, once, now: later notes and counts use this (a socket that has reset no longer says).
    // One that reset before we could accept it is already gone, and its address with it: the kernel keeps it
    // only for accept(2), which Node (libuv) calls without asking. Counted, not noted as an unknown address.
    if (accepted.remoteAddress === undefined) {
      accepted.destroy();
      return this.#noteGone();
    }
    const from = remoteEndpoint(accepted);
    const socket = adoptAccepted(accepted);
    socket.on('error', ignoreError); // a peer may reset before its session starts
    if (allow && !allow.allows(from.host)) {
      return this.#sendAway(socket, from, 'barred', `not allowed (--allow ${allow.rules.join(',')})`, 'not allowed from your address');
    }
    if (!this.#makeRoom(from)) {
      return this.#sendAway(socket, from, 'busy', 'too many connections at once', 'busy: too many connections at once, try again later');
    }
    const entry: AtTheDoor = { from, since: Date.now(), admission: Promise.resolve(), closedToMakeRoom: false };
    this.#admitting.set(socket, entry);
    entry.admission = this.#admit(socket, entry)
      .then((peer) => {
        if (!peer || entry.closedToMakeRoom) return;
        // Let in after the listener stopped: told so, not just dropped.
        if (this.#closed) void this.turnAway(peer, 'stopped');
        else this.emit('admitted', peer);
      })
      .finally(() => {
        if (this.#admitting.get(socket) === entry) this.#admitting.delete(socket);
      });
  };

  #noteGone(): void {
    if (this.#gone++ === 0) setTimeout(() => this.#flushGone(), GONE_NOTE_MS).unref();
  }

  #flushGone(): void {
    const gone = this.#gone;
    this.#gone = 0;
    if (gone === 1) this.#options.log('lanchat: a connection reset before it could be accepted: its address is gone');
    else if (gone > 1) this.#options.log(`lanchat: ${gone} connections reset before they could be accepted: their addresses are gone`);
  }

  /**
   * Room at the door for a newcomer from `from`, as sshd's MaxStartups keeps
   * room for a real login: true if there is, or once a stalled connection (at
   * the door for STALLED_MS, which a real peer never is) was closed to make
   * it — from the address that holds the most places (the oldest of its), and
   * only one that holds more than the newcomer's; from the newcomer's own
   * address when that one holds all it may. A flood of unfinished handshakes
   * thus keeps nobody out for long; only a door full of fresh connections
   * turns a newcomer away.
   */
  #makeRoom(from: Endpoint): boolean {
    const held = new Map<string, number>();
    for (const { from: other } of this.#admitting.values()) held.set(other.host, (held.get(other.host) ?? 0) + 1);
    const mine = held.get(from.host) ?? 0;
    if (this.#admitting.size < MAX_ADMITTING && mine < MAX_ADMITTING_FROM_ONE) return true;
    const now = Date.now();
    let victim: [Socket, AtTheDoor] | null = null;
    for (const [socket, entry] of this.#admitting) {
      if (now - entry.since < STALLED_MS) continue;
      const theirs = held.get(entry.from.host)!;
      const fair = mine >= MAX_ADMITTING_FROM_ONE ? entry.from.host === from.host : theirs > mine;
      // Oldest first (insertion order): a later one replaces it only by holding more.
      if (fair && (!victim || theirs > held.get(victim[1].from.host)!)) victim = [socket, entry];
    }
    if (!victim) return false;
    const [socket, entry] = victim;
    const seconds = ((now - entry.since) / 1000).toFixed(1);
    this.#options.log(`closed ${address(entry.from)}: unfinished at the door after ${seconds} s, to make room for ${address(from)}`);
    entry.closedToMakeRoom = true;
    this.#admitting.delete(socket);
    socket.destroy();
    return true;
  }

  /**
   * Turns away a connection at the door — its address barred, or no room —
   * without a place there: it is told why within a few seconds (sendAway),
   * and a crowd of them must not take every file descriptor.
   */
  #sendAway(socket: Socket, from: Endpoint, why: 'barred' | 'busy', noted: string, told: string): void {
    const refused = (line: string): void => this.#options.log(`refused ${address(from)}: ${line}`);
    if (this.#sendingAway[why] >= MAX_SENDING_AWAY) {
      refused(`${noted}; too many at once, closed`);
      return void socket.destroy();
    }
    refused(noted);
    this.#sendingAway[why]++;
    socket.once('close', () => this.#sendingAway[why]--);
    void sendAway(socket, this.#options.identity, told);
  }

  /** Turns away a peer the listener cannot take, telling it why in the form it reads. */
  turnAway(peer: Admitted, why: keyof typeof TURNED_AWAY): Promise<void> {
    const { noted, told } = TURNED_AWAY[why];
    this.#options.log(`refused ${formatAddress(peer.from.host, peer.from.port)}: ${noted}`);
    return refuse(peer.stream, told, peer.security.plain);
  }

  /**
   * Stops admitting: whoever is still at the door is told that the listener
   * has stopped, not just dropped — within a second; then the rest are
   * dropped. Idempotent.
   */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      const admissions = Promise.all([...this.#admitting.values()].map((entry) => entry.admission));
      await Promise.race([admissions, new Promise((resolve) => setTimeout(resolve, CLOSE_MS).unref())]);
      for (const socket of this.#admitting.keys()) socket.destroy();
      this.#flushGone();
    })();
    return this.#closed;
  }

  /**
   * Looks at a new connection — TLS, plaintext lanchat or netcat — and lets it
   * in or turns it away, telling it why in a form it reads (over TLS, as a
   * lanchat error, or as a plain line) and noting it on the log. Resolves to
   * the admitted peer, or null.
   */
  async #admit(socket: Socket, entry: AtTheDoor): Promise<Admitted | null> {
    const { policy: flags, identity, log } = this.#options;
    const keys = this.#keys;
    const { from } = entry;
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
        if (kind === 'silent')
          return { stream, from, security: { plain }, quiet: () => socket.bytesRead === 0 && socket.bytesWritten === 0 };
        if (plain) return { stream, from, security: { plain } }; // netcat has no nick to check
        const book = await currentKeyBook(keys, flags, log);
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
      const book = await currentKeyBook(keys, flags, log); // after the handshake: a refusal goes over TLS
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
      // Not "new": a listener pins nobody (a connector's port changes), so a connector back again is not known either.
      const key = { fingerprint, note: whose ?? 'a key not known here' };
      return {
        stream,
        from,
        security: {
          plain: first.kind !== 'lanchat',
          key,
          ...(!whose && { newKey: true }),
          vouch: (nick, own) => impostorWarning(book, nick, fingerprint, { nick: own, fingerprint: identity.fingerprint }),
        },
      };
    } catch (error) {
      if (entry.closedToMakeRoom) return null;
      if (!(error instanceof Refused)) {
        log(`lanchat: ${address(from)}: ${(error as Error).message}`);
        stream.destroy();
        return null;
      }
      log(`refused ${address(from)}: ${error.noted}`);
      void refuse(stream, error.told, plain);
      return null;
    }
  }
}

/**
 * Turns away a connection that gets no place at the door (its address barred
 * by --allow, or no room), in the form it reads: its first words and its TLS
 * handshake get only the grace of a silent peer. (Door caps how many are
 * turned away at once.)
 */
async function sendAway(socket: Socket, identity: Identity, reason: string): Promise<void> {
  try {
    const { kind, stream } = await sniffPeer(socket, { silentMs: GRACE_MS, lineMs: GRACE_MS });
    if (kind === 'tls') await refuse((await secureServer(socket, identity, GRACE_MS)).socket, reason);
    else if (kind === 'lanchat' || kind === 'text') await refuse(stream, reason, kind === 'text');
    else socket.destroy();
  } catch {
    socket.destroy();
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
      `${NO_PLAINTEXT_LANCHAT}: connect without --insecure`,
    );
  }
  return null;
}

/**
 * The pins as they are now (contacts may have changed since the last peer). A
 * file broken meanwhile is reported, and peers go unrecognised until it is
 * fixed — except under --known-only, which cannot check anyone then.
 */
async function currentKeyBook(keys: KeyBookReader, flags: DoorPolicy, log: (line: string) => void): Promise<KeyBook> {
  try {
    return await keys.load();
  } catch (error) {
    log(`lanchat: ${(error as Error).message}`);
    if (flags.knownOnly) throw new Refused('keys cannot be checked (--known-only)', 'this listener cannot check keys right now');
    return { contacts: [], peers: {} };
  }
}

/**
 * Sends a one-line refusal to a peer we will not talk to, then closes it: an
 * error frame to a lanchat peer, a plain `lanchat: …` line to netcat (`asText`).
 */
export function refuse(socket: Duplex, reason: string, asText = false): Promise<void> {
  const frame: ControlFrame = { type: 'error', message: reason };
  socket.on('error', ignoreError); // a peer that resets first is no concern of ours
  socket.end(asText ? `lanchat: ${reason}\n` : encodeControl(frame));
  return closeSoon(socket);
}

/** The first byte of a TLS handshake record. */
const TLS_HANDSHAKE = 0x16;

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
