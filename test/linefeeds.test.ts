import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { countLineFeeds, linesWithin } from '../src/linefeeds.js';
import { countLines } from '../src/protocol.js';

/** The obvious count, byte by byte. */
function naiveCount(bytes: Uint8Array): number {
  let count = 0;
  for (const byte of bytes) if (byte === 0x0a) count++;
  return count;
}

/** The obvious check: every line's length before its line feed. */
function naiveWithin(bytes: Buffer, maxLine: number): boolean {
  let start = 0;
  for (let at = 0; at < bytes.length; at++) {
    if (bytes[at] !== 0x0a) continue;
    if (at - start > maxLine) return false;
    start = at + 1;
  }
  return true;
}

/** `size` random bytes, each a line feed with probability `density`. */
function randomText(size: number, density: number): Buffer {
  const bytes = randomBytes(size);
  for (let at = 0; at < size; at++) bytes[at] = bytes[at] < 256 * density ? 0x0a : bytes[at] === 0x0a ? 0x41 : bytes[at];
  return bytes;
}

/** Lines of the given lengths (before their line feeds), of 'x'. */
function lines(...lengths: number[]): Buffer {
  return Buffer.from(lengths.map((length) => 'x'.repeat(length) + '\n').join(''));
}

describe('countLineFeeds', () => {
  // Around the JS path's limit (512), a block (16), a run of counters (255 blocks), the module's memory (64 KiB).
  const sizes = [0, 1, 15, 16, 17, 511, 512, 513, 4079, 4080, 4081, 4096, 65535, 65536, 65537, 200_003];
  it.each(sizes)('counts the line feeds of %i random bytes as a byte-by-byte count does', (size) => {
    for (const density of [0, 0.01, 0.3]) {
      const bytes = randomText(size, density);
      expect(countLineFeeds(bytes)).toBe(naiveCount(bytes));
    }
  });

  it('counts past 255 line feeds per lane (every byte a line feed)', () => {
    for (const size of [4080, 4096, 70_000]) expect(countLineFeeds(Buffer.alloc(size, 0x0a))).toBe(size);
  });

  it('counts only the bytes of a view into a larger buffer', () => {
    const whole = Buffer.alloc(100_000, 0x0a);
    const view = whole.subarray(1000, 71_000);
    view.fill(0x41, 0, 10);
    expect(countLineFeeds(view)).toBe(69_990);
  });
});

describe('linesWithin', () => {
  it.each([
    [lines(10), 10, true],
    [lines(11), 10, false],
    [lines(10, 10, 10, 10), 10, true],
    [lines(3, 3, 3, 11, 3), 10, false],
    [lines(...Array<number>(1000).fill(5), 11), 10, false],
    [lines(0, 0, 0), 0, true],
    [lines(0, 1), 0, false],
  ])('checks %#', (bytes, maxLine, within) => {
    expect(linesWithin(bytes, maxLine)).toBe(within);
    expect(naiveWithin(bytes, maxLine)).toBe(within);
  });

  it('agrees with a byte-by-byte check on random text and limits', () => {
    for (let round = 0; round < 300; round++) {
      const maxLine = 1 + (round % 97);
      const body = randomText(2000 + round * 7, 1 / (5 + (round % 120)));
      const bytes = Buffer.concat([body, Buffer.from('\n')]);
      expect(linesWithin(bytes, maxLine)).toBe(naiveWithin(bytes, maxLine));
      expect(countLines(bytes, maxLine)).toBe(naiveWithin(bytes, maxLine) ? naiveCount(bytes) : -1);
    }
  });
});

describe('the WebAssembly module', () => {
  it('is src/linefeeds.wat as wabt assembles it', () => {
    const script = fileURLToPath(new URL('../scripts/assemble-wasm.mjs', import.meta.url));
    expect(() => execFileSync(process.execPath, [script, '--check'], { stdio: 'pipe' })).not.toThrow();
  });

  // Where V8 cannot give WebAssembly its memory (a low `ulimit -v`) or has none (--jitless), lines are still counted.
  it.each([
    ['node --jitless', ['--jitless']],
    ['a 1 GB address space', [], 'ulimit -v 1000000; '],
  ])('counts without it: %s', (_name, flags, shell = '') => {
    const module = new URL('../dist/linefeeds.js', import.meta.url).href;
    const script = `import('${module}').then((m) => console.log(m.countLineFeeds(Buffer.alloc(100000, 10))))`;
    const command = `${shell}exec "${process.execPath}" ${flags.join(' ')} -e "${script.replace(/"/g, '\\"')}"`;
    expect(execFileSync('sh', ['-c', command], { encoding: 'utf8', timeout: 20_000 }).trim()).toBe('100000');
  });
});
