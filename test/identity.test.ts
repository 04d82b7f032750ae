import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readdirSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { normalizeFingerprint, spokenFingerprint } from '../src/fingerprint.js';
import { killAll, lanchat } from './cli-helpers.js';

afterEach(killAll);

const FP = '26:8A:86:7B:63:B5:44:64:67:A3:6C:2C:9C:8F:42:9F:65:E1:72:2E:39:86:23:35:F8:E1:7E:52:5E:59:3F:A7';

describe('fingerprints', () => {
  it.each([
    [FP, FP],
    [FP.toLowerCase(), FP],
    [FP.replace(/:/g, ''), FP],
    [`SHA256:${FP}`, FP],
    ['26:8A', null],
    ['zz'.repeat(32), null],
  ])('normalizes %j', (text, expected) => {
    expect(normalizeFingerprint(text)).toBe(expected);
  });

  it('reads aloud as eight groups of five digits', () => {
    expect(spokenFingerprint(FP)).toMatch(/^\d{5} \d{5} \d{5} \d{5}\n\d{5} \d{5} \d{5} \d{5}$/);
  });
});

describe('lanchat id', () => {
  const home = (): string => mkdtempSync(join(tmpdir(), 'lanchat-id-'));
  const run = async (dir: string): Promise<{ code: number | null; out: string; err: string }> => {
    const proc = lanchat(['id'], { env: { LANCHAT_HOME: dir }, stdin: 'ignore' });
    const { code } = await proc.exited;
    return { code, out: proc.stdout().toString(), err: proc.stderr() };
  };

  it('makes an identity on first use, keeps the key private, and prints the same fingerprint every time', async () => {
    const dir = home();
    const first = await run(dir);
    expect(first.code).toBe(0);
    const [fingerprint, ...spoken] = first.out.trimEnd().split('\n');
    expect(normalizeFingerprint(fingerprint)).toBe(fingerprint); // exactly the form --fingerprint takes
    expect(spoken).toHaveLength(2);
    expect(statSync(join(dir, 'identity.pem')).mode & 0o777).toBe(0o600);
    expect((await run(dir)).out).toBe(first.out);
  });

  it('two processes starting at once on an empty directory end up with one identity', async () => {
    const dir = home();
    const results = await Promise.all(Array.from({ length: 6 }, () => run(dir)));
    expect(new Set(results.map((r) => r.out)).size).toBe(1);
    expect(results.every((r) => r.code === 0)).toBe(true);
  });

  it('a damaged identity file is an error naming it, and is left alone', async () => {
    const dir = home();
    writeFileSync(join(dir, 'identity.pem'), 'not a key\n', { mode: 0o600 });
    const result = await run(dir);
    expect(result.code).toBe(1);
    expect(result.err).toMatch(/^lanchat: .*identity\.pem: no private key and certificate in it; remove it to make a new identity/);
  });

  it('on a full disk, a first run says so in one line and leaves no temporary file behind', async ({ skip }) => {
    const dir = home();
    const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k,mode=0700', 'tmpfs', dir]).status === 0;
    skip(!mounted, 'cannot mount a tmpfs here (needs root, or CAP_SYS_ADMIN)');
    try {
      const filler = openSync(join(dir, 'filler'), 'w');
      try {
        for (let i = 0; i < 1000; i++) writeSync(filler, Buffer.alloc(4096));
        throw new Error('the 64 KiB tmpfs never filled');
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
      } finally {
        closeSync(filler);
      }
      for (let attempt = 0; attempt < 2; attempt++) {
        const result = await run(dir);
        expect(result.code).toBe(1);
        expect(result.err).toBe(`lanchat: cannot create this install's key in ${dir}: no space left on device\n`);
        expect(readdirSync(dir)).toEqual(['filler']);
      }
    } finally {
      spawnSync('umount', [dir]);
    }
  });
});
