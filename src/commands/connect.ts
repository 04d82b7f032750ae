import { Chat, signalExitCode } from '../ui.js';
import { chatOptions, type CliContext, type SessionFlags } from '../options.js';
import { dial, formatAddress } from '../transport.js';

export interface ConnectFlags extends SessionFlags {
  timeout: number;
  retry: number;
  raw?: boolean;
}

/** `lanchat connect <host> <port>`: dial a listener and chat. */
export async function connect(host: string, port: number, flags: ConnectFlags, ctx: CliContext): Promise<number> {
  const target = formatAddress(host, port);
  const socket = await dial(host, port, {
    timeoutMs: flags.timeout * 1000,
    retries: flags.retry,
    signal: ctx.signal,
    onRetry: (error, attempt) => ctx.stderr.write(`${error.message}; retrying (${attempt}/${flags.retry})\n`),
  }).catch((error) => {
    if (ctx.signal.aborted) return null;
    throw error;
  });
  if (!socket) return signalExitCode(ctx.signal.reason) ?? 1;
  const chat = new Chat(ctx, chatOptions(flags, ctx, 'connect', { plain: flags.raw, handshakeMs: flags.timeout * 1000 }));
  try {
    return await chat.run(socket, target);
  } finally {
    chat.close();
  }
}
