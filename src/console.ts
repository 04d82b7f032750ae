// The keyboard's line at a terminal: the prompt and the draft (what is typed
// so far), which may wrap over several rows, kept below whatever is written
// above it — also across a resize, and across Ctrl-Z and `fg`.
import * as readline from 'node:readline';
import type { Readable, Writable } from 'node:stream';

/**
 * readline's own record of the cursor's row within prompt + draft, counted from
 * the first row. Not public API (Node has kept it since 0.x): its redraw moves
 * up that many rows first, so whoever erases the draft must reset it.
 */
type DraftLine = readline.Interface & { prevRows?: number };

type RawReadable = Readable & { isTTY?: boolean; setRawMode?: (mode: boolean) => unknown };
type SizedWritable = Writable & { columns?: number; rows?: number; getWindowSize?: () => [number, number] };

/** Stops the whole job as the terminal's Ctrl-Z would, and hears when it goes on (`fg`). */
export interface JobControl {
  suspend: () => void;
  /** Calls `listener` whenever the process is continued; returns what undoes that. */
  onContinue: (listener: () => void) => () => void;
}

export function promptOutput(rl: readline.Interface): Writable {
  return (rl as unknown as { output: Writable }).output;
}

/**
 * Erases the prompt and the draft, however many rows they take, and leaves the
 * cursor at the start of the first one: what is written next takes their place,
 * and `redrawDraft` draws them again below it. The cursor's row is counted at
 * today's width: after a resize that is where terminals that re-wrap lines
 * (tmux, VTE, kitty, iTerm2, Windows Terminal) have put it.
 */
export function clearDraft(rl: readline.Interface): Writable {
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

/** Draws the prompt and the draft from the cursor's row (after `clearDraft`), the cursor where it was in the draft. */
export function redrawDraft(rl: readline.Interface): void {
  rl.prompt(true);
}

/**
 * A keyboard line at a terminal: readline with the draft kept whole when the
 * window is resized, and with Ctrl-Z that stops the whole job (a terminal
 * stops the foreground process group; readline alone stops only this process,
 * so `npx lanchat` would leave npm running and the shell waiting) and comes
 * back after `fg` in raw mode, reading, with the draft redrawn.
 */
export function openKeyboard(input: RawReadable, output: Writable | undefined, prompt: string, job?: JobControl): readline.Interface {
  const rl = readline.createInterface({ input, output, terminal: output !== undefined, prompt });
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
 * takes, so later redraws leave stale rows behind. We have no completer: keep
 * it on, and every character goes in where the cursor is, as if typed.
 */
function keepInsertingAtTheCursor(rl: readline.Interface): void {
  if (!('isCompletionEnabled' in rl)) return;
  Object.defineProperty(rl, 'isCompletionEnabled', { get: () => true, set: () => {}, configurable: true });
}

/** Raw mode on or off; a terminal that is gone reports it as an 'error' on `input`. */
function setRawMode(input: RawReadable, on: boolean): void {
  if (input.isTTY && typeof input.setRawMode === 'function') input.setRawMode(on);
}
