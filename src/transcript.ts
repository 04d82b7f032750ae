// The conversation as text, for /save and --log. What /save will write is
// spooled to a private temporary file, not kept in memory, so a long or
// hostile conversation cannot make lanchat grow; --log appends as it goes.
// Peer text is made inert: a transcript is meant to be read with cat or less.
import { closeSync, constants, copyFileSync, createWriteStream, mkdtempSync, openSync, rmSync, writeFileSync, writeSync, type WriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { shownLine, speaker, splitLines, timestamp, type TextEvent } from './terminal.js';

interface Spool {
  dir: string;
  path: string;
  fd: number;
  lines: number;
}

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
    if (!spool) return;
    closeSync(spool.fd);
    rmSync(spool.dir, { recursive: true, force: true });
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
    if (!this.#spool) {
      writeFileSync(path, '', { flag: 'wx' });
      return 0;
    }
    copyFileSync(this.#spool.path, path, constants.COPYFILE_EXCL);
    return this.#spool.lines;
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
      writeSync(spool.fd, text);
      spool.lines += lines.length;
    } catch (error) {
      this.#keep = false; // once: /save will save what was kept until now
      this.#onError(`cannot keep the conversation for /save: ${(error as Error).message}`);
    }
  }

  #openSpool(): Spool {
    const dir = mkdtempSync(join(tmpdir(), 'lanchat-'));
    const path = join(dir, 'transcript.txt');
    return { dir, path, fd: openSync(path, 'a', 0o600), lines: 0 };
  }
}
