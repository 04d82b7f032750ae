import type { CliContext } from '../options.js';
import { forget as forgetKeys } from '../trust.js';

/** `lanchat forget NAME|HOST:PORT`: drop the pinned keys there, so that the next chat pins the new one. */
export async function forget(target: string, ctx: CliContext): Promise<number> {
  const forgotten = await forgetKeys(ctx.env, target);
  if (forgotten.length === 0) {
    ctx.stderr.write(`lanchat: no key pinned for ${target}\n`);
    return 1;
  }
  ctx.stderr.write(`forgot the key of ${forgotten.join(' and ')}\n`);
  return 0;
}
