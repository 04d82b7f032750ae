#!/usr/bin/env -S node --max-semi-space-size=1
// The process: arguments, stdin/stdout, signals and the exit code. The only
// file that touches them. The commander program loads only when needed, so
// `lanchat --version` and `lanchat --help` start about as fast as node itself.
// Only what the fast paths need is imported up front; the rest loads in main().
//
// A young generation of 1 MiB semi-spaces (V8's grow to 16): Node's TLS hands
// over each record in a fresh buffer outside V8's heap, freed only when a
// collection finds it dead; smaller semi-spaces collect sooner. Measured: a TLS
// listener 91 -> 72 MiB, a file's receiver 105 -> 76 MiB, for up to 5 % more
// CPU there and up to a quarter more per line at a busy room host (README).
// (Collections also started at 30 % full, not V8's 80, for long lines, until
// TLS records went into reused buffers: then the flag only cost a listener
// ~5 % CPU and a file's receiver memory. README, Memory.)
// V8 takes this flag at start, hence the first line (`node dist/cli.js` runs
// without it); setting it later (v8.setFlagsFromString) may crash, as
// Node's documentation warns.
import { closeSync, fstatSync, readFileSync, readSync, realpathSync, writevSync } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { BufferPool } from './buffers.js';
import type { JobControl } from './console.js';
import type { CliContext } from './options.js';
import { version } from './version.js';

const FILE_CHUNK = 256 * 1024;
/** The top-level help, written at build time by commander itself (see package.json "build"). */
const PREBUILT_HELP = new URL('./help.txt', import.meta.url);

/**
 * stdin as a stream. A regular file (`< notes.txt`) is read with readSync:
 * reading a file never blocks for long, and process.stdin would read it 64 KiB
 * at a time through the thread pool, where the round trips, not the work, set
 * the pace of a transfer. Chunks stay under a frame's body limit (1 MiB), and
 * are read into buffers handed back through `recycleInput` once sent.
 */
function openStdin(ReadableClass: typeof Readable): Pick<CliContext, 'stdin' | 'recycleInput'> {
  try {
    if (fstatSync(0).isFile()) {
      const buffers = new BufferPool(FILE_CHUNK, 8);
      const stdin = new ReadableClass({
        highWaterMark: FILE_CHUNK,
        read() {
          // A turn of the event loop per chunk: a read that never waits would
          // otherwise keep the stream flowing from one chunk to the next, and the
          // peer's acks, its goodbye and our signals would wait for the end of the file.
          setImmediate(() => {
            const buffer = buffers.take();
            try {
              const n = readSync(0, buffer, 0, FILE_CHUNK, null);
              this.push(n === 0 ? null : buffer.subarray(0, n));
            } catch (error) {
              this.destroy(error as Error);
            }
          });
        },
      });
      return { stdin, recycleInput: buffers.give };
    }
  } catch {
    // no stdin at all: fall through to process.stdin, which copes
  }
  return { stdin: process.stdin };
}

/**
 * stdout as a stream. A file (`> log.txt`, /dev/null) gets one writev per
 * batch of output: process.stdout writes to a file one piece at a time, a
 * syscall each, and a session hands it several pieces per TLS record.
 */
function openStdout(WritableClass: typeof Writable, isatty: (fd: number) => boolean): Writable {
  try {
    const stat = fstatSync(1);
    if (stat.isFile() || (stat.isCharacterDevice() && !isatty(1))) {
      return new WritableClass({
        writev(chunks, callback) {
          const buffers = chunks.map(({ chunk }) => chunk as Buffer);
          const size = buffers.reduce((sum, buffer) => sum + buffer.length, 0);
          try {
            // libuv goes on after a short write, and stops short (with no error) only when it cannot:
            // what was not written must never be acknowledged.
            const written = writevSync(1, buffers);
            callback(written === size ? null : Object.assign(new Error('write EIO: output cut short'), { code: 'EIO' }));
          } catch (error) {
            callback(error as Error);
          }
        },
      });
    }
  } catch {
    // no stdout at all: process.stdout copes
  }
  return process.stdout;
}

/** `lanchat --version` and `lanchat --help` without loading commander; null if not one of those. */
function fastAnswer(args: string[]): string | null {
  if (args.length !== 1) return null;
  if (args[0] === '--version' || args[0] === '-V') return `${version()}\n`;
  if (args[0] === '--help' || args[0] === '-h') {
    try {
      return readFileSync(PREBUILT_HELP, 'utf8') || null;
    } catch {
      return null; // not built yet: commander answers
    }
  }
  return null;
}

/** Where main() writes its output (flushed before the process exits). */
let output: Writable = process.stdout;

/** Ctrl-Z at the keyboard stops the whole process group, as a terminal does (npx's npm too, not just us). */
const jobControl: JobControl = {
  suspend: () => process.kill(0, 'SIGTSTP'),
  onContinue: (listener) => {
    process.on('SIGCONT', listener);
    return () => process.off('SIGCONT', listener);
  },
};

/** Which of fds 0-2 were terminals at start: a terminal closed since then answers isatty() with false. */
const STDIO_TERMINALS = [process.stdin, process.stdout, process.stderr].map((stream) => (stream as { isTTY?: boolean }).isTTY === true);

/**
 * Closes fds 0-2 whose terminal is gone (its window closed): at exit Node
 * restores their terminal mode and aborts the process when that fails.
 */
function letGoOfLostTerminals(isatty: (fd: number) => boolean): void {
  STDIO_TERMINALS.forEach((wasTerminal, fd) => {
    if (!wasTerminal || isatty(fd)) return;
    try {
      closeSync(fd);
    } catch {
      // already closed
    }
  });
}

/** Runs the CLI on this process; resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  const quick = fastAnswer(argv.slice(2));
  if (quick !== null) {
    process.stdout.write(quick);
    return 0;
  }
  const { createProgram, usageHint } = await import('./program.js');
  const { CommanderError } = await import('commander');
  const { EXIT_FAILURE, EXIT_USAGE, LanchatError, signalExitCode } = await import('./errors.js');
  const { inert, loadWidths } = await import('./terminal.js');
  const { Readable, Writable } = await import('node:stream');
  const { isatty } = await import('node:tty');
  if (isatty(2)) await loadWidths(); // a progress line is drawn on stderr, only at a terminal
  const controller = new AbortController();
  const SIGNALS = ['SIGHUP', 'SIGINT', 'SIGTERM'] as const;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (!controller.signal.aborted) return controller.abort(signal);
    // Asked twice: go now. Not with process.exit, which waits for the thread
    // pool, where a file operation may be stuck for good (a FIFO's open, a hung
    // network disk): the signal's own default action ends us, whatever is pending.
    // Every listener goes (the lock library's too): with none, the default is back.
    process.removeAllListeners(signal);
    process.kill(process.pid, signal);
    process.exit(signalExitCode(signal)); // not reached: the signal has ended us
  };
  for (const signal of SIGNALS) process.on(signal, onSignal);
  process.stderr.on('error', () => {}); // stderr gone (a closed terminal): nowhere left to say anything
  const ctx: CliContext = {
    ...openStdin(Readable),
    stdout: (output = openStdout(Writable, isatty)),
    stderr: process.stderr,
    cwd: process.cwd(),
    env: process.env,
    ...(process.geteuid && { uid: process.geteuid() }),
    signal: controller.signal,
    ...(process.platform !== 'win32' && { job: jobControl }),
  };
  let code = 0;
  const program = createProgram(ctx, (c) => (code = c));
  try {
    await program.parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      code = error.exitCode === 0 ? 0 : EXIT_USAGE;
    } else if (error instanceof LanchatError) {
      // It may quote a file's or a peer's bytes; a warning may span lines.
      process.stderr.write(`lanchat: ${error.message.split('\n').map(inert).join('\n')}\n`);
      if (error.exitCode === EXIT_USAGE) process.stderr.write(`${usageHint(program)}\n`);
      code = error.exitCode;
    } else {
      const detail = process.env.DEBUG ? (error as Error).stack : (error as Error).message;
      process.stderr.write(`lanchat: internal error: ${detail}\n`);
      code = EXIT_FAILURE;
    }
  }
  for (const signal of SIGNALS) process.off(signal, onSignal);
  return code;
}

const invokedDirectly = process.argv[1] !== undefined && realpathSync(process.argv[1]) === realpathSync(new URL(import.meta.url));
if (invokedDirectly) {
  const code = await main(process.argv);
  letGoOfLostTerminals((await import('node:tty')).isatty);
  // Leave once output is flushed, so that no stray handle keeps us; at once
  // after a signal (stdout may be stalled) or when stdout is gone.
  const stdout = output;
  if (code >= 128 || stdout.destroyed || stdout.writableLength === 0) process.exit(code);
  stdout.once('error', () => process.exit(code));
  stdout.write('', () => process.exit(code));
  setTimeout(() => process.exit(code), 5000).unref(); // a reader that never reads cannot keep us
}
