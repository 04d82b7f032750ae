import { Duplex, type DuplexOptions } from 'node:stream';

const reset = (syscall: string, code: string): Error => Object.assign(new Error(`${syscall} ${code}`), { code, syscall });

/**
 * One end of an in-memory socket pair. Like a socket it has backpressure: a
 * write is done (its callback runs, the next write may go) only once the other
 * end asks for more (its `_read`), that is once its read buffer is below its
 * high-water mark; the writes behind it wait in this end's buffer, so `write()`
 * returns false and 'drain' follows as with a full socket. (After Node's and
 * ws's test/duplex-pair.js.)
 */
class PairEnd extends Duplex {
  other: PairEnd | null = null;
  /** The callback of the other end's write that this end has not asked past yet. */
  #held: ((error?: Error | null) => void) | null = null;

  override _read(): void {
    const callback = this.#held;
    this.#held = null;
    callback?.();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    const other = this.other!;
    if (other.destroyed) return callback(reset('write', 'EPIPE')); // the peer is gone, as with TCP
    if (chunk.length === 0) return process.nextTick(callback);
    other.#held = callback;
    // push() may have called the other end's _read already: then the chunk is taken and we are done.
    other.push(chunk);
  }

  override _final(callback: (error?: Error | null) => void): void {
    // Our FIN follows the data the other end has taken, as TCP's does; it does not wait for a reader.
    this.other!.push(null);
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const other = this.other!;
    // A write of the other end's that we will never read fails, as on a socket closed under it.
    const held = this.#held;
    this.#held = null;
    // Closed after both ends said they were done (FIN each way), the close is clean; else the other end is reset.
    const clean = this.writableFinished && other.writableEnded;
    if (!clean && !other.destroyed && !other.readableEnded) other.destroy(reset('read', 'ECONNRESET'));
    else held?.(reset('write', 'EPIPE'));
    callback(error);
  }
}

/**
 * Two connected in-memory streams: what one writes, the other reads (a socket
 * pair without a port). Destroying one side resets the other, as TCP would,
 * unless both had ended. Options: a small `readableHighWaterMark` models a
 * peer whose socket takes little before it stops, `writableHighWaterMark` one
 * that reports full early.
 */
export function duplexPair(
  aOptions: Pick<DuplexOptions, 'readableHighWaterMark' | 'writableHighWaterMark'> = {},
  bOptions: typeof aOptions = {},
): [Duplex, Duplex] {
  const a = new PairEnd(aOptions);
  const b = new PairEnd(bOptions);
  a.other = b;
  b.other = a;
  return [a, b];
}
