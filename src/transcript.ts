// The conversation as text: kept in memory for /save when slash commands are
// on, and appended to --log as it happens. Peer text is made inert, since a
// transcript is meant to be read with cat or less.
import { createWriteStream, writeFileSync, type WriteStream } from 'node:fs';
import { inert, splitLines, timestamp, type TextEvent } from './terminal.js';

export class Transcript {
  #lines: string[] | null;
  #log: WriteStream | null = null;
  #onLogError: (error: Error) => void;

  /** `keep`: hold everything for /save; `logPath`: append each line there too. */
  constructor(options: { keep: boolean; logPath?: string; onLogError: (error: Error) => void }) {
    this.#lines = options.keep ? [] : null;
    this.#onLogError = options.onLogError;
    if (options.logPath) {
      this.#log = createWriteStream(options.logPath, { flags: 'a' });
      this.#log.on('error', (error) => {
        this.#log = null; // one message, then the session goes on without a log
        this.#onLogError(error);
      });
    }
  }

  get active(): boolean {
    return this.#lines !== null || this.#log !== null;
  }

  text(event: TextEvent, time: Date): void {
    if (!this.active) return;
    const stamp = `[${timestamp(time)}] `;
    const who = event.kind === 'msg' ? `${inert(event.nick)}: ` : `* ${inert(event.nick)} `;
    for (const line of splitLines(event.body)) this.#add(`${stamp}${who}${inert(line)}`);
  }

  event(description: string, time: Date): void {
    if (this.active) this.#add(`[${timestamp(time)}] -- ${description}`);
  }

  /**
   * Writes the transcript to a new file; an existing file is never overwritten
   * (EEXIST). Synchronous on purpose: a rare, small write whose result must be
   * reported before whatever the user typed next.
   */
  save(path: string): number {
    const lines = this.#lines ?? [];
    writeFileSync(path, lines.map((line) => `${line}\n`).join(''), { encoding: 'utf8', flag: 'wx' });
    return lines.length;
  }

  /** Resolves once the log has been written out (process.exit must not cut it short). */
  close(): Promise<void> {
    const log = this.#log;
    this.#log = null;
    if (!log) return Promise.resolve();
    return new Promise((resolve) => {
      log.once('error', () => resolve());
      log.end(resolve);
    });
  }

  #add(line: string): void {
    this.#lines?.push(line);
    this.#log?.write(`${line}\n`);
  }
}
