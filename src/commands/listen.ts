import type { Socket } from 'node:net';
import { signalExitCode } from '../errors.js';
import { loadIdentity } from '../identity.js';
import { chatOptions, type CliContext, type SessionFlags } from '../options.js';
import { refuse } from '../peer.js';
import { secureServer, sniffPeer, type PeerKind } from '../secure.js';
import { AllowList, formatAddress, openServer, remoteEndpoint } from '../transport.js';
import { impostorWarning, loadKeyBook, whoseKey } from '../trust.js';
import { Chat } from '../ui.js';

export interface ListenFlags extends SessionFlags {
  host?: string;
  keep?: boolean;
  allow?: string[];
  idleTimeout?: number;
  /** Also accept the plaintext lanchat protocol. */
  insecure?: boolean;
  /** Accept TLS only: no plaintext lanchat, no netcat. */
  secureOnly?: boolean;
  /** Accept only connectors whose key is a contact's or a known peer's. */
  knownOnly?: boolean;
}

/** Connections that may wait while we are between two sessions (--keep). */
const MAX_WAITING = 4;
/** How long a new peer may stay silent before it is taken for netcat. */
const GRACE_MS = 2000;
const HANDSHAKE_MS = 10_000;
const ENCRYPTED_ONLY = 'this listener accepts only encrypted lanchat sessions';

/** Why a plaintext peer is turned away — what we tell it, and what we note for ourselves — or null to let it in. */
function plaintextRefusal(kind: PeerKind, flags: ListenFlags): { told: string; noted: string } | null {
  const strict = flags.secureOnly ? '--secure-only' : flags.knownOnly ? '--known-only' : null;
  if (strict) return { told: kind === 'lanchat' ? `${ENCRYPTED_ONLY}: connect without --insecure` : ENCRYPTED_ONLY, noted: `not encrypted (${strict})` };
  if (kind === 'lanchat' && !flags.insecure) {
    return { told: `${ENCRYPTED_ONLY}: connect without --insecure`, noted: 'a lanchat connector without encryption (listen --insecure lets it in)' };
  }
  return null;
}

/** `lanchat listen <port>`: wait for a peer, chat, and (with --keep) wait again. */
export async function listen(port: number, flags: ListenFlags, ctx: CliContext): Promise<number> {
  const allowed = flags.allow ? new AllowList(flags.allow) : null;
  const options = await chatOptions(flags, ctx, 'listen', {
    idleMs: flags.idleTimeout === undefined ? undefined : flags.idleTimeout * 1000,
  });
  const identity = await loadIdentity(ctx.env); // to serve connectors that ask for TLS
  const { server, address } = await openServer(flags.host, port);
  ctx.stderr.write(`listening on ${address}\n`);
  const chat = new Chat(ctx, options);

  /**
   * Tells a peer we will not talk to why, in a form it can read — over TLS, as
   * a lanchat error, or as a plain line for netcat — and notes it for ourselves.
   */
  const turnAway = (socket: Socket, noted: string, told: string, known?: PeerKind): void => {
    const from = remoteEndpoint(socket);
    ctx.stderr.write(`refused ${formatAddress(from.host, from.port)}: ${noted}\n`);
    void (known ? Promise.resolve(known) : sniffPeer(socket, GRACE_MS))
      .then(async (kind) => {
        if (kind !== 'tls') return refuse(socket, told, kind !== 'lanchat');
        refuse((await secureServer(socket, identity, HANDSHAKE_MS)).socket, told);
      })
      .catch(() => socket.destroy());
  };

  let busy = false;
  const waiting: Socket[] = [];
  let handOver: ((socket: Socket | null) => void) | null = null;
  server.on('connection', (socket: Socket) => {
    socket.on('error', () => {}); // a peer may reset before its session starts
    const from = remoteEndpoint(socket);
    if (allowed && !allowed.allows(from.host)) {
      turnAway(socket, `not allowed (--allow ${allowed.rules.join(',')})`, 'not allowed from your address');
    } else if (handOver) {
      handOver(socket);
      handOver = null;
    } else if (!busy && waiting.length < MAX_WAITING) {
      waiting.push(socket);
    } else {
      turnAway(socket, 'already in a chat', 'busy: already in a chat, try again later');
    }
  });
  const nextPeer = (): Promise<Socket | null> =>
    waiting.length > 0 ? Promise.resolve(waiting.shift()!) : new Promise((resolve) => (handOver = resolve));
  const onAbort = (): void => handOver?.(null);
  ctx.signal.addEventListener('abort', onAbort);

  /** One peer: its exit code, or null if it never got a session (refused, or its TLS handshake failed). */
  const serve = async (socket: Socket): Promise<number | null> => {
    const from = remoteEndpoint(socket);
    const address = formatAddress(from.host, from.port);
    try {
      const kind = await sniffPeer(socket, GRACE_MS);
      const book = await loadKeyBook(ctx.env); // read anew: contacts may have changed since the last session
      if (kind !== 'tls') {
        const refusal = plaintextRefusal(kind, flags);
        if (refusal) {
          turnAway(socket, refusal.noted, refusal.told, kind);
          return null;
        }
        return await chat.run(socket, from, { graceMs: kind === 'silent' ? 0 : undefined, vouch: (nick) => impostorWarning(book, nick, null) });
      }
      const { socket: secure, fingerprint } = await secureServer(socket, identity, HANDSHAKE_MS);
      // A connector checks our key once TLS is up, and leaves without a word if it is not the one it pinned.
      if ((await sniffPeer(secure, HANDSHAKE_MS)) === 'silent') {
        ctx.stderr.write(`lanchat: ${address} left after the TLS handshake without a word (did it refuse this listener's key?)\n`);
        secure.destroy();
        return null;
      }
      const whose = whoseKey(book, fingerprint);
      if (flags.knownOnly && !whose) {
        ctx.stderr.write(`refused ${address}: unknown key ${fingerprint} (--known-only)\n`);
        refuse(secure, 'your key is not known here: the listener accepts only its contacts (they can add you with the fingerprint `lanchat id` prints)');
        return null;
      }
      const key = { fingerprint, note: whose ?? 'a new key: not a contact or known peer; /contact NAME PORT saves it' };
      return await chat.run(secure, from, { key, vouch: (nick) => impostorWarning(book, nick, fingerprint) });
    } catch (error) {
      ctx.stderr.write(`lanchat: ${address}: ${(error as Error).message}\n`);
      socket.destroy();
      return null;
    }
  };

  let code = 0;
  let endOfInput = false; // Ctrl-D at the keyboard while nobody is connected
  try {
    for (;;) {
      if (ctx.signal.aborted) return signalExitCode(ctx.signal.reason) ?? 1;
      chat.idle(() => {
        endOfInput = true;
        handOver?.(null);
      });
      const socket = await nextPeer();
      if (!socket) return endOfInput ? code : (signalExitCode(ctx.signal.reason) ?? 1);
      if (socket.destroyed) continue; // gave up while it waited
      busy = true;
      const outcome = await serve(socket);
      busy = false;
      if (outcome === null) continue; // turned away: still listening
      code = outcome;
      // Ctrl-C at the prompt (130) ends the listener too, not just the session,
      // and so does losing our stdout: nothing could be delivered any more.
      if (!flags.keep || ctx.signal.aborted || code >= 128 || chat.outputBroken) return code;
      ctx.stderr.write(`listening on ${address}\n`);
    }
  } finally {
    ctx.signal.removeEventListener('abort', onAbort);
    for (const socket of waiting) socket.destroy();
    await chat.close();
    server.close();
  }
}
