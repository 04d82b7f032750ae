import { resolve } from 'node:path';
import { parseAddress } from '../address.js';
import { LanchatError } from '../errors.js';
import { cannotSend, fileSource } from '../files.js';
import { DEFAULT_MAX_LINE } from '../protocol.js';
import type { CliContext } from '../options.js';
import type { ConnectFlags } from './connect.js';

export type SendFlags = Omit<ConnectFlags, 'maxLine' | 'format' | 'commands' | 'log' | 'raw'> & { to: string };

/**
 * `lanchat send FILE... --to HOST:PORT|NAME`: a connect that offers the files,
 * reads no input, and exits 0 only once the receiver has checked every file's
 * SHA-256.
 */
export async function send(files: string[], flags: SendFlags, ctx: CliContext): Promise<number> {
  // A file that cannot be read is said before anyone is dialled.
  for (const file of files) {
    await fileSource(resolve(ctx.cwd, file)).catch((error: NodeJS.ErrnoException) => {
      throw new LanchatError('ERR_FILE', cannotSend(file, error));
    });
  }
  const { to, ...rest } = flags;
  const connectFlags: ConnectFlags = { ...rest, maxLine: DEFAULT_MAX_LINE, format: 'plain', sendFiles: files };
  const endpoint = parseAddress(to);
  if (endpoint) return (await import('./connect.js')).connect(to, undefined, connectFlags, ctx);
  return (await import('./chat.js')).chat(to, connectFlags, ctx);
}
