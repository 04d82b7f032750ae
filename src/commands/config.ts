import { usageError } from '../errors.js';
import type { CliContext } from '../options.js';
import { saveAnnounce, saveNick, savedAnnounce, savedNick, unsetNick } from '../settings.js';

/** `lanchat config nick [name] [--unset]`: show, set or forget the default nick. */
export async function configNick(nick: string | undefined, flags: { unset?: boolean }, ctx: CliContext): Promise<number> {
  if (flags.unset) {
    if (nick !== undefined) throw usageError('give a name or --unset, not both');
    const had = await unsetNick(ctx.env);
    ctx.stderr.write(had === undefined ? 'no default nick was saved\n' : `forgot the default nick ${had}\n`);
    return 0;
  }
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

/** `lanchat config announce [on|off]`: show or set whether listeners announce themselves (as with --announce). */
export async function configAnnounce(value: 'on' | 'off' | undefined, ctx: CliContext): Promise<number> {
  if (value === undefined) {
    ctx.stdout.write(`${(await savedAnnounce(ctx.env)) ? 'on' : 'off'}\n`);
    return 0;
  }
  await saveAnnounce(ctx.env, value === 'on');
  ctx.stderr.write(
    value === 'on'
      ? 'listeners are now announced on the local network (lanchat listen --no-announce for one that is not)\n'
      : 'listeners are no longer announced (lanchat listen --announce for one that is)\n',
  );
  return 0;
}
