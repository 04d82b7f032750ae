import type { Socket } from 'node:net';
import { signalExitCode } from '../errors.js';
import { chatOptions, type CliContext, type SessionFlags } from '../options.js';
import { refuse } from '../peer.js';
import { loadIdentity } from '../identity.js';
import { acceptPeer } from '../secure.js';
import { AllowList, formatAddress, openServer, remoteEndpoint } from '../transport.js';
import { Chat } from '../ui.js';

export interface ListenFlags extends SessionFlags {
  host?: string;
  keep?: boolean;
  allow?: string[];
  idleTimeout?: number;
}

/** Connections that may wait while we are between two sessions (--keep). */
const MAX_WAITING = 4;
/** How long a new peer may stay silent before it is taken for netcat. */
const GRACE_MS = 2000;
const HANDSHAKE_MS = 10_000;

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

  let busy = false;
  const waiting: Socket[] = [];
  let handOver: ((socket: Socket | null) => void) | null = null;
  server.on('connection', (socket: Socket) => {
    socket.on('error', () => {}); // a peer may reset before its session starts
    const from = remoteEndpoint(socket);
    if (allowed && !allowed.allows(from.host)) {
      ctx.stderr.write(`refused ${formatAddress(from.host, from.port)}: not allowed (--allow ${allowed.rules.join(',')})\n`);
      refuse(socket, 'not allowed from your address');
    } else if (handOver) {
      handOver(socket);
      handOver = null;
    } else if (!busy && waiting.length < MAX_WAITING) {
      waiting.push(socket);
    } else {
      ctx.stderr.write(`refused ${formatAddress(from.host, from.port)}: already in a chat\n`);
      refuse(socket, 'busy: already in a chat, try again later');
    }
  });
  const nextPeer = (): Promise<Socket | null> =>
    waiting.length > 0 ? Promise.resolve(waiting.shift()!) : new Promise((resolve) => (handOver = resolve));
  const onAbort = (): void => handOver?.(null);
  ctx.signal.addEventListener('abort', onAbort);

  const serve = async (socket: Socket): Promise<number> => {
    const from = remoteEndpoint(socket);
    try {
      const { stream, fingerprint, silent } = await acceptPeer(socket, identity, GRACE_MS, HANDSHAKE_MS);
      return await chat.run(stream, from, { fingerprint: fingerprint ?? undefined, graceMs: silent ? 0 : undefined });
    } catch (error) {
      ctx.stderr.write(`lanchat: ${formatAddress(from.host, from.port)}: ${(error as Error).message}\n`);
      socket.destroy();
      return 1;
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
      code = await serve(socket);
      busy = false;
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
