// The conversation as text, for /save and --log. What /save will write is
// spooled to a private temporary file, not kept in memory, so a long or
// hostile conversation cannot make lanchat grow; the file is unlinked as soon
// as it is open, so that no way of ending (a second signal, SIGKILL) leaves it
// behind. --log appends as it goes.
// Peer text is made inert: a transcript is meant to be read with cat or less.
import { closeSync, createWriteStream, mkdtempSync, openSync, readSync, rmSync, writeFileSync, writeSync, type WriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { shownLine, speaker, splitLines, timestamp, type TextEvent } from './terminal.js';

interface Spool {
  /** Open for reading and appending; its name is already gone. */
  fd: number;
  bytes: number;
  lines: number;
}

const COPY_CHUNK = 64 * 1024;

export class Transcript {
  #keep: boolean;
  #spool: Spool | null = null;
  #log: WriteStream | null = null;
  #onError: (message: string) => void;

  /** `keep`: spool the conversation for /save; `logPath`: append each line there too. */
  constructor(options: { keep: boolean; logPath?: string; onError: (message: string) => void }) {
    this.#keep = options.keep;
    this.#onError = options.onError;
    if (options.logPath) {
      this.#log = createWriteStream(options.logPath, { flags: 'a' });
      this.#log.on('error', (error) => {
        this.#log = null; // one message, then the session goes on without a log
        this.#onError(`cannot write the log: ${error.message}`);
      });
    }
  }

  get active(): boolean {
    return this.#keep || this.#log !== null;
  }

  /** A new conversation begins: /save covers only what follows (--log keeps everything). */
  restart(): void {
    const spool = this.#spool;
    this.#spool = null;
    if (spool) closeSync(spool.fd);
  }

  text(event: TextEvent, time: Date): void {
    if (!this.active) return;
    const prefix = `[${timestamp(time)}] ${speaker(event)}`;
    this.#add(splitLines(event.body).map((line) => `${prefix}${shownLine(line)}\n`));
  }

  event(description: string, time: Date): void {
    if (this.active) this.#add([`[${timestamp(time)}] -- ${description}\n`]);
  }

  /**
   * Writes this conversation to a new file; an existing file is never
   * overwritten (EEXIST). Synchronous on purpose: a rare, user-invoked copy
   * whose result must be reported before whatever the user typed next.
   */
  save(path: string): number {
    const spool = this.#spool;
    if (!spool) {
      writeFileSync(path, '', { flag: 'wx', mode: 0o600 });
      return 0;
    }
    const out = openSync(path, 'wx', 0o600);
    try {
      const buffer = Buffer.allocUnsafe(COPY_CHUNK);
      for (let at = 0; at < spool.bytes;) {
        const n = readSync(spool.fd, buffer, 0, Math.min(COPY_CHUNK, spool.bytes - at), at);
        if (n === 0) break;
        writeSync(out, buffer, 0, n);
        at += n;
      }
    } finally {
      closeSync(out);
    }
    return spool.lines;
  }

  /** Removes the spool; resolves once the log has been written out (process.exit must not cut it short). */
  close(): Promise<void> {
    this.restart();
    const log = this.#log;
    this.#log = null;
    if (!log) return Promise.resolve();
    return new Promise((resolve) => {
      log.once('error', () => resolve());
      log.end(resolve);
    });
  }

  #add(lines: string[]): void {
    const text = lines.join('');
    this.#log?.write(text);
    if (!this.#keep) return;
    try {
      const spool = (this.#spool ??= this.#openSpool());
      spool.bytes += writeSync(spool.fd, text);
      spool.lines += lines.length;
    } catch (error) {
      this.#keep = false; // once: /save will save what was kept until now
      this.#onError(`cannot keep the conversation for /save: ${(error as Error).message}`);
    }
  }

  #openSpool(): Spool {
    const dir = mkdtempSync(join(tmpdir(), 'lanchat-'));
    try {
      return { fd: openSync(join(dir, 'transcript.txt'), 'a+', 0o600), bytes: 0, lines: 0 };
    } finally {
      rmSync(dir, { recursive: true, force: true }); // the open file lives on, nameless
    }
  }
}
