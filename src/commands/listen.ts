import type { Socket } from 'node:net';
import { admit, barOut, type Admitted, type DoorPolicy } from '../door.js';
import { signalExitCode } from '../errors.js';
import { loadIdentity } from '../identity.js';
import { chatOptions, type CliContext, type SessionFlags } from '../options.js';
import { refuse } from '../peer.js';
import { adoptAccepted, AllowList, formatAddress, openServer, remoteEndpoint } from '../transport.js';
import { loadKeyBook } from '../trust.js';
import { Chat } from '../ui.js';

export interface ListenFlags extends SessionFlags, DoorPolicy {
  host?: string;
  keep?: boolean;
  allow?: string[];
  idleTimeout?: number;
}

/** New connections looked at (first bytes, TLS handshake) at once, in all and from one address; more are dropped. */
const MAX_ADMITTING = 16;
const MAX_ADMITTING_FROM_ONE = 4;

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
  // a chat runs (or after the listener stopped) is turned away.
  let stopped = false;
  const admitting = new Map<Socket, Promise<void>>();
  let handOver: ((peer: Admitted | null) => void) | null = null;
  const turnAway = (peer: Admitted, noted: string, told: string): Promise<void> => {
    log(`refused ${formatAddress(peer.from.host, peer.from.port)}: ${noted}`);
    return refuse(peer.stream, told, peer.security.plain);
  };
  const arrived = (peer: Admitted): void => {
    if (stopped) {
      void turnAway(peer, 'the listener stopped', 'the listener has stopped');
    } else if (handOver) {
      handOver(peer);
      handOver = null;
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
      refused(`not allowed (--allow ${allowed.rules.join(',')})`);
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
  let endOfInput = false; // Ctrl-D at the keyboard while nobody is connected
  try {
    for (;;) {
      if (ctx.signal.aborted) return signalExitCode(ctx.signal.reason) ?? 1;
      chat.idle(() => {
        endOfInput = true;
        handOver?.(null);
      });
      const peer = await nextPeer();
      if (!peer) return endOfInput ? code : (signalExitCode(ctx.signal.reason) ?? 1);
      code = await chat.run(peer.stream, peer.from, peer.security);
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
    await Promise.race([Promise.all(admitting.values()), new Promise((resolve) => setTimeout(resolve, 1000).unref())]);
    for (const socket of admitting.keys()) socket.destroy();
    await chat.close();
  }
}
