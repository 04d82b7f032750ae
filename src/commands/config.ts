import type { CliContext } from '../options.js';
import { saveNick, savedNick } from '../settings.js';

/** `lanchat config nick [name]`: show or set the default nick. */
export async function configNick(nick: string | undefined, ctx: CliContext): Promise<number> {
  if (nick === undefined) {
    const saved = await savedNick(ctx.env);
    if (saved === undefined) ctx.stderr.write('no default nick saved (set one: lanchat config nick NAME)\n');
    else ctx.stdout.write(`${saved}\n`);
    return 0;
  }
  await saveNick(ctx.env, nick);
  ctx.stderr.write(`default nick is now ${nick}\n`);
  return 0;
}
