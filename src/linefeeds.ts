// Line feeds counted and line lengths checked on every batch of text, sent or
// received. Buffer#indexOf is memchr, but it is a call per line: 100-byte lines
// cost ~20 ns each (3 µs per 16 KiB TLS record: ~8 % of a listener's CPU).
// A WebAssembly SIMD loop (src/linefeeds.wat) counts a record in ~1 µs with
// the copy into its memory; lengths need a call per maxLine bytes, not per line.

import { LINEFEEDS_WASM } from './linefeeds-wasm.js';

const LF = 0x0a;
/** Below this, a call per line costs less than copying into WebAssembly memory. */
const SHORT = 512;
/** The module's memory: one 64 KiB page, filled and counted in turn. */
const WINDOW = 65536;

// Node 20's type definitions leave WebAssembly out: the little used here.
declare const WebAssembly: {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: { count: (length: number) => number; memory: { buffer: ArrayBuffer } } };
};

type Counter = { count: (length: number) => number; memory: Uint8Array };
/** null: not tried yet; false: WebAssembly is not to be had (node --jitless, a low `ulimit -v`). */
let counter: Counter | false | null = null;

/** Compiled on first use (a fraction of a millisecond): most commands never count. */
function loadCounter(): Counter | false {
  try {
    const { count, memory } = new WebAssembly.Instance(new WebAssembly.Module(Buffer.from(LINEFEEDS_WASM, 'base64'))).exports;
    counter = { count, memory: new Uint8Array(memory.buffer) };
  } catch {
    counter = false; // V8 could not reserve the module's memory, or has no WebAssembly: count with indexOf
  }
  return counter;
}

/** How many line feeds `bytes` holds. */
export function countLineFeeds(bytes: Uint8Array): number {
  const wasm = bytes.length < SHORT ? false : (counter ?? loadCounter());
  if (!wasm) {
    let count = 0;
    for (let at = bytes.indexOf(LF); at >= 0; at = bytes.indexOf(LF, at + 1)) count++;
    return count;
  }
  const { count, memory } = wasm;
  let total = 0;
  for (let at = 0; at < bytes.length; at += WINDOW) {
    const end = Math.min(at + WINDOW, bytes.length);
    memory.set(at === 0 && end === bytes.length ? bytes : bytes.subarray(at, end));
    total += count(end - at);
  }
  return total;
}

/**
 * True if no line of `bytes` (which ends in a line feed) is longer than
 * `maxLine` bytes before its line feed. Jumps to the last line feed within
 * reach of each line's start: lines in between are shorter by construction.
 */
export function linesWithin(bytes: Buffer, maxLine: number): boolean {
  let start = 0;
  while (bytes.length - start > maxLine + 1) {
    const end = bytes.lastIndexOf(LF, start + maxLine);
    if (end < start) return false;
    start = end + 1;
  }
  return true;
}
