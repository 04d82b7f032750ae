import { spokenFingerprint } from '../fingerprint.js';
import { IDENTITY_FILE, loadIdentity } from '../identity.js';
import type { CliContext } from '../options.js';
import { storePath } from '../store.js';

/** `lanchat id`: this install's fingerprint (made on first use), then a form to read aloud. */
export async function id(ctx: CliContext): Promise<number> {
  const identity = await loadIdentity(ctx.env);
  ctx.stdout.write(`${identity.fingerprint}\n${spokenFingerprint(identity.fingerprint)}\n`);
  ctx.stderr.write(`(identity in ${storePath(ctx.env, IDENTITY_FILE)})\n`);
  return 0;
}
