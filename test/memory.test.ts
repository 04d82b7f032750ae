// Backpressure end to end: a listener whose stdout is read slowly must hold
// the sender back (TCP), not buffer what it cannot write. Not timed: it checks
// memory and bytes, however fast the machine is.
import { createHash } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { killAll, lanchat, listener } from './cli-helpers.js';

afterEach(killAll);

const INPUT_MIB = 100;
/** Well above what one side needs (about 60–90 MiB), well below what buffering the input would take. */
const RSS_LIMIT_MIB = 130;

function peakRss(pid: number): number {
  try {
    return Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
  } catch {
    return 0;
  }
}

describe('a slow reader', () => {
  // TLS (the default), a transcript on disk, and plaintext, whose sockets read into reused buffers.
  it.each([
    [[], []],
    [['--commands'], []],
    [['--insecure'], ['--insecure']],
  ])(
    `${INPUT_MIB} MiB through a listener %j read slowly (connect %j): memory stays bounded and every byte arrives`,
    async (listenerArgs: string[], connectArgs: string[]) => {
      const path = join(mkdtempSync(join(tmpdir(), 'lanchat-mem-')), 'in.txt');
      const fd = openSync(path, 'w');
      const block = Buffer.from(`${'y'.repeat(98)}\n`.repeat(10_000).replace(/y\n/g, (_, i) => `${i % 10}\n`));
      for (let written = 0; written < INPUT_MIB * 1024 * 1024; written += block.length) writeSync(fd, block);
      closeSync(fd);
      const expected = createHash('sha256').update(readFileSync(path)).digest('hex');

      const listen = await listener(listenerArgs); // --commands keeps a transcript for /save: on disk, not in memory
      const input = openSync(path, 'r');
      const connect = lanchat(['connect', '127.0.0.1', String(listen.port), '--wait', '60', ...connectArgs], { stdin: input });
      closeSync(input);

      // Read the listener's stdout in small sips, with pauses: a reader far slower than the sender.
      const stdout = listen.child.stdout!;
      stdout.removeAllListeners('data');
      const hash = createHash('sha256');
      let received = 0;
      let peak = { listener: 0, connector: 0 };
      stdout.on('data', (chunk: Buffer) => {
        hash.update(chunk);
        received += chunk.length;
        stdout.pause();
        setTimeout(() => stdout.resume(), 2);
      });
      const sampler = setInterval(() => {
        peak = {
          listener: Math.max(peak.listener, peakRss(listen.child.pid!)),
          connector: Math.max(peak.connector, peakRss(connect.child.pid!)),
        };
      }, 50);
      try {
        expect((await connect.exited).code).toBe(0);
        expect((await listen.exited).code).toBe(0);
      } finally {
        clearInterval(sampler);
      }
      expect(received).toBeGreaterThanOrEqual(INPUT_MIB * 1024 * 1024);
      expect(hash.digest('hex')).toBe(expected);
      expect(peak.listener).toBeGreaterThan(0);
      expect(peak.listener).toBeLessThan(RSS_LIMIT_MIB);
      expect(peak.connector).toBeLessThan(RSS_LIMIT_MIB);
      console.log(`peak RSS: listener ${peak.listener.toFixed(0)} MiB, connector ${peak.connector.toFixed(0)} MiB`);
    },
    120_000,
  );
});
