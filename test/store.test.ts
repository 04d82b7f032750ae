// What lanchat keeps on the local machine (the config directory: contacts,
// settings, pins, its key, and the locks around them) is for its user alone:
// made private whatever the umask, and not trusted when another user could
// have put it there.
import { mkdtempSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { updateText } from '../src/store.js';
import { CLI, killAll, spawnProc, type Proc } from './cli-helpers.js';

afterEach(killAll);

/** A LANCHAT_HOME that does not exist yet, in a fresh private directory. */
const freshHome = (): string => join(mkdtempSync(join(tmpdir(), 'lanchat-store-')), 'home');
const modeOf = (path: string): number => statSync(path).mode & 0o777;

/** Runs lanchat to its end under `umask 000`, as a careless login shell would. */
async function runOpenUmask(args: string[], home: string): Promise<Proc & { code: number | null }> {
  const proc = spawnProc('sh', ['-c', 'umask 000; exec "$0" "$@"', process.execPath, CLI, ...args], {
    env: { LANCHAT_HOME: home },
    stdin: 'ignore',
  });
  return Object.assign(proc, { code: (await proc.exited).code });
}

describe('the config directory is private whatever the umask', () => {
  it('when lanchat creates it under umask 000 then the directory is 0700 and every file 0600', async () => {
    const home = freshHome();
    expect((await runOpenUmask(['contacts', 'add', 'bob', '127.0.0.1', '5000'], home)).code).toBe(0);
    expect((await runOpenUmask(['config', 'nick', 'alice'], home)).code).toBe(0);
    expect((await runOpenUmask(['id'], home)).code).toBe(0);
    expect(modeOf(home)).toBe(0o700);
    expect(readdirSync(home).sort()).toEqual(['config.json', 'contacts.json', 'identity.pem']);
    for (const file of readdirSync(home)) expect([file, modeOf(join(home, file))]).toEqual([file, 0o600]);
  });

  it('when a file is written under umask 000 then it and its lock are private (known-peers.json goes this way)', async () => {
    const path = join(freshHome(), 'known-peers.json');
    const umask = process.umask(0);
    try {
      const lockMode = await updateText(path, () => ({ text: '{}\n', result: modeOf(`${path}.lock`) }));
      expect(lockMode).toBe(0o700);
    } finally {
      process.umask(umask);
    }
    expect(modeOf(path)).toBe(0o600);
    expect(modeOf(join(path, '..'))).toBe(0o700);
  });
});
