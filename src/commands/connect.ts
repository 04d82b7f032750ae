import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { dialTarget, formatAddress, type Endpoint } from '../address.js';
import { exitCode, LanchatError, signalExitCode } from '../errors.js';
import { chatOptions, isFingerprint, withLog, type ChatEnd, type CliContext, type SessionFlags } from '../options.js';
import { shortFingerprint, spokenFingerprint } from '../fingerprint.js';
import { loadIdentity, type Identity } from '../identity.js';
import { secureClient } from '../secure.js';
import { checkListenerKey, impostorWarning, loadKeyBook, type Dialled, type KeyBook } from '../trust.js';
import { dial } from '../transport.js';
import { Chat } from '../chat.js';
import type { PeerKey, SessionSecurity } from '../door.js';

export interface ConnectFlags extends SessionFlags {
  timeout: number;
  retry: number;
  raw?: boolean;
  /** Speak the lanchat protocol without TLS. */
  insecure?: boolean;
  /** Demanded listener key (canonical form). */
  fingerprint?: string;
  /** The key the listener announced (found nearby): it must present that one, and its pin is checked as usual. */
  announced?: string;
  /** lanchat send: offer these files instead of chatting. */
  sendFiles?: string[];
}

/** `lanchat connect <host> [port]` (and `chat <contact>`, which names the contact): dial a listener and chat. */
export async function connect(
  given: string,
  port: number | undefined,
  flags: ConnectFlags,
  ctx: CliContext,
  contact?: string,
): Promise<number> {
  const end: ChatEnd = {};
  const code = await connectUntilDone(dialTarget(given, port), flags, ctx, contact, end);
  return withLog(code, end);
}

async function connectUntilDone(
  { host, port }: Endpoint,
  flags: ConnectFlags,
  ctx: CliContext,
  contact: string | undefined,
  end: ChatEnd,
): Promise<number> {
  const options = await chatOptions(flags, ctx, 'connect', {
    plain: flags.raw,
    handshakeMs: flags.timeout * 1000,
    dialled: { host, port },
    // lanchat send reads no input, and no keyboard: it offers its files and waits for their end.
    ...(flags.sendFiles && { sendFiles: flags.sendFiles, interactive: false, commands: false }),
  });
  // A broken identity is reported before anyone is dialled (a listener would see us come and go).
  const identity = flags.raw || flags.insecure ? null : await loadIdentity(ctx.env);
  // So is a pin file that cannot be read or trusted (see store.ts): nobody is dialled then.
  if (identity && !flags.fingerprint) await loadKeyBook(ctx.env);
  // Dialling and the handshake may take seconds (up to --timeout): a person at a terminal sees why nothing happens.
  if (ctx.stderr.isTTY) ctx.stderr.write(`connecting to ${formatAddress(host, port)}…\n`);
  const socket = await dial(host, port, {
    timeoutMs: flags.timeout * 1000,
    retries: flags.retry,
    signal: ctx.signal,
    pooledReads: identity === null,
    onRetry: (error, attempt) => ctx.stderr.write(`lanchat: ${error.message}; retrying (${attempt}/${flags.retry})\n`),
  }).catch((error) => {
    if (ctx.signal.aborted) return null;
    throw error;
  });
  if (!socket) return signalExitCode(ctx.signal.reason) ?? 1;
  let secure: SecureSession | null = null;
  if (identity) {
    secure = await secureSession(socket, identity, { host, port, contact }, flags, ctx).catch((error: LanchatError) => {
      if (error.code === 'ERR_ABORTED') return null; // Ctrl-C or a signal mid-handshake: leave at once
      throw error;
    });
    if (!secure) return signalExitCode(ctx.signal.reason) ?? 1;
  }
  const chat = new Chat(ctx, options);
  // A new key is pinned only once the listener's hello has come: a TLS service that is not lanchat never is.
  let pinned: Promise<boolean> | null = null;
  const proven = (): void => {
    if (!secure?.pin || pinned) return;
    if (secure.newKey) chat.note(secure.newKey);
    pinned = secure.pin().then(
      () => true,
      (error: LanchatError) => {
        chat.note(`lanchat: ${error.message}`);
        chat.endSession(); // another process pinned another key for this listener meanwhile
        return false;
      },
    );
  };
  try {
    // The nick the listener claims is checked against the contacts' (not the one dialled: its key was). Not
    // against ours: a listener's nick is its own choice, made before we came (often the same login name).
    const book = flags.raw ? null : (secure?.book ?? (await currentKeyBook(ctx.env)));
    const fingerprint = secure?.key.fingerprint ?? null;
    const vouch: SessionSecurity['vouch'] = book
      ? (nick) => impostorWarning(book, nick, fingerprint, undefined, secure?.contact ?? contact)
      : undefined;
    const code = exitCode(await chat.run(secure?.stream ?? socket, { host, port }, { key: secure?.key, vouch, proven }));
    return (await (pinned as Promise<boolean> | null)) === false ? 1 : code; // set by proven() meanwhile
  } finally {
    end.logComplete = await chat.close();
  }
}

/** The pins, to check the nick a listener claims; a broken file was reported already (or is not needed): none. */
async function currentKeyBook(env: NodeJS.ProcessEnv): Promise<KeyBook> {
  return loadKeyBook(env).catch(() => ({ contacts: [], peers: {} }));
}

/** A TLS session whose key was checked: `pin` writes a new pin (`newKey` says so), `contact` is the contact dialled. */
interface SecureSession {
  stream: Duplex;
  key: PeerKey;
  contact?: string;
  newKey?: string;
  /** The pins the key was checked against (absent with --fingerprint). */
  book?: KeyBook;
  pin?: () => Promise<void>;
}

/**
 * TLS, then the listener's key is checked — against --fingerprint, else the
 * pin for what was dialled — before the session sends anything at all.
 */
async function secureSession(
  socket: Socket,
  identity: Identity,
  dialled: Dialled,
  flags: ConnectFlags,
  ctx: CliContext,
): Promise<SecureSession> {
  const secure = await secureClient(socket, identity, flags.timeout * 1000, ctx.signal).catch((error: LanchatError) => {
    socket.destroy();
    if (error.code === 'ERR_ABORTED') throw error;
    // A lanchat listener hangs up on a handshake only when its door is full (it tells refusals over TLS).
    if (error.code === 'ERR_TLS_LEFT') {
      throw new LanchatError(
        error.code,
        `the listener is busy: ${error.message.replace('the peer', 'it')} (too many connections at once); try again later`,
      );
    }
    // A plain listener (nc -l) shows its user our TLS hello as binary: it is told as soon as that is clear.
    if (error.code === 'ERR_NOT_TLS')
      throw new LanchatError(error.code, `${error.message}: not a lanchat listener (netcat? nc -l takes connect --raw)`);
    throw new LanchatError(
      error.code,
      `${error.message.replace('the peer', 'the listener')} (is lanchat listening there? for netcat use --raw)`,
    );
  });
  const { fingerprint } = secure;
  const address = formatAddress(dialled.host, dialled.port);
  try {
    // An announcement is a hint anyone on the network can make: the key must be the one announced.
    if (flags.announced && fingerprint !== flags.announced) {
      throw new LanchatError(
        'ERR_KEY_MISMATCH',
        `WARNING: ${address} presented another key than the one announced for it (someone on the network may be pretending)\n  announced ${flags.announced}\n  presented ${fingerprint}\nnothing was sent`,
      );
    }
    if (flags.fingerprint) {
      if (!isFingerprint(fingerprint, flags.fingerprint)) {
        const digits = !flags.fingerprint.includes(':'); // the groups read aloud: show the presented key's too
        const presented = digits ? spokenFingerprint(fingerprint).replace('\n', ' ') : fingerprint;
        throw new LanchatError(
          'ERR_KEY_MISMATCH',
          `WARNING: ${address} presented another key than the one given with --fingerprint\n  expected  ${flags.fingerprint}\n  presented ${presented}\nnothing was sent`,
        );
      }
      return { stream: secure.socket, key: { fingerprint, note: 'as given with --fingerprint' } };
    }
    const { isNew, note, forget, contact, book, pin } = await checkListenerKey(ctx.env, dialled, fingerprint);
    const newKey = isNew
      ? `new peer key for ${address}: ${shortFingerprint(fingerprint)} (${note}; lanchat forget ${forget} drops it)`
      : undefined;
    return { stream: secure.socket, key: { fingerprint, note }, contact, newKey, book, pin };
  } catch (error) {
    secure.socket.destroy();
    throw error;
  }
}
