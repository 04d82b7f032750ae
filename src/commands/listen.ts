import type { Socket } from 'node:net';
import { admit, barOut, type Admitted, type DoorPolicy } from '../door.js';
import { exitCode, signalExitCode } from '../errors.js';
import { loadIdentity } from '../identity.js';
import { chatOptions, type CliContext, type SessionFlags } from '../options.js';
import { refuse } from '../peer.js';
import { AllowList, formatAddress } from '../address.js';
import { adoptAccepted, openServer, remoteEndpoint } from '../transport.js';
import { loadKeyBook } from '../trust.js';
import { Chat } from '../chat.js';

export interface ListenFlags extends SessionFlags, DoorPolicy {
  host?: string;
  keep?: boolean;
  allow?: string[];
  idleTimeout?: number;
}

/** New connections looked at (first bytes, TLS handshake) at once, in all and from one address; more are dropped. */
const MAX_ADMITTING = 16;
const MAX_ADMITTING_FROM_ONE = 4;
/** Connections from addresses --allow bars, being told so at once; more are closed without a word. */
const MAX_BARRED = 8;

/** `lanchat listen <port>`: wait for a peer, chat, and (with --keep) wait again. */
export async function listen(port: number, flags: ListenFlags, ctx: CliContext): Promise<number> {
  const allowed = flags.allow ? new AllowList(flags.allow) : null;
  const options = await chatOptions(flags, ctx, 'listen', {
    idleMs: flags.idleTimeout === undefined ? undefined : flags.idleTimeout * 1000,
    keep: flags.keep,
  });
  const identity = await loadIdentity(ctx.env); // to serve connectors that ask for TLS
  await loadKeyBook(ctx.env); // a broken contacts or known-peers file is reported now, not at each peer
  const { server, address } = await openServer(flags.host, port);
  ctx.stderr.write(`listening on ${address}\n`);
  const chat = new Chat(ctx, options);
  const log = (line: string): void => chat.note(line); // above a half-typed line, at a terminal

  // New connections are looked at side by side, so that a slow or silent one
  // holds up neither the running chat nor the next peer. A peer let in while
  // a chat runs (or after the listener stopped) is turned away — unless the
  // seat is held by a peer that has said nothing and been told nothing: that
  // one gives way to a peer that speaks (a port scanner or a stray client
  // must not keep everyone out).
  let stopped = false;
  const admitting = new Map<Socket, Promise<void>>();
  let handOver: ((peer: Admitted | null) => void) | null = null;
  /** Who is in the chat, and a peer that spoke while they had not: it sits down once that session has ended. */
  const seat: { holder: Admitted | null; next: Admitted | null } = { holder: null, next: null };
  let barred = 0;
  const where = (peer: Admitted): string => formatAddress(peer.from.host, peer.from.port);
  const turnAway = (peer: Admitted, noted: string, told: string): Promise<void> => {
    log(`refused ${where(peer)}: ${noted}`);
    return refuse(peer.stream, told, peer.security.plain);
  };
  const arrived = (peer: Admitted): void => {
    if (stopped) {
      void turnAway(peer, 'the listener stopped', 'the listener has stopped');
    } else if (handOver) {
      handOver(peer);
      handOver = null;
    } else if (seat.holder?.quiet?.() && !peer.quiet && !seat.next) {
      log(`closed ${where(seat.holder)}: it said nothing, and ${where(peer)} came to talk`);
      seat.holder.stream.write('lanchat: someone else came to talk, and you had said nothing: closing\n');
      seat.next = peer;
      chat.endSession({ handOn: true });
    } else {
      void turnAway(peer, 'already in a chat', 'busy: already in a chat, try again later');
    }
  };
  server.on('connection', (accepted: Socket) => {
    const socket = adoptAccepted(accepted);
    socket.on('error', () => {}); // a peer may reset before its session starts
    const from = remoteEndpoint(socket);
    const refused = (why: string): void => log(`refused ${formatAddress(from.host, from.port)}: ${why}`);
    if (allowed && !allowed.allows(from.host)) {
      const rule = `not allowed (--allow ${allowed.rules.join(',')})`;
      // Each is told why, within a few seconds; a crowd of them must not take every file descriptor.
      if (barred >= MAX_BARRED) {
        refused(`${rule}; too many at once, closed`);
        return void socket.destroy();
      }
      refused(rule);
      barred++;
      socket.once('close', () => barred--);
      return void barOut(socket, identity);
    }
    const fromThere = [...admitting.keys()].filter((other) => remoteEndpoint(other).host === from.host).length;
    if (admitting.size >= MAX_ADMITTING || fromThere >= MAX_ADMITTING_FROM_ONE) {
      refused('too many connections at once');
      return void socket.destroy();
    }
    const admission = admit(socket, flags, identity, ctx.env, log)
      .then((peer) => {
        if (peer) arrived(peer);
      })
      .finally(() => admitting.delete(socket));
    admitting.set(socket, admission);
  });
  const nextPeer = (): Promise<Admitted | null> => new Promise((resolve) => (handOver = resolve));
  const onAbort = (): void => handOver?.(null);
  ctx.signal.addEventListener('abort', onAbort);

  let code = 0;
  let endOfInput = false; // Ctrl-D or /quit at the keyboard while nobody is connected
  try {
    for (;;) {
      if (ctx.signal.aborted) return signalExitCode(ctx.signal.reason) ?? 1;
      let peer = seat.next;
      seat.next = null;
      if (!peer) {
        chat.idle({
          listening: address,
          onQuit: () => {
            endOfInput = true;
            handOver?.(null);
          },
        });
        peer = await nextPeer();
      }
      if (!peer) return endOfInput ? code : (signalExitCode(ctx.signal.reason) ?? 1);
      seat.holder = peer;
      code = exitCode(await chat.run(peer.stream, peer.from, peer.security));
      seat.holder = null;
      // A silent peer that gave its seat away was no session: the one that came to talk is.
      if (seat.next && !ctx.signal.aborted && code < 128 && !chat.outputBroken) continue;
      // Ctrl-C at the prompt (130) ends the listener too, not just the session,
      // and so does losing our stdout: nothing could be delivered any more.
      if (!flags.keep || ctx.signal.aborted || code >= 128 || chat.outputBroken) return code;
      ctx.stderr.write(`listening on ${address}\n`);
    }
  } finally {
    ctx.signal.removeEventListener('abort', onAbort);
    server.close();
    // Whoever is still at the door is told, not just dropped — within a second.
    stopped = true;
    if (seat.next) void turnAway(seat.next, 'the listener stopped', 'the listener has stopped');
    await Promise.race([Promise.all(admitting.values()), new Promise((resolve) => setTimeout(resolve, 1000).unref())]);
    for (const socket of admitting.keys()) socket.destroy();
    await chat.close();
  }
}
