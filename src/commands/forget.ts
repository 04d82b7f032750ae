import type { CliContext } from '../options.js';
import { forget as forgetKeys } from '../trust.js';

/** `lanchat forget NAME|HOST:PORT|HOST PORT`: drop the pinned keys there, so that the next chat pins the new one. */
export async function forget(given: string, port: string | undefined, ctx: CliContext): Promise<number> {
  // HOST PORT is read as HOST:PORT (an IPv6 host put in brackets), and checked as that.
  const host = given.includes(':') && !given.startsWith('[') ? `[${given}]` : given;
  const target = port === undefined ? given : `${host}:${port}`;
  const forgotten = await forgetKeys(ctx.env, target);
  if (forgotten.length === 0) {
    ctx.stderr.write(`lanchat: no key pinned for ${target}\n`);
    return 1;
  }
  ctx.stderr.write(`forgot the key of ${forgotten.join(' and ')}\n`);
  return 0;
}
