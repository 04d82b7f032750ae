// Terminal and pipe I/O, and nothing of sessions: stdout (written in batches,
// flushed at the end, a reader that went away), notices on stderr, the
// keyboard's line at a terminal — the prompt and the draft (what is typed so
// far), which may wrap over several rows, kept below whatever is written above
// it, also across a resize and across Ctrl-Z and `fg` — and piped input cut
// into lines, paused while the other end is full.
import { EventEmitter, once } from 'node:events';
import * as readline from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { countLineFeeds } from './linefeeds.js';
import { LineSplitter, type Lines } from './protocol.js';
import { cutToWidth } from './terminal.js';

/**
 * readline's own record of the cursor's row within prompt + draft, counted from
 * the first row. Not public API (Node has kept it since 0.x): its redraw moves
 * up that many rows first, so whoever erases the draft must reset it.
 */
type DraftLine = readline.Interface & { prevRows?: number };

/**
 * How much output may wait for stdout before writers are told it is full.
 * A stream's own mark (16 KiB) is one TLS record: a session paused and resumed
 * its socket for every record.
 */
const OUTPUT_QUEUE_BYTES = 256 * 1024;
/**
 * …and how many writes: under the byte limit alone a flood of one-byte lines
 * queued 256 K writes, each with its objects (150,000 one-line messages to a
 * stalled stdout: 250 MiB).
 */
const OUTPUT_QUEUE_WRITES = 4096;

type RawReadable = Readable & { isTTY?: boolean; setRawMode?: (mode: boolean) => unknown };
type SizedWritable = Writable & { columns?: number; rows?: number; getWindowSize?: () => [number, number] };

/** Stops the whole job as the terminal's Ctrl-Z would, and hears when it goes on (`fg`). */
export interface JobControl {
  suspend: () => void;
  /** Calls `listener` whenever the process is continued; returns what undoes that. */
  onContinue: (listener: () => void) => () => void;
}

function promptOutput(rl: readline.Interface): Writable {
  return (rl as unknown as { output: Writable }).output;
}

/**
 * Erases the prompt and the draft, however many rows they take, and leaves the
 * cursor at the start of the first one: what is written next takes their place,
 * and `redrawDraft` draws them again below it. The cursor's row is counted at
 * today's width: after a resize that is where terminals that re-wrap lines
 * (tmux, VTE, kitty, iTerm2, Windows Terminal) have put it.
 */
function clearDraft(rl: readline.Interface): Writable {
  const output = promptOutput(rl);
  catchUpWithResize(output);
  const { rows } = rl.getCursorPos();
  if (rows > 0) readline.moveCursor(output, 0, -rows);
  readline.cursorTo(output, 0);
  readline.clearScreenDown(output);
  (rl as DraftLine).prevRows = 0; // readline redraws from this row, not from rows above it
  return output;
}

/**
 * The terminal may have been resized (and re-wrapped the draft) before this
 * process handled the SIGWINCH: ask it now, and if so, act as on the signal
 * (what Node's own handler does: new size, then 'resize').
 */
function catchUpWithResize(output: SizedWritable): void {
  if (typeof output.getWindowSize !== 'function') return;
  const [columns, rows] = output.getWindowSize();
  if (columns === output.columns && rows === output.rows) return;
  output.columns = columns;
  output.rows = rows;
  output.emit('resize');
}

/** readline's own measure of text on the screen (rows below the first, column), at today's width. Not public API either. */
type DisplayLine = readline.Interface & { _getDisplayPos: (text: string) => { rows: number; cols: number } };

/** Leaves the prompt and the draft on the screen, the cursor on the row below them; returns the draft. */
function keepDraft(rl: readline.Interface): string {
  const output = promptOutput(rl);
  const { rows } = rl.getCursorPos();
  const end = (rl as DisplayLine)._getDisplayPos(`${rl.getPrompt()}${rl.line}`);
  readline.moveCursor(output, 0, end.rows - rows);
  output.write('\r\n');
  return rl.line;
}

/** Draws the prompt and the draft from the cursor's row (after `clearDraft`), the cursor where it was in the draft. */
function redrawDraft(rl: readline.Interface): void {
  rl.prompt(true);
}

/**
 * A keyboard line at a terminal: readline with the draft kept whole when the
 * window is resized, and with Ctrl-Z that stops the whole job (a terminal
 * stops the foreground process group; readline alone stops only this process,
 * so `npx lanchat` would leave npm running and the shell waiting) and comes
 * back after `fg` in raw mode, reading, with the draft redrawn.
 */
function openKeyboard(
  input: RawReadable,
  output: Writable | undefined,
  prompt: string,
  job?: JobControl,
  complete?: Completer,
): readline.Interface {
  const terminal = output !== undefined;
  const completer = terminal && complete ? (line: string): [string[], string] => completeTypedKey(rl, line, complete) : undefined;
  const rl: readline.Interface = readline.createInterface({ input, output, terminal, prompt, completer });
  if (!rl.terminal || !output) return rl;
  keepInsertingAtTheCursor(rl);
  // Before readline's own redraw on 'resize', which would move up by the row
  // the cursor had at the old width.
  const onResize = (): void => void clearDraft(rl);
  output.prependListener('resize', onResize);
  const onContinue = (): void => {
    // Raw mode may be gone (we left it for the shell, or the shell reset the
    // terminal), and the draft erased: restore both at once, not at the next key.
    setRawMode(input, true);
    rl.resume();
    redrawDraft(rl);
  };
  const stopHearing = job?.onContinue(onContinue);
  if (job) {
    // Our own Ctrl-Z: readline's would stop this process only, and leave input paused after `fg`.
    rl.on('SIGTSTP', () => {
      clearDraft(rl); // the shell's "Stopped" takes its place; `fg` draws it again
      setRawMode(input, false);
      job.suspend();
      // Here once continued, or at once when nothing stopped us (SIGTSTP ignored, or an orphaned
      // process group, whose stop signals the kernel drops): never leave the keyboard half-restored.
      onContinue();
    });
  }
  rl.once('close', () => {
    output.off('resize', onResize);
    stopHearing?.();
  });
  return rl;
}

/**
 * Node's readline (20, 22) turns `isCompletionEnabled` off while it takes a
 * chunk of several characters (a paste, fast typing, a slow link), so that a
 * Tab in it does not complete; but then it appends the text to the end of the
 * line wherever the cursor is, and skips its record of the rows the draft
 * takes, so later redraws leave stale rows behind. Keep it on, so that every
 * character goes in where the cursor is, as if typed; what readline meant is
 * kept (`inPaste`), so that a Tab inside a paste is text (completeTypedKey).
 */
function keepInsertingAtTheCursor(rl: readline.Interface): void {
  if (!('isCompletionEnabled' in rl)) return;
  Object.defineProperty(rl, 'isCompletionEnabled', {
    get: () => true,
    set: (enabled: boolean) => void ((rl as PastingLine).inPaste = !enabled),
    configurable: true,
  });
}

type PastingLine = readline.Interface & { inPaste?: boolean };

/** What Tab completes: the line up to the cursor in, the candidates and the part of the line they replace out. */
export type Completer = (line: string) => [string[], string];

/** A status line as it fits in `columns` columns (it is cut to them if it does not). */
export type StatusLine = (columns: number) => string;

/** Tab at the keyboard completes; a Tab inside a paste goes in as text (the one candidate readline inserts). */
function completeTypedKey(rl: readline.Interface, line: string, complete: Completer): [string[], string] {
  return (rl as PastingLine).inPaste ? [[`${line}\t`], line] : complete(line);
}

/** Raw mode on or off; a terminal that is gone reports it as an 'error' on `input`. */
function setRawMode(input: RawReadable, on: boolean): void {
  if (input.isTTY && typeof input.setRawMode === 'function') input.setRawMode(on);
}

type TtyReadable = Readable & { isTTY?: boolean };
type TtyWritable = Writable & { isTTY?: boolean };

/** The process's streams, as cli.ts hands them in (tests use in-memory ones). */
export interface ConsoleIO {
  stdin: TtyReadable;
  stdout: TtyWritable;
  stderr: TtyWritable;
  /** Takes back a chunk read from stdin once nothing refers to it any more, to read into again. */
  recycleInput?: (chunk: Buffer) => void;
  /** Ctrl-Z at the keyboard stops the job through this; without it, readline's own handling. */
  job?: JobControl;
}

/** What the keyboard hands on: typed lines, Ctrl-C, and its end. */
export interface KeyboardHandlers {
  line: (text: string) => void;
  interrupt: () => void;
  /** Ctrl-D, or `terminalClosed`: the terminal itself went away (its window closed). */
  end: (terminalClosed: boolean) => void;
}

/** What piped input hands on. */
export interface PipeHandlers {
  /** Whole lines; `written` once their buffers may be reused. Return false to pause the input until resumeInput(). */
  lines: (lines: Lines, written?: () => void) => boolean;
  /** The input ended (an unfinished last line was handed to `lines` first, with its LF added). */
  end: () => void;
  /** A line over the limit or text that is not UTF-8 (a BadLineError, with the good lines before it). */
  bad: (error: Error) => void;
}

/** What the piped input still had after the conversation, counted (see Console.countLeftover). */
export interface Leftover {
  lines: number;
  /** Not counting what was held of an unfinished line. */
  bytes: number;
  /** The input came to its end within the time given. */
  ended: boolean;
}

export interface Console {
  /** Whoever reads stdout has gone (`| head -1`): nothing can be delivered any more. */
  on(event: 'broken', listener: () => void): this;
  /** The terminal is gone (EIO on reads or mode changes): the end of the keyboard. */
  on(event: 'keyboard-lost', listener: () => void): this;
}

/**
 * One process's terminal or pipes. The keyboard (a readline at a terminal), the
 * keyboard between sessions (lines read as typed), and piped input are three
 * ways of reading stdin; one at a time.
 */
export class Console extends EventEmitter {
  readonly interactive: boolean;
  #io: ConsoleIO;
  #rl: readline.Interface | null = null;
  #idle: readline.Interface | null = null;
  #splitter: LineSplitter | null = null;
  #pipe: PipeHandlers | null = null;
  /** Writes handed to stdout and not done yet (see OUTPUT_QUEUE_WRITES). */
  #queuedWrites = 0;
  /** Piped input goes on as it comes, not as lines (see readPipe). */
  #rawInput = false;
  #inputEnded = false;
  #inputStarted = false;
  #broken = false;
  /** The typed line being handled, as readline echoed it (see replaceTypedLine). */
  #echoed: string | null = null;
  /** The status line (a transfer's progress) for a width, drawn above the prompt or on stderr's last row; null: none. */
  #status: StatusLine | null = null;

  /** `interactive`: stdin is a terminal, read with a prompt. */
  constructor(io: ConsoleIO, { interactive }: { interactive: boolean }) {
    super();
    this.#io = io;
    this.interactive = interactive;
    io.stdout.on('error', this.#onStdoutError);
    if (interactive) io.stdin.on('error', this.#onKeyboardLost);
  }

  get broken(): boolean {
    return this.#broken;
  }

  /** Piped input has given something. */
  get inputStarted(): boolean {
    return this.#inputStarted;
  }

  /** Piped input is being read (readPipe was called), whether or not it gave anything yet. */
  get readingPipe(): boolean {
    return this.#splitter !== null;
  }

  /** Piped input has been read to its end. */
  get inputEnded(): boolean {
    return this.#inputEnded;
  }

  /** Piped input holds part of a line, waiting for its end. */
  get holding(): boolean {
    return this.#splitter?.holding ?? false;
  }

  /** The keyboard's prompt is up. */
  get typing(): boolean {
    return this.#rl !== null;
  }

  /**
   * Writes to stdout, above the prompt and draft when there are; `written` once
   * it is out (never after a failed write: what was not written is never
   * acknowledged). Returns false when stdout is full: OUTPUT_QUEUE_BYTES wait.
   */
  write(data: string | Buffer, written?: () => void): boolean {
    const stdout = this.#io.stdout;
    this.#queuedWrites++;
    const done = (error?: Error | null): void => {
      this.#queuedWrites--;
      if (!error) written?.();
    };
    if (this.#rl && this.#rl.terminal && promptOutput(this.#rl) === stdout) {
      this.#clearBottom(this.#rl);
      const more = stdout.write(data, done);
      this.#redrawBottom(this.#rl);
      return more;
    }
    if (this.#status !== null && stdout.isTTY) {
      this.#clearBottom(null);
      const more = stdout.write(data, done);
      this.#redrawBottom(null);
      return more;
    }
    // Writes of one turn of the event loop leave together, after its reads: one writev to a pipe for the
    // dozen TLS records a turn reads, not one per record (a microtask ran after each record's callback).
    if (!stdout.writableCorked) {
      stdout.cork();
      setImmediate(() => stdout.uncork());
    }
    const more = stdout.write(data, done);
    return this.#queuedWrites < OUTPUT_QUEUE_WRITES && (more || stdout.writableLength < OUTPUT_QUEUE_BYTES);
  }

  /** A line for the person: on stderr, or above the prompt and draft. */
  notice(text: string): void {
    const rl = this.#rl && this.#rl.terminal ? this.#rl : null;
    if (!rl && this.#status === null) return void this.#io.stderr.write(`${text}\n`);
    this.#clearBottom(rl);
    (rl ? promptOutput(rl) : this.#io.stderr).write(`${text}\n`);
    this.#redrawBottom(rl);
  }

  /**
   * Shows `text` as the status line (null: removes it): one row, redrawn in
   * place, above the prompt when there is one. Only at a terminal: elsewhere
   * it is never drawn. A function is asked for the line at each draw, with the
   * columns it may take (the terminal's width may change).
   */
  status(text: string | StatusLine | null): void {
    const rl = this.#rl && this.#rl.terminal ? this.#rl : null;
    if (!rl && !this.#io.stderr.isTTY) return;
    this.#clearBottom(rl);
    this.#status = typeof text === 'string' ? () => text : text;
    this.#redrawBottom(rl);
  }

  /** Erases what sits at the bottom: the status line, and the prompt and draft. */
  #clearBottom(rl: readline.Interface | null): void {
    if (rl) {
      const output = clearDraft(rl);
      if (this.#status === null) return;
      readline.moveCursor(output, 0, -1);
      readline.clearScreenDown(output);
    } else if (this.#status !== null) {
      this.#io.stderr.write('\r\x1b[K');
    }
  }

  /** Draws the status line again (cut to the width: one row), then the prompt and draft. */
  #redrawBottom(rl: readline.Interface | null): void {
    const output = (rl ? promptOutput(rl) : this.#io.stderr) as SizedWritable;
    if (this.#status !== null) {
      // One row, whatever the characters' widths: a row that wrapped would be left behind by the next redraw.
      const width = Math.max(10, (output.columns ?? 80) - 1);
      const line = cutToWidth(this.#status(width), width);
      output.write(rl ? `${line}\n` : line);
    }
    if (rl) redrawDraft(rl);
  }

  /** Waits until stdout has taken everything, unless `stop` is aborted or stdout broke. */
  async flush(stop: AbortSignal): Promise<void> {
    const { stdout } = this.#io;
    // process.stdout is never destroyed, even after EPIPE: our own flag says it broke.
    if (stdout.writableLength === 0 || this.#broken || stop.aborted) return;
    // Writes complete in order: an empty write's callback comes once all before it are out.
    // ('drain' would come only if a write had been refused: not when less than a buffer waits.)
    const flushed = new Promise<void>((resolve) => stdout.write('', () => resolve()));
    await Promise.race([flushed, once(stdout, 'close'), once(stop, 'abort')]).catch(() => {});
  }

  /** The prompt and the keyboard, at a terminal (the prompt goes to stderr when stdout is not one). */
  openKeyboard(prompt: string, handlers: KeyboardHandlers, complete?: Completer): void {
    const { stdin, stdout, stderr, job } = this.#io;
    const output = stdout.isTTY ? stdout : stderr.isTTY ? stderr : undefined;
    const rl = openKeyboard(stdin, output, prompt, job, complete);
    this.#rl = rl;
    rl.on('error', this.#onKeyboardLost); // forwarded from stdin, or raw mode that cannot be set
    rl.on('line', (line) => {
      // At the terminal's end (its window closed) readline hands over the draft: Enter was never pressed.
      if (stdin.readableEnded) return;
      this.#echoed = rl.terminal ? `${rl.getPrompt()}${line}` : null;
      try {
        handlers.line(line);
      } finally {
        this.#echoed = null;
      }
    });
    rl.on('SIGINT', handlers.interrupt);
    rl.on('close', () => {
      if (this.#rl !== rl) return;
      // Ctrl-D, or the terminal's end: in raw mode Ctrl-D is a key, so an end of input means the window closed.
      handlers.end(rl.terminal && stdin.readableEnded);
    });
  }

  /**
   * While a typed line is handled: shows `text` in place of the line as
   * readline echoed it (prompt and all, however many rows it took), as what
   * was said is shown. Nothing happens without a terminal.
   */
  replaceTypedLine(text: string): void {
    const rl = this.#rl;
    if (!rl || !rl.terminal || this.#echoed === null) return;
    const output = promptOutput(rl);
    const { rows, cols } = (rl as DisplayLine)._getDisplayPos(this.#echoed);
    readline.moveCursor(output, 0, -(rows + (cols > 0 || rows === 0 ? 1 : 0)));
    readline.cursorTo(output, 0);
    readline.clearScreenDown(output);
    output.write(text);
    this.#echoed = null;
  }

  setPrompt(prompt: string): void {
    this.#rl?.setPrompt(prompt);
  }

  prompt(): void {
    this.#rl?.prompt();
  }

  /**
   * The keyboard between sessions: lines as typed (no prompt, the terminal in
   * its usual mode). `end`: Ctrl-D.
   */
  readIdleLines(line: (text: string) => void, end: () => void): void {
    this.stopIdleLines();
    const keyboard = readline.createInterface({ input: this.#io.stdin, terminal: false, crlfDelay: Infinity });
    keyboard.on('line', line);
    keyboard.on('close', () => {
      if (this.#idle === keyboard) {
        this.#idle = null;
        end();
      }
    });
    this.#idle = keyboard;
  }

  get readingIdleLines(): boolean {
    return this.#idle !== null;
  }

  stopIdleLines(): void {
    const keyboard = this.#idle;
    this.#idle = null;
    keyboard?.close(); // and stdin is paused
  }

  /**
   * Reads piped input as whole lines of UTF-8 text of at most `maxLine` bytes.
   * The unfinished line and what was read carry over from one call to the next
   * (listen --keep serves one peer after another from the same input). `raw`:
   * hands each chunk on as it comes instead, whatever it holds (`connect
   * --raw`, as netcat): nothing held back, checked or added.
   */
  readPipe(maxLine: number, handlers: PipeHandlers, raw = false): void {
    this.#splitter ??= new LineSplitter(maxLine);
    this.#splitter.maxLine = maxLine;
    this.#rawInput = raw;
    this.#pipe = handlers;
    const stdin = this.#io.stdin;
    stdin.on('data', this.#onStdinData);
    stdin.on('end', this.#onStdinEnd);
    stdin.resume();
  }

  /** After `lines` returned false: read on. */
  resumeInput(): void {
    if (this.#pipe) this.#io.stdin.resume();
  }

  /**
   * Ends the keyboard and the piped input's reading (what was read of a line
   * is kept). Returns the half-typed line at a terminal ('' when none): it is
   * left on the screen, with the prompt, for the person to see it was not sent.
   */
  stopInput(): string {
    const stdin = this.#io.stdin;
    stdin.off('data', this.#onStdinData);
    stdin.off('end', this.#onStdinEnd);
    this.#pipe = null;
    let draft = '';
    if (this.#rl) {
      const rl = this.#rl;
      if (rl.terminal) this.status(null); // above the draft: gone with the prompt
      this.#rl = null;
      rl.close();
      if (rl.terminal && rl.line.trim() !== '') draft = keepDraft(rl);
      else if (rl.terminal) clearDraft(rl);
    }
    stdin.pause();
    return draft;
  }

  /**
   * Reads what piped input still has, dropping it, until it ends or `ms` pass,
   * and counts its lines (an unfinished one too): input that was never sent.
   */
  async countLeftover(ms: number): Promise<Leftover> {
    const stdin = this.#io.stdin;
    let lines = this.holding ? 1 : 0;
    let bytes = 0;
    this.#splitter?.reset();
    let partial = false; // the last chunk ended mid-line: that line counts too
    const ended = await new Promise<boolean>((resolve) => {
      const onData = (chunk: Buffer): void => {
        lines += countLineFeeds(chunk);
        bytes += chunk.length;
        partial = chunk.length > 0 && chunk[chunk.length - 1] !== 0x0a;
        this.#io.recycleInput?.(chunk);
      };
      const done = (end: boolean): void => {
        clearTimeout(timer);
        stdin.off('data', onData).off('end', onEnd).off('error', onEnd);
        stdin.pause();
        resolve(end);
      };
      const onEnd = (): void => done(true);
      const timer = setTimeout(() => done(false), ms);
      if (stdin.readableEnded) return done(true);
      stdin.on('data', onData).once('end', onEnd).once('error', onEnd);
      stdin.resume();
    });
    if (ended) this.#inputEnded = true;
    return { lines: lines + (partial ? 1 : 0), bytes, ended };
  }

  close(): void {
    this.stopIdleLines();
    this.stopInput();
    this.#io.stdout.off('error', this.#onStdoutError);
    this.#io.stdin.off('error', this.#onKeyboardLost);
  }

  #onStdinData = (chunk: Buffer): void => {
    const pipe = this.#pipe;
    if (!pipe) return;
    this.#inputStarted = true;
    let lines;
    try {
      lines = this.#rawInput ? { parts: [chunk], lines: countLineFeeds(chunk) } : this.#splitter!.push(chunk);
    } catch (error) {
      return pipe.bad(error as Error);
    }
    // The chunk may be reused for a later read once nothing refers to it: when its lines
    // have left (the splitter keeps only a copy of an unfinished line).
    const { recycleInput } = this.#io;
    const written = recycleInput && ((): void => recycleInput(chunk));
    if (!lines) return written?.();
    if (!pipe.lines(lines, written)) this.#io.stdin.pause(); // until resumeInput()
  };

  #onStdinEnd = (): void => {
    this.#inputEnded = true;
    const pipe = this.#pipe;
    if (!pipe) return;
    let last;
    try {
      last = this.#splitter!.end();
    } catch (error) {
      return pipe.bad(error as Error);
    }
    if (last) pipe.lines({ parts: [last], lines: 1 });
    pipe.end();
  };

  #onStdoutError = (): void => {
    this.#broken = true;
    this.emit('broken');
  };

  #onKeyboardLost = (): void => {
    if (this.#idle) return void this.#idle.close(); // as Ctrl-D
    this.emit('keyboard-lost');
  };
}
