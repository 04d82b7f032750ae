import type { Duplex } from 'node:stream';
import { LanchatError, signalExitCode, usageError } from '../errors.js';
import { chatOptions, type CliContext, type SessionFlags } from '../options.js';
import { dial, formatAddress } from '../transport.js';
import { Chat } from '../ui.js';

export interface ConnectFlags extends SessionFlags {
  timeout: number;
  retry: number;
  raw?: boolean;
  secure?: boolean;
  /** Demanded listener key (canonical form); implies secure. */
  fingerprint?: string;
}

/** `lanchat connect <host> <port>` (and `chat <contact>`): dial a listener and chat. */
export async function connect(given: string, port: number, flags: ConnectFlags, ctx: CliContext): Promise<number> {
  if (given.trim() === '') throw usageError('a host is required (an IP address or a host name)');
  const host = /^\[.*\]$/.test(given) ? given.slice(1, -1) : given; // [::1] as in URLs
  const options = await chatOptions(flags, ctx, 'connect', {
    plain: flags.raw,
    handshakeMs: flags.timeout * 1000,
    dialled: { host, port },
  });
  const socket = await dial(host, port, {
    timeoutMs: flags.timeout * 1000,
    retries: flags.retry,
    signal: ctx.signal,
    onRetry: (error, attempt) => ctx.stderr.write(`lanchat: ${error.message}; retrying (${attempt}/${flags.retry})\n`),
  }).catch((error) => {
    if (ctx.signal.aborted) return null;
    throw error;
  });
  if (!socket) return signalExitCode(ctx.signal.reason) ?? 1;
  let stream: Duplex = socket;
  let fingerprint: string | undefined;
  if (flags.secure || flags.fingerprint) {
    // TLS first, then the pin check: nothing is sent to a peer whose key changed.
    const { loadIdentity } = await import('../identity.js');
    const { checkPin, secureClient } = await import('../secure.js');
    const secure = await secureClient(socket, await loadIdentity(ctx.env), flags.timeout * 1000).catch((error) => {
      socket.destroy();
      throw error;
    });
    const address = formatAddress(host, port);
    const refuse = (error: unknown): never => {
      secure.socket.destroy();
      throw error;
    };
    if (flags.fingerprint) {
      // The user vouches for this exact key: no pin is consulted.
      if (secure.fingerprint !== flags.fingerprint) {
        refuse(new LanchatError('ERR_KEY_MISMATCH', `${address} presented ${secure.fingerprint}, not the key given with --fingerprint; nothing was sent`));
      }
    } else if ((await checkPin(ctx.env, address, secure.fingerprint).catch(refuse)) === 'new') {
      ctx.stderr.write(`new peer key for ${address}: ${secure.fingerprint} (pinned; lanchat forget ${address} drops it)\n`);
    }
    stream = secure.socket;
    fingerprint = secure.fingerprint;
  }
  const chat = new Chat(ctx, options);
  try {
    return await chat.run(stream, { host, port }, { fingerprint });
  } finally {
    await chat.close();
  }
}
