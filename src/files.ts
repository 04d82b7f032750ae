// The files of one conversation as the person meets them: /send opens and
// offers files, offers from the peer are said (and accepted into an Inbox, at
// once with --accept-files), progress is one line redrawn, and every end is
// said in one line. The wire and the state machines are transfer.ts's.
import { createHash } from 'node:crypto';
import { close, constants, createWriteStream, open, openSync, read } from 'node:fs';
import { PassThrough, Readable, type Writable } from 'node:stream';
import { BufferPool } from './buffers.js';
import { realpath, stat } from 'node:fs/promises';
import { basename, relative, resolve } from 'node:path';
import type { LanchatError } from './errors.js';
import { Inbox } from './inbox.js';
import type { StatusLine } from './console.js';
import { cutToWidth, inert, textWidth } from './terminal.js';
import {
  CHUNK_BYTES,
  type FileLane,
  type IncomingTransfer,
  type OutgoingTransfer,
  type Source,
  type Transfer,
  type TransferEnd,
} from './transfer.js';

export interface FilesOptions {
  /** Where relative paths start (and what `./` means in what is said). */
  cwd: string;
  /** listen --accept-files DIR: every offer is accepted into DIR without asking. */
  acceptInto?: string;
  /** Offers can be answered by hand (/accept, /decline); else they are declined unless acceptInto. */
  canAsk: boolean;
  maxFileSize?: number;
  /**
   * Who offers a file, for resuming: the peer's key fingerprint, else its
   * nick and address; in a room, with `from` (the member who offers it).
   */
  peerId: (from?: string) => string;
  peerNick: () => string;
  /** A line for the person. */
  notice: (text: string) => void;
  /** The progress line (null: none); only called when progress is shown (at a terminal). */
  progress?: (line: StatusLine | null) => void;
}

/** How often the progress line is redrawn at most. */
const PROGRESS_EVERY_MS = 200;
/** The progress bar's width at most, and the least worth drawing (else it is left out). */
const BAR_WIDTH = 20;
const MIN_BAR_WIDTH = 8;
/** Columns of a file's name kept at least in a narrow progress line, and kept before a bar is drawn. */
const MIN_NAME_WIDTH = 8;
const NAME_BEFORE_BAR = 24;
/**
 * What files are read into, several chunks at a time, each buffer taken back
 * once its chunks are written (Source.recycle): a sender that read into a
 * fresh 1 MiB buffer each time peaked at ~100 MiB, the dead buffers waiting
 * for V8's next collection; with these, ~70.
 */
const fileReads = new BufferPool(4 * CHUNK_BYTES, 4);

/** A file read from its start into fileReads' buffers, `size` bytes at most. */
class FileReader extends Readable {
  readonly #path: string;
  #left: number;
  #fd: number | null = null;

  constructor(path: string, size: number) {
    super({ highWaterMark: 0 }); // nothing read ahead: a buffer is read only when the last one was taken
    this.#path = path;
    this.#left = size;
  }

  override _construct(callback: (error?: Error | null) => void): void {
    open(this.#path, 'r', (error, fd) => {
      this.#fd = fd;
      callback(error);
    });
  }

  override _read(): void {
    if (this.#left === 0 || this.#fd === null) return void this.push(null);
    const buffer = fileReads.take();
    read(this.#fd, buffer, 0, Math.min(buffer.length, this.#left), null, (error, bytes) => {
      if (error) return this.destroy(error);
      if (bytes === 0) return void this.push(null); // it shrank: the sender says so
      this.#left -= bytes;
      this.push(buffer.subarray(0, bytes));
    });
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (this.#fd === null) return callback(error);
    close(this.#fd, () => callback(error));
    this.#fd = null;
  }
}

/** `2.3 MB`, as file managers count (powers of 1000). */
export function formatBytes(bytes: number): string {
  if (Math.round(bytes) < 1000) return `${Math.round(bytes)} B`; // a rate is a fraction
  const units = ['kB', 'MB', 'GB', 'TB'];
  let value = bytes / 1000;
  let unit = 0;
  while (value >= 999.95 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${value < 10 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}

function formatSeconds(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  // A small file takes "0.3 s", not "0 s".
  if (seconds < 0.05) return '<0.1 s';
  if (seconds < 9.95) return `${seconds.toFixed(1)} s`;
  const s = Math.round(seconds);
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

/** A file on disk, ready to offer: one stat, a key that finds the receiver's partial copy if it has one. */
export async function fileSource(path: string): Promise<Source> {
  const info = await stat(path);
  if (!info.isFile())
    throw Object.assign(new Error(info.isDirectory() ? 'it is a directory' : 'it is not a regular file'), { code: 'ENOTFILE' });
  const real = await realpath(path);
  // The same file, unchanged, has the same key: a cut transfer of it resumes.
  const key = createHash('sha256').update(`${real}\0${info.size}\0${info.mtimeMs}\0${info.ino}`).digest('hex').slice(0, 32);
  const size = info.size;
  return {
    name: basename(real),
    size,
    key,
    open: () => new FileReader(real, size),
    recycle: fileReads.give,
  };
}

/**
 * How a partial file is opened to write from `start`: never through a link
 * planted in its place, and emptied when the data starts over (the bytes it
 * held were not this file's).
 */
function openPartial(path: string, start: number): Writable {
  try {
    const fd = openSync(path, constants.O_WRONLY | constants.O_NOFOLLOW | (start === 0 ? constants.O_TRUNC : 0));
    return createWriteStream('', { fd, start });
  } catch (error) {
    const failed = new PassThrough();
    setImmediate(() => failed.destroy(error as Error)); // said as the stream's error, as a failed write is
    return failed;
  }
}

/** What a failed /send says for the usual reasons. */
const OPEN_ERRORS: Record<string, string> = {
  ENOENT: 'no such file',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
};

/** Why `fileSource` could not offer `path`, in one line: `cannot send PATH: no such file`. */
export function cannotSend(path: string, error: NodeJS.ErrnoException): string {
  return `cannot send ${inert(path)}: ${OPEN_ERRORS[error.code ?? ''] ?? error.message}`;
}

export class Files {
  readonly lane: FileLane;
  #options: FilesOptions;
  /** Offers waiting for /accept or /decline. */
  #offered: IncomingTransfer[] = [];
  /** Something did not arrive, either way (what the exit code says). */
  #failed = false;
  /** The directory each accepted file goes to. */
  #where = new Map<Transfer, string>();
  /** The partial files being written (directory and key): two offers of one file must not write the same one. */
  #writing = new Set<string>();
  #lastDrawn = 0;
  #drawTimer: NodeJS.Timeout | null = null;

  constructor(lane: FileLane, options: FilesOptions) {
    this.lane = lane;
    this.#options = options;
    lane.on('offer', (transfer) => this.#onOffer(transfer));
    lane.on('progress', () => this.#drawSoon());
    lane.on('end', (transfer, end) => this.#onEnd(transfer, end));
  }

  /** A file did not arrive, either way: declined, refused, cut, or its hash did not match. */
  get failed(): boolean {
    return this.#failed;
  }

  /** Transfers still going (offers not answered included). */
  get busy(): boolean {
    return this.lane.pending.length > 0;
  }

  /** Resolves once no transfer is going. */
  async idle(): Promise<void> {
    while (this.lane.pending.length > 0) await Promise.allSettled(this.lane.pending.map((transfer) => transfer.done));
  }

  /** /send PATH...: offers each file (in a room: to the member `to`); one line per file that cannot be sent. */
  async send(paths: readonly string[], to?: string): Promise<OutgoingTransfer[]> {
    const offered: OutgoingTransfer[] = [];
    for (const path of paths) {
      let source: Source;
      try {
        source = await fileSource(resolve(this.#options.cwd, path));
      } catch (error) {
        this.#failed = true;
        this.#options.notice(`lanchat: ${cannotSend(path, error as NodeJS.ErrnoException)}`);
        continue;
      }
      const transfer = this.lane.offer(source, to);
      offered.push(transfer);
      this.#options.notice(`offered ${inert(source.name)} (${formatBytes(source.size)}) to ${inert(to ?? this.#options.peerNick())}`);
    }
    return offered;
  }

  /**
   * /accept [DIR]: every offer waiting goes to DIR (default: the current
   * directory). A DIR that cannot take files is said, and the offers wait on
   * (a typo does not cost the sender its transfer).
   */
  async accept(dir: string | null): Promise<void> {
    if (this.#offered.length === 0) return this.#options.notice('lanchat: no file is offered (nothing to accept)');
    const into = resolve(this.#options.cwd, dir ?? '.');
    try {
      await new Inbox(into).open();
    } catch (error) {
      return this.#options.notice(`lanchat: ${(error as LanchatError).message}: the offer waits (/accept DIR or /decline)`);
    }
    for (const transfer of this.#offered.splice(0)) void this.#take(transfer, into);
  }

  /** /decline: every offer waiting is refused (no reason given: the person said no). */
  decline(): void {
    const offers = this.#offered.splice(0);
    if (offers.length === 0) return this.#options.notice('lanchat: no file is offered (nothing to decline)');
    for (const transfer of offers) {
      transfer.decline('');
      this.#options.notice(`declined ${inert(transfer.name)} (${formatBytes(transfer.size)})`);
    }
  }

  /** /cancel: stops every transfer going, both ways (what arrived stays, for a resume). */
  cancel(): void {
    const pending = this.lane.pending;
    if (pending.length === 0) return this.#options.notice('lanchat: no file is on its way');
    this.#offered = [];
    for (const transfer of pending) {
      if (transfer.direction === 'out') transfer.cancel('cancelled by the sender');
      else transfer.decline('cancelled by the receiver');
    }
  }

  /** The conversation ended: what is still going fails with `why`. */
  close(why: string): void {
    this.lane.close(why);
    this.#stopDrawing();
  }

  #onOffer(transfer: IncomingTransfer): void {
    const from = inert(transfer.from ?? this.#options.peerNick());
    const what = `${inert(transfer.name)} (${formatBytes(transfer.size)})`;
    const into = this.#options.acceptInto;
    if (into !== undefined) {
      this.#options.notice(`${from} offers ${what}`);
      return void this.#take(transfer, into);
    }
    if (!this.#options.canAsk) {
      this.#options.notice(`lanchat: ${from} offers ${what}: declined (listen --accept-files DIR takes files)`);
      return transfer.decline('they take no files here (lanchat listen --accept-files DIR would)');
    }
    this.#offered.push(transfer);
    this.#options.notice(`${from} offers ${what} — /accept [DIR] or /decline`);
  }

  /** Accepts `transfer` into directory `dir`: refused up front (too big, no space) with one line each side. */
  async #take(transfer: IncomingTransfer, dir: string): Promise<void> {
    const inbox = new Inbox(dir);
    const key = createHash('sha256')
      .update(`${this.#options.peerId(transfer.from)}\0${transfer.key}\0${transfer.name}\0${transfer.size}`)
      .digest('hex')
      .slice(0, 32);
    const partial = `${dir}\0${key}`;
    if (this.#writing.has(partial)) {
      this.#options.notice(`lanchat: refused ${inert(transfer.name)}: the same file is on its way already`);
      return transfer.decline('the same file is on its way already');
    }
    this.#writing.add(partial);
    void transfer.done.then(() => this.#writing.delete(partial));
    try {
      await inbox.open();
      const reservation = await inbox.reserve(
        { name: transfer.name, size: transfer.size, key },
        { ...(this.#options.maxFileSize !== undefined && { maxFileSize: this.#options.maxFileSize }) },
      );
      const prefix = await inbox.prefixHash(reservation);
      if (transfer.ended) return;
      if (reservation.offset > 0)
        this.#options.notice(`resuming ${inert(transfer.name)}: ${formatBytes(reservation.offset)} of it came before`);
      transfer.accept({
        offset: reservation.offset,
        prefix,
        open: (start) => openPartial(reservation.partialPath, start),
        keep: () => inbox.keep(reservation),
        discard: () => inbox.discard(reservation),
      });
      this.#where.set(transfer, dir);
    } catch (error) {
      const message = (error as LanchatError).message;
      this.#options.notice(`lanchat: refused ${inert(transfer.name)}: ${message}`);
      transfer.decline(message);
    }
  }

  #onEnd(transfer: IncomingTransfer | OutgoingTransfer, end: TransferEnd): void {
    const name = inert(transfer.name);
    const who = transfer.direction === 'out' ? transfer.to : transfer.from;
    const peer = inert(who ?? this.#options.peerNick());
    const why = inert(end.why ?? '');
    const size = formatBytes(transfer.size);
    const seconds = transfer.startedAt === null ? 0 : (Date.now() - transfer.startedAt) / 1000;
    const rate = seconds > 0 ? `, ${formatBytes((transfer.bytes - transfer.startedFrom) / seconds)}/s` : '';
    const dir = this.#where.get(transfer);
    this.#where.delete(transfer);
    this.#offered = this.#offered.filter((offer) => offer !== transfer);
    if (end.state !== 'done') this.#failed = true;
    if (transfer.direction === 'out') {
      if (end.state === 'done')
        this.#options.notice(`${peer} received ${name} (${size}, sha256 verified) in ${formatSeconds(seconds)}${rate}`);
      // In a room the host may refuse for the member (nobody of that name, an older lanchat): the line names no one as refusing.
      else if (end.state === 'declined' && who !== undefined && why !== '')
        this.#options.notice(`lanchat: ${name} was not sent to ${peer}: ${why}`);
      else if (end.state === 'declined') this.#options.notice(`lanchat: ${peer} declined ${name}${why && `: ${why}`}`);
      else this.#options.notice(`lanchat: ${name} was not delivered: ${why}`);
    } else if (end.state === 'done') {
      const as = end.savedAs !== undefined && end.savedAs !== transfer.name ? ` as ${inert(end.savedAs)}` : '';
      this.#options.notice(`received ${name}${as} (${size}, sha256 verified) in ${this.#shown(dir ?? this.#options.cwd)}`);
    } else if (end.state === 'failed') {
      const kept = transfer.bytes > 0 ? ` (${formatBytes(transfer.bytes)} kept: the same file sent again resumes)` : '';
      this.#options.notice(`lanchat: ${name} from ${peer} did not arrive: ${why}${kept}`);
    }
    this.#drawSoon();
  }

  /** A directory as the person knows it: `./` for the current one, else relative when inside it. */
  #shown(dir: string): string {
    const path = relative(this.#options.cwd, dir);
    return inert(path === '' ? './' : path.startsWith('..') ? dir : `./${path}`);
  }

  #drawSoon(): void {
    if (!this.#options.progress || this.#drawTimer) return;
    const wait = Math.max(0, this.#lastDrawn + PROGRESS_EVERY_MS - Date.now());
    this.#drawTimer = setTimeout(() => {
      this.#drawTimer = null;
      this.#lastDrawn = Date.now();
      this.#options.progress?.(this.#progressLine());
    }, wait);
  }

  #stopDrawing(): void {
    if (this.#drawTimer) clearTimeout(this.#drawTimer);
    this.#drawTimer = null;
    this.#options.progress?.(null);
  }

  /**
   * `↓ report.pdf  42% [========>           ] 1.0 MB/2.3 MB  95 MB/s  0:12 left`,
   * for the first active transfer, as it fits a width: the figures (whole from
   * about 50 columns), the bar when there is room, the name cut if need be.
   */
  #progressLine(): StatusLine | null {
    const active = this.lane.pending.filter((transfer) => transfer.state === 'active');
    const transfer = active[0];
    if (!transfer || transfer.startedAt === null) return null;
    const fraction = transfer.size === 0 ? 1 : transfer.bytes / transfer.size;
    const seconds = (Date.now() - transfer.startedAt) / 1000;
    const rate = seconds > 0 ? (transfer.bytes - transfer.startedFrom) / seconds : 0;
    const left = rate > 0 ? formatSeconds((transfer.size - transfer.bytes) / rate) : '?';
    const arrow = transfer.direction === 'out' ? '↑' : '↓';
    const more = active.length > 1 ? ` (+${active.length - 1})` : '';
    const percent = `${Math.floor(fraction * 100)}%`;
    const figures = ` ${formatBytes(transfer.bytes)}/${formatBytes(transfer.size)}  ${formatBytes(rate)}/s  ${left} left${more}`;
    const name = inert(transfer.name);
    return (columns) => {
      // What the name and the bar share: the name first up to a point, then the bar, then the rest of the name.
      const spare = columns - textWidth(`${arrow}   ${percent}${figures}`);
      const nameFirst = Math.min(textWidth(name), Math.max(MIN_NAME_WIDTH, Math.min(NAME_BEFORE_BAR, spare)));
      const width = Math.min(BAR_WIDTH, spare - nameFirst - 3); // " [" and "]"
      let bar = '';
      if (width >= MIN_BAR_WIDTH) {
        const filled = Math.min(width, Math.floor(fraction * width));
        bar = ` [${'='.repeat(filled) + (filled < width ? '>' : '') + ' '.repeat(Math.max(0, width - filled - 1))}]`;
      }
      const shown = cutToWidth(name, Math.max(MIN_NAME_WIDTH, spare - textWidth(bar)));
      // In a very narrow window the figures are cut too: one row, whatever happens.
      return cutToWidth(`${arrow} ${shown}  ${percent}${bar}${figures}`, columns);
    };
  }
}
