// The conversation as text, for /save and --log. What /save will write is
// spooled to a private temporary file, not kept in memory, so a long or
// hostile conversation cannot make lanchat grow; the file is unlinked as soon
// as it is open, so that no way of ending (a second signal, SIGKILL) leaves it
// behind. --log appends as it goes, to a file opened (and checked) up front.
// Peer text is made inert: a transcript is meant to be read with cat or less.
import {
  close,
  closeSync,
  constants,
  fstatSync,
  mkdtempSync,
  openSync,
  readSync,
  rmSync,
  unlinkSync,
  write,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LanchatError } from './errors.js';
import { countLineFeeds } from './linefeeds.js';
import { shownLine, speaker, splitLines, timestamp, type TextEvent } from './terminal.js';

interface Spool {
  /** Open for reading and writing; its name is already gone. */
  fd: number;
  /** What /save copies: whole lines only. */
  bytes: number;
  lines: number;
}

const COPY_CHUNK = 64 * 1024;
const NEWLINE = 0x0a;

/** "no space left on device" from "ENOSPC: no space left on device, write". */
export function describeSystemError(error: Error): string {
  return /^[A-Z0-9_]+: (.+?)(?:, \w+.*)?$/.exec(error.message)?.[1] ?? error.message;
}

/** A write that wrote nothing: the disk is full. */
function fullDisk(): Error {
  return Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
}

/** What a refused --log says, by the open's error code. */
const LOG_OPEN_ERRORS: Record<string, string> = {
  ELOOP: 'it is a symbolic link (lanchat does not follow one for --log)',
  ENXIO: 'it is not a regular file',
  ENOENT: 'no such file or directory',
  ENOTDIR: 'no such directory',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EISDIR: 'it is a directory',
  EROFS: 'read-only file system',
};

/**
 * Opens `path` for --log, or throws ERR_LOG_REFUSED. Never follows a symbolic
 * link, never blocks (a FIFO, a device: O_NONBLOCK, then fstat before any
 * write), and appends only to a regular file of `uid`'s (when given) that
 * nobody else can write and that has no other name; a new log is 0600
 * whatever the umask. Another user's file or link in a shared directory must
 * not turn the peer's text into a write to somebody else's file.
 */
export function openLog(path: string, uid?: number): LogFile {
  const { O_WRONLY, O_APPEND, O_CREAT, O_EXCL, O_NOFOLLOW, O_NONBLOCK } = constants;
  const refuse = (why: string): LanchatError => new LanchatError('ERR_LOG_REFUSED', `cannot log to ${path}: ${why}`);
  const flags = O_WRONLY | O_APPEND | O_NOFOLLOW | O_NONBLOCK;
  let fd: number;
  try {
    try {
      fd = openSync(path, flags | O_CREAT | O_EXCL, 0o600); // a new log: only its owner reads it
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      fd = openSync(path, flags);
    }
  } catch (error) {
    const { code, message } = error as NodeJS.ErrnoException;
    throw refuse(LOG_OPEN_ERRORS[code ?? ''] ?? message);
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw refuse('it is not a regular file');
    if (uid !== undefined && stat.uid !== uid) throw refuse(`it belongs to another user (uid ${stat.uid})`);
    const mode = (stat.mode & 0o777).toString(8).padStart(4, '0');
    if (stat.mode & 0o022) throw refuse(`others can write it (mode ${mode}; chmod go-w ${path} fixes that)`);
    if (stat.nlink !== 1) throw refuse('it has other names (hard links)');
  } catch (error) {
    closeSync(fd);
    throw error;
  }
  return new LogFile(fd, path);
}

/**
 * An open log, appended to in order without blocking the event loop. Counts
 * the whole lines that reached the file: if a write fails (a full disk), that
 * count is how far the log got, and nothing more is written.
 */
export class LogFile {
  readonly path: string;
  #fd: number | null;
  #queue: Buffer[] = [];
  #writing = false;
  #lines = 0;
  #failure: Error | null = null;
  #drained: (() => void)[] = [];

  constructor(fd: number, path: string) {
    this.#fd = fd;
    this.path = path;
  }

  /** Lines written in full so far. */
  get lines(): number {
    return this.#lines;
  }

  /** Why the log stopped, or null while it is complete. */
  get failure(): Error | null {
    return this.#failure;
  }

  /** Appends `text`; `onFailure` is called once, if the log stops here. */
  append(text: string, onFailure: (error: Error) => void): void {
    if (this.#failure || this.#fd === null) return;
    this.#queue.push(Buffer.from(text, 'utf8'));
    this.#writeNext(onFailure);
  }

  /** Resolves once what was appended is written (or the log failed), then closes the file. */
  async close(): Promise<void> {
    if (this.#writing) await new Promise<void>((resolve) => this.#drained.push(resolve));
    const fd = this.#fd;
    this.#fd = null;
    if (fd !== null) await new Promise<void>((resolve) => close(fd, () => resolve()));
  }

  #writeNext(onFailure: (error: Error) => void): void {
    if (this.#writing || this.#fd === null) return;
    if (this.#failure || this.#queue.length === 0) {
      for (const resolve of this.#drained.splice(0)) resolve();
      return;
    }
    const data = this.#queue.length === 1 ? this.#queue[0] : Buffer.concat(this.#queue);
    this.#queue = [];
    this.#writing = true;
    const fd = this.#fd;
    const writeFrom = (at: number): void => {
      write(fd, data, at, data.length - at, null, (error, written) => {
        if (!error) this.#lines += countLineFeeds(data.subarray(at, at + written));
        if (!error && written > 0 && at + written < data.length) return writeFrom(at + written);
        this.#writing = false;
        if (error || at + written < data.length) {
          this.#failure = error ?? fullDisk();
          this.#queue = [];
          onFailure(this.#failure);
        }
        this.#writeNext(onFailure);
      });
    };
    writeFrom(0);
  }
}

/** What /save wrote: `complete` is false when the spool could not keep everything. */
export interface Saved {
  lines: number;
  complete: boolean;
}

export class Transcript {
  #keep: boolean;
  /** The spool failed (a full TMPDIR): /save saves what was kept until then, and says so. */
  #spoolFailed = false;
  #spool: Spool | null = null;
  #log: LogFile | null;
  #onError: (message: string) => void;

  /** `keep`: spool the conversation for /save; `log`: append each line there too. */
  constructor(options: { keep: boolean; log?: LogFile; onError: (message: string) => void }) {
    this.#keep = options.keep;
    this.#onError = options.onError;
    this.#log = options.log ?? null;
  }

  get active(): boolean {
    return this.#keep || this.#log !== null;
  }

  /** False once the log could not be written completely. */
  get logComplete(): boolean {
    return !this.#log?.failure;
  }

  /** A new conversation begins: /save covers only what follows (--log keeps everything). */
  restart(): void {
    const spool = this.#spool;
    this.#spool = null;
    if (spool) closeSync(spool.fd);
    if (this.#spoolFailed) {
      this.#spoolFailed = false;
      this.#keep = true; // a new spool may fit
    }
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
   * overwritten (EEXIST), and a file not written in full is removed.
   * Synchronous on purpose: a rare, user-invoked copy whose result must be
   * reported before whatever the user typed next.
   */
  save(path: string): Saved {
    const spool = this.#spool;
    const complete = !this.#spoolFailed;
    if (!spool) {
      writeFileSync(path, '', { flag: 'wx', mode: 0o600 });
      return { lines: 0, complete };
    }
    const out = openSync(path, 'wx', 0o600);
    try {
      const buffer = Buffer.allocUnsafe(COPY_CHUNK);
      for (let at = 0; at < spool.bytes;) {
        const n = readSync(spool.fd, buffer, 0, Math.min(COPY_CHUNK, spool.bytes - at), at);
        if (n === 0) break;
        writeAll(out, buffer.subarray(0, n));
        at += n;
      }
    } catch (error) {
      closeSync(out);
      unlinkSync(path); // ours (created exclusively): half a transcript is not left as if it were one
      throw error;
    }
    closeSync(out);
    return { lines: spool.lines, complete };
  }

  /** Removes the spool; resolves once the log has been written out (process.exit must not cut it short). */
  close(): Promise<void> {
    this.restart();
    return this.#log ? this.#log.close() : Promise.resolve();
  }

  #add(lines: string[]): void {
    const text = lines.join('');
    const log = this.#log;
    log?.append(text, (error) =>
      this.#onError(`the log ${log.path} stopped after ${log.lines} ${log.lines === 1 ? 'line' : 'lines'}: ${describeSystemError(error)}`),
    );
    if (!this.#keep) return;
    let spool: Spool;
    try {
      spool = this.#spool ??= this.#openSpool();
    } catch (error) {
      return this.#stopSpool(error as Error);
    }
    const data = Buffer.from(text, 'utf8');
    let written = 0;
    try {
      while (written < data.length) {
        const n = writeSync(spool.fd, data, written, data.length - written, spool.bytes + written);
        if (n === 0) throw fullDisk();
        written += n;
      }
      spool.bytes += data.length;
      spool.lines += lines.length;
    } catch (error) {
      // Only the whole lines that reached the spool count (and are what /save copies).
      const whole = written === 0 ? 0 : data.lastIndexOf(NEWLINE, written - 1) + 1; // (a negative offset counts from the end)
      spool.bytes += whole;
      spool.lines += countLineFeeds(data.subarray(0, whole));
      this.#stopSpool(error as Error);
    }
  }

  /** Once per conversation: /save will save what was kept until now, and say it is not everything. */
  #stopSpool(error: Error): void {
    this.#keep = false;
    this.#spoolFailed = true;
    this.#onError(`cannot keep the conversation for /save: ${describeSystemError(error)}`);
  }

  #openSpool(): Spool {
    const dir = mkdtempSync(join(tmpdir(), 'lanchat-'));
    try {
      return { fd: openSync(join(dir, 'transcript.txt'), 'w+', 0o600), bytes: 0, lines: 0 };
    } finally {
      rmSync(dir, { recursive: true, force: true }); // the open file lives on, nameless
    }
  }
}

/** Writes all of `data` at the file's position, or throws (a write that writes nothing is a full disk). */
function writeAll(fd: number, data: Buffer): void {
  for (let at = 0; at < data.length;) {
    const n = writeSync(fd, data, at, data.length - at);
    if (n === 0) throw fullDisk();
    at += n;
  }
}
