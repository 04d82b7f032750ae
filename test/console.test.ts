// The console's stdout: what one turn of the event loop writes leaves in one
// batch, and writers are told stdout is full only once a good deal waits.
import { PassThrough, Writable } from 'node:stream';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { Console } from '../src/console.js';

/** A stdout that records each batch it is handed and completes it only when told (`release`). */
function heldStdout(): { stdout: Writable; batches: string[][]; release: () => void } {
  const batches: string[][] = [];
  const pending: Array<() => void> = [];
  const stdout = new Writable({
    writev(chunks, callback) {
      batches.push(chunks.map(({ chunk }) => String(chunk)));
      pending.push(() => callback());
    },
  });
  return { stdout, batches, release: () => pending.splice(0).forEach((done) => done()) };
}

const consoleOn = (stdout: Writable): Console =>
  new Console({ stdin: new PassThrough(), stdout, stderr: new PassThrough() }, { interactive: false });

describe('Console.write to a pipe or a file', () => {
  it('sends what one turn of the event loop wrote as one batch, across the microtasks between socket reads', async () => {
    const { stdout, batches, release } = heldStdout();
    const output = consoleOn(stdout);
    const written: string[] = [];
    // As a TLS socket hands over its records: each in its own callback, with microtasks run after each.
    for (const record of ['one\n', 'two\n', 'three\n']) {
      output.write(record, () => written.push(record));
      await Promise.resolve();
    }
    await nextTurn();
    expect(batches).toEqual([['one\n', 'two\n', 'three\n']]);
    release();
    await nextTurn();
    expect(written).toEqual(['one\n', 'two\n', 'three\n']);
  });

  it('says stdout is full only once 256 KiB wait, not at every 16 KiB record', () => {
    const { stdout } = heldStdout(); // never completes anything
    const output = consoleOn(stdout);
    const record = Buffer.alloc(16 * 1024, 'x');
    const answers = Array.from({ length: 17 }, () => output.write(record));
    expect(answers.slice(0, 15)).toEqual(Array(15).fill(true)); // 240 KiB waiting
    expect(answers[15]).toBe(false); // 256 KiB
  });

  it('says stdout is full after 4,096 waiting writes, however short (a flood of one-byte lines)', async () => {
    const { stdout, release } = heldStdout();
    const output = consoleOn(stdout);
    const answers = Array.from({ length: 4097 }, () => output.write('\n'));
    expect(answers.slice(0, 4095).every(Boolean)).toBe(true);
    expect(answers[4095]).toBe(false);
    await nextTurn(); // the batch goes out…
    release(); // …and is written
    await nextTurn();
    expect(output.write('\n')).toBe(true);
  });
});
