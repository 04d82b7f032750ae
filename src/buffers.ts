// Reused read buffers, for stdin and for plaintext sockets. On this machine
// first touching fresh memory costs a page fault per 4 KiB (more than the read
// itself), and dead read buffers pile up until V8 collects them: a receiver
// that reuses a few buffers moves about twice the data per CPU second.

/**
 * Buffers lent out for reads and given back once nothing refers to their bytes
 * any more. A buffer never given back (a socket's last read, a chunk handed to
 * TLS) is collected like any other: the pool holds only the spares. Anything
 * given that was not lent (or is given twice) is ignored, so a wrong give
 * cannot make two reads share memory.
 */
export class BufferPool {
  readonly size: number;
  readonly #keep: number;
  readonly #spare: Buffer[] = [];
  readonly #lent = new WeakSet<ArrayBufferLike>(); // weak: see above

  /** Buffers of `size` bytes; at most `keep` of them wait for reuse. */
  constructor(size: number, keep: number) {
    this.size = size;
    this.#keep = keep;
  }

  /** A buffer to read into (arrow functions: handed around as callbacks). */
  take = (): Buffer => {
    // allocUnsafeSlow: a buffer of its own, never a slice of Node's shared pool.
    const buffer = this.#spare.pop() ?? Buffer.allocUnsafeSlow(this.size);
    this.#lent.add(buffer.buffer);
    return buffer;
  };

  /** `chunk`, read into a lent buffer, is done with: the buffer may take another read. */
  give = (chunk: Buffer): void => {
    if (!this.#lent.delete(chunk.buffer) || this.#spare.length >= this.#keep) return;
    this.#spare.push(Buffer.from(chunk.buffer, 0, this.size));
  };
}
