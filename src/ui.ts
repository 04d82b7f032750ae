// Drives sessions from a terminal or a pipe: reads what the user types or
// pipes in, hands it to the session, renders what arrives, and turns the way a
// session ended into an exit code. Streams come in through ChatIO, so tests can
// run it with in-memory streams.
import { once } from 'node:events';
import { resolve } from 'node:path';
import * as readline from 'node:readline';
import type { Duplex, Readable, Writable } from 'node:stream';
import { clearDraft, openKeyboard, promptOutput, redrawDraft, type JobControl } from './console.js';
import { EXIT_FAILURE, EXIT_OK, LanchatError, signalExitCode } from './errors.js';
import { Session, type Incoming, type Role } from './peer.js';
import { BadLineError, LineSplitter, isValidNick, type TextKind } from './protocol.js';
import { SLASH_HELP, parseInput, type Input } from './slash.js';
import {
  compactTimestamp,
  describeStatus,
  inert,
  renderStatusJson,
  renderText,
  timestamp,
  type Format,
  type StatusEvent,
} from './terminal.js';
import { Transcript } from './transcript.js';
import { formatAddress, socketReads, type Endpoint } from './transport.js';

type TtyReadable = Readable & { isTTY?: boolean };
type TtyWritable = Writable & { isTTY?: boolean };

export interface ChatIO {
  stdin: TtyReadable;
  stdout: TtyWritable;
  stderr: TtyWritable;
  cwd: string;
  /** Aborted with 'SIGINT' or 'SIGTERM' when the process is asked to stop. */
  signal: AbortSignal;
  /** Takes back a chunk read from stdin once nothing refers to it any more, to read into again. */
  recycleInput?: (chunk: Buffer) => void;
  /** Ctrl-Z at the keyboard stops the job through this; without it, readline's own handling. */
  job?: JobControl;
}

/** The peer's key when the session is TLS, and how we know it ("pinned in contact bob", "a new key"). */
export interface PeerKey {
  fingerprint: string;
  note: string;
}

export interface SessionSecurity {
  key?: PeerKey;
  /**
   * A warning when the nick a peer claims (at hello or /nick) does not fit its
   * key, or passes for ours (`own`), else null.
   */
  vouch?: (nick: string, own: string) => string | null;
  /** The peer's hello arrived: it has proved to be lanchat (the connector pins a new key only now). */
  proven?: () => void;
}

export interface ChatOptions {
  role: Role;
  nick: string;
  maxLine: number;
  format: Format;
  /** stdin is a terminal: prompt with readline. */
  interactive: boolean;
  /** Slash commands on (always when interactive). */
  commands: boolean;
  waitMs: number;
  idleMs?: number;
  /** How long the peer may stay silent before it is lost (0: never); see SessionOptions. */
  aliveMs?: number;
  plain?: boolean;
  log?: string;
  handshakeMs?: number;
  /** Several sessions one after another (listen --keep): input left at the end of one goes to the next. */
  keep?: boolean;
  /** Connector: what it dialled (what /contact saves). */
  dialled?: Endpoint;
  /** Saves a contact for /contact; throws a LanchatError to refuse. */
  saveContact?: (contact: Endpoint & { name: string; fingerprint?: string }) => Promise<void>;
  /** At a keyboard, how long a line may go unconfirmed before the person is told (default 5 s). */
  lateMs?: number;
}

/** What a listener with nobody connected yet needs to know (see Chat.idle). */
export interface IdleListener {
  /** The address it listens on, for /who. */
  listening: string;
  /** Ctrl-D or /quit: stop listening. */
  onQuit: () => void;
}

/** What a failed /save says, for the usual reasons. */
const SAVE_ERRORS: Record<string, string> = {
  ENOENT: 'no such directory',
  ENOTDIR: 'no such directory',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EISDIR: 'that is a directory',
  ENOSPC: 'the disk is full',
  EROFS: 'read-only file system',
};
/** Errors that mean the peer broke the rules, so we hung up on it. */
const PEER_FAULTS = new Set(['ERR_BAD_FRAME', 'ERR_LINE_TOO_LONG', 'ERR_NOT_UTF8']);
/** How long piped input may pause, once the peer has finished, before we finish too. */
const LINGER_MS = 200;
/** At a keyboard, how long /quit and Ctrl-D wait for the acks of lines just sent. */
const QUIT_GRACE_MS = 1000;
/** After a session, how long we read what piped input still had, to say how much was not sent. */
const LEFTOVER_MS = 1000;
/** At a keyboard, how long a line may go unconfirmed before the person is told. */
const LATE_MS = 5000;
/** The exit code when the terminal goes away (its window closed), as if by SIGHUP. */
const TERMINAL_CLOSED = signalExitCode('SIGHUP')!;
/** How much of a late line the notice quotes. */
const LATE_QUOTE_CHARS = 40;

/** A line typed at the keyboard, until the peer confirms it or the person is told it is late. */
interface TypedLine {
  text: string;
  /** The session's count of lines sent, this one included: confirmed once that many are. */
  through: number;
  sentAt: number;
}

/**
 * One user's side of one or more sessions (several with `listen --keep`): the
 * piped input, its partial last line and the transcript outlive a session.
 */
export class Chat {
  #io: ChatIO;
  #options: ChatOptions;
  #nick: string;
  #transcript: Transcript;
  #splitter: LineSplitter | null = null;
  #stdinEnded = false;
  /** Piped input has given something. */
  #inputStarted = false;
  /** A piped /quit ended the input on purpose: what follows it is not ours to send. */
  #quitInput = false;
  /** The session was ended for another to follow at once (see endSession). */
  #handingOn = false;
  #session: Session | null = null;
  #peer: Endpoint = { host: '', port: 0 };
  #address = '';
  /** Slash commands still at work (/contact), finished before a session's end is reported. */
  #pending = new Set<Promise<void>>();
  #rl: readline.Interface | null = null;
  #inputError: LanchatError | null = null;
  #exitOverride: number | null = null;
  #lingering = false;
  /** Piped input paused because the socket is full: that is not the input pausing. */
  #awaitingDrain = false;
  #stdoutBroken = false;
  #key: PeerKey | null = null;
  /** The keyboard of a listener with nobody connected yet. */
  #idleKeyboard: readline.Interface | null = null;
  #idleListener: IdleListener | null = null;
  /** Typed lines not yet confirmed (oldest first), and the timer that names the late ones. */
  #typed: TypedLine[] = [];
  #lateTimer: NodeJS.Timeout | null = null;
  #lingerTimer: NodeJS.Timeout | null = null;

  constructor(io: ChatIO, options: ChatOptions) {
    this.#io = io;
    this.#options = options;
    this.#nick = options.nick;
    this.#transcript = new Transcript({
      keep: options.commands,
      logPath: options.log,
      onError: (message) => this.#notice(`lanchat: ${message}`),
    });
    io.stdout.on('error', this.#onStdoutError);
    // A terminal that is gone (its window closed) fails reads and mode changes: that is the end of the keyboard.
    if (options.interactive) io.stdin.on('error', this.#onKeyboardLost);
  }

  /**
   * Runs one session on a connected socket; resolves to its exit code.
   * `plain`: the listener already knows the peer for netcat (see sniffPeer).
   */
  async run(socket: Duplex, peer: Endpoint, { key, vouch, proven, plain }: SessionSecurity & { plain?: boolean } = {}): Promise<number> {
    this.#key = key ?? null;
    const address = formatAddress(peer.host, peer.port);
    this.#peer = peer;
    this.#address = address;
    this.#inputError = null;
    this.#exitOverride = null;
    this.#handingOn = false;
    this.#stopIdle();
    this.#transcript.restart();
    const session = new Session(socket, {
      role: this.#options.role,
      nick: this.#nick,
      maxLine: this.#options.maxLine,
      plain: this.#options.plain || plain,
      plainNick: address,
      waitMs: this.#options.waitMs,
      idleMs: this.#options.idleMs,
      aliveMs: this.#options.aliveMs,
      handshakeMs: this.#options.handshakeMs,
      deliver: (text, written) => this.#deliver(text, written),
      recycle: socketReads.give,
    });
    this.#session = session;
    const onAbort = (): void => {
      this.#exitOverride = signalExitCode(this.#io.signal.reason) ?? EXIT_FAILURE;
      session.quit({ complete: this.#inputComplete });
    };
    if (this.#io.signal.aborted) onAbort();
    else this.#io.signal.addEventListener('abort', onAbort);
    session.on('open', () => {
      this.#status({ type: 'join', nick: session.peerNick!, address, plain: session.plain, ...(this.#key && { key: this.#key }) });
      this.#notice(this.#security());
      if (!session.plain) {
        proven?.();
        this.#vouch(vouch, session.peerNick!);
      }
      this.#startInput(session);
    });
    session.on('nick', (from, to) => {
      this.#status({ type: 'nick', from, nick: to });
      this.#vouch(vouch, to);
    });
    session.on('closing', () => this.#stopInput());
    session.on('peer-done', () => this.#onPeerDone(session));
    const end = await session.done;
    this.#io.signal.removeEventListener('abort', onAbort);
    this.#stopInput();
    await Promise.allSettled(this.#pending);
    this.#session = null;
    await this.#flushOutput();
    // A signal while the output drained is still a signal: its code, and the notices below.
    if (this.#io.signal.aborted) this.#exitOverride ??= signalExitCode(this.#io.signal.reason) ?? EXIT_FAILURE;

    const who = session.peerNick ?? address;
    if (end.peerLeft && !end.error) this.#status({ type: 'leave', nick: who });
    if (end.error) {
      const dropped = PEER_FAULTS.has(end.error.code) ? `dropped ${who}: ` : '';
      this.#notice(`lanchat: ${inert(dropped + end.error.message)}`);
    }
    if (end.unconfirmed > 0) {
      this.#notice(`lanchat: ${plural(end.unconfirmed, 'line')} not confirmed by ${inert(who)}`);
    }
    // Only a goodbye can say this: a peer that vanished is reported above.
    const cutShort = end.peerCut && !end.error;
    if (cutShort) this.#notice(`lanchat: ${inert(who)} stopped before the end of its input: what it sent is incomplete`);
    if (this.#exitOverride !== null) return this.#exitOverride;
    // Set by the input handlers while we awaited the session.
    const inputError = this.#inputError as LanchatError | null;
    if (inputError) this.#notice(`lanchat: ${inputError.message}`);
    const unsent = inputError || this.#handingOn ? null : await this.#leftoverInput();
    if (unsent) this.#notice(`lanchat: ${unsent}: ${end.error ? 'the session ended' : `${inert(who)} left`}`);
    const failed = end.error || end.unconfirmed > 0 || inputError || unsent || (cutShort && !this.#options.interactive);
    return failed ? EXIT_FAILURE : EXIT_OK;
  }

  /**
   * When a signal stops us: whether what our input gave was all sent, as far as
   * we know — false once piped input has given something and has not been read
   * to its end (an input that is open but never gave anything has nothing we
   * know of to lose).
   */
  get #inputComplete(): boolean {
    if (this.#options.interactive) return true;
    return this.#stdinEnded ? !this.#splitter?.holding : !this.#inputStarted;
  }

  /**
   * When we finish after the peer did: our input has gone quiet (or ended), so
   * only a line it left half-way is known to be missing. What it gives later is
   * counted as not sent on our side (#leftoverInput); the peer has left.
   */
  get #nothingPending(): boolean {
    return !this.#splitter?.holding;
  }

  /**
   * After the last session, what piped input had that never left, said as
   * "N lines of input not sent": the rest is read (and dropped) until it ends,
   * for LEFTOVER_MS at most. Null when nothing was left. With --keep the input
   * is kept for the next peer instead.
   */
  async #leftoverInput(): Promise<string | null> {
    if (this.#options.interactive || this.#options.keep || this.#stdinEnded || this.#quitInput || !this.#splitter) return null;
    const stdin = this.#io.stdin;
    let lines = this.#splitter.holding ? 1 : 0;
    this.#splitter.reset();
    let partial = false; // the last chunk ended mid-line: that line counts too
    const ended = await new Promise<boolean>((resolve) => {
      const onData = (chunk: Buffer): void => {
        for (let i = chunk.indexOf(0x0a); i >= 0; i = chunk.indexOf(0x0a, i + 1)) lines++;
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
      const timer = setTimeout(() => done(false), LEFTOVER_MS);
      if (stdin.readableEnded) return done(true);
      stdin.on('data', onData).once('end', onEnd).once('error', onEnd);
      stdin.resume();
    });
    if (partial) lines++;
    if (ended) {
      this.#stdinEnded = true;
      return lines > 0 ? `${plural(lines, 'line')} of input not sent` : null;
    }
    // An input that stays open with nothing in it had nothing to send.
    return lines > 0 ? `the rest of the input was not sent (${plural(lines, 'line')} and more)` : null;
  }

  /** Waits until stdout has taken everything, unless we were told to stop or it broke. */
  async #flushOutput(): Promise<void> {
    const { stdout, signal } = this.#io;
    // process.stdout is never destroyed, even after EPIPE: our own flag says it broke.
    if (stdout.writableLength === 0 || this.#stdoutBroken || signal.aborted) return;
    // Writes complete in order: an empty write's callback comes once all before it are out.
    // ('drain' would come only if a write had been refused: not when less than a buffer waits.)
    const flushed = new Promise<void>((resolve) => stdout.write('', () => resolve()));
    await Promise.race([flushed, once(stdout, 'close'), once(signal, 'abort')]).catch(() => {});
  }

  /**
   * The peer has finished sending. At a keyboard we leave too. From a pipe we
   * first send what our input still has ready — until it ends or pauses for
   * LINGER_MS — so that two scripts piping at each other both get everything.
   */
  #onPeerDone(session: Session): void {
    if (this.#options.interactive || this.#stdinEnded || !this.#splitter) return session.finish(this.#nothingPending);
    this.#lingering = true;
    this.#armLinger();
  }

  /** Counts down LINGER_MS of quiet input — never while the input waits for the socket to drain. */
  #armLinger(): void {
    if (!this.#lingering || this.#awaitingDrain) return;
    if (this.#lingerTimer) this.#lingerTimer.refresh();
    else this.#lingerTimer = setTimeout(() => this.#session?.finish(this.#nothingPending), LINGER_MS);
  }

  #disarmLinger(): void {
    if (this.#lingerTimer) clearTimeout(this.#lingerTimer);
    this.#lingerTimer = null;
  }

  /** True once whoever reads our stdout has gone: no session can deliver anything now. */
  get outputBroken(): boolean {
    return this.#stdoutBroken;
  }

  /**
   * At a keyboard, between sessions (listen): the commands that need no peer
   * work (/help, /nick, /who, /quit). Text is not kept for the next peer, who
   * may be someone else: it is dropped, with a word. Ctrl-D (end of input) and
   * /quit call `onQuit`. The terminal stays in its usual mode (no prompt):
   * lines are read as typed.
   */
  idle(listener: IdleListener): void {
    if (!this.#options.interactive) return;
    this.#stopIdle();
    const keyboard = readline.createInterface({ input: this.#io.stdin, terminal: false, crlfDelay: Infinity });
    keyboard.on('line', (line) => this.#handleIdleInput(parseInput(line)));
    keyboard.on('close', () => {
      if (this.#idleKeyboard === keyboard) this.#quitIdle();
    });
    this.#idleKeyboard = keyboard;
    this.#idleListener = listener;
  }

  #stopIdle(): void {
    const keyboard = this.#idleKeyboard;
    this.#idleKeyboard = null;
    this.#idleListener = null;
    keyboard?.close(); // and stdin is paused
  }

  #quitIdle(): void {
    const listener = this.#idleListener;
    this.#stopIdle();
    listener?.onQuit();
  }

  #handleIdleInput(input: Input): void {
    switch (input.command) {
      case 'say':
      case 'me':
        return this.#notice('lanchat: nobody is connected yet; that was not sent');
      case 'nick':
        return this.#changeNick(input.nick);
      case 'who':
        return this.#notice(`nobody is connected yet; listening on ${this.#idleListener?.listening} as ${inert(this.#nick)}`);
      case 'help':
        return this.#notice(SLASH_HELP);
      case 'quit':
        return this.#quitIdle();
      case 'save':
      case 'contact':
        return this.#notice(`lanchat: /${input.command} needs a peer: nobody is connected yet`);
      case 'invalid':
        return this.#notice(input.hint);
    }
  }

  /** The terminal is gone (EIO): the end of the keyboard, as Ctrl-D — the session still says goodbye. */
  #onKeyboardLost = (): void => {
    if (this.#idleKeyboard) return this.#quitIdle();
    if (!this.#rl || !this.#session) return;
    this.#exitOverride ??= TERMINAL_CLOSED;
    this.#session.quit();
  };

  /** Releases stdin, and resolves once the log is written out. */
  /** A status line from outside the session (a listener turning someone away), kept clear of a half-typed line. */
  note(text: string): void {
    this.#notice(text);
  }

  /**
   * Ends the running session at once, as /quit does. `handOn`: another session
   * follows at once (a listener's silent peer giving up its seat), so what the
   * input still has is kept for it, not counted as lost.
   */
  endSession({ handOn = false }: { handOn?: boolean } = {}): void {
    this.#handingOn = handOn;
    this.#session?.quit();
  }

  close(): Promise<void> {
    this.#stopIdle();
    this.#stopInput();
    this.#io.stdout.off('error', this.#onStdoutError);
    this.#io.stdin.off('error', this.#onKeyboardLost);
    return this.#transcript.close();
  }

  #onStdoutError = (): void => {
    this.#stdoutBroken = true;
    // Whoever read our output has gone (`| head -1`): leave quietly.
    this.#exitOverride ??= EXIT_FAILURE;
    this.#session?.quit();
  };

  #deliver(text: Incoming, written: () => void): boolean {
    const now = new Date();
    this.#transcript.text(text, now);
    const data = renderText(this.#options.format, text, now);
    return this.#writeOut(data, written);
  }

  #writeOut(data: string | Buffer, written?: () => void): boolean {
    const stdout = this.#io.stdout;
    if (this.#rl && this.#rl.terminal && promptOutput(this.#rl) === stdout) {
      clearDraft(this.#rl);
      const more = stdout.write(data, (error) => error || written?.());
      redrawDraft(this.#rl);
      return more;
    }
    // Writes of one turn of the event loop leave together (one writev to a pipe, not one per TLS record).
    if (!stdout.writableCorked) {
      stdout.cork();
      queueMicrotask(() => stdout.uncork());
    }
    // A failed write is never acknowledged: the sender must not count it as delivered.
    return stdout.write(data, (error) => error || written?.());
  }

  /** A status line: on stderr, above the prompt when there is one, and on stdout in json. */
  #status(event: StatusEvent): void {
    const now = new Date();
    const line = describeStatus(event);
    this.#transcript.event(line, now);
    this.#notice(line);
    if (this.#options.format === 'json') this.#writeOut(renderStatusJson(event, now));
  }

  #notice(text: string): void {
    const rl = this.#rl;
    if (rl && rl.terminal) {
      clearDraft(rl).write(`${text}\n`);
      redrawDraft(rl);
    } else {
      this.#io.stderr.write(`${text}\n`);
    }
  }

  #startInput(session: Session): void {
    if (this.#options.interactive) return this.#startKeyboard(session);
    // Input ran out in an earlier session (--keep): a listener only receives now.
    if (this.#stdinEnded) return this.#options.role === 'listen' ? undefined : session.finish();
    this.#splitter ??= new LineSplitter(session.sendLimit);
    this.#splitter.maxLine = session.sendLimit;
    const stdin = this.#io.stdin;
    stdin.on('data', this.#onStdinData);
    stdin.on('end', this.#onStdinEnd);
    session.on('drain', this.#onSessionDrain);
    stdin.resume();
  }

  #stopInput(): void {
    this.#lingering = false;
    this.#awaitingDrain = false;
    this.#disarmLinger();
    const stdin = this.#io.stdin;
    stdin.off('data', this.#onStdinData);
    stdin.off('end', this.#onStdinEnd);
    this.#session?.off('drain', this.#onSessionDrain);
    this.#forgetTyped();
    if (this.#rl) {
      const rl = this.#rl;
      this.#rl = null;
      rl.close();
      if (rl.terminal) clearDraft(rl);
    }
    stdin.pause();
  }

  #onSessionDrain = (): void => {
    this.#awaitingDrain = false;
    this.#io.stdin.resume();
    this.#armLinger();
  };

  #onStdinData = (chunk: Buffer): void => {
    const session = this.#session;
    if (!session?.isOpen) return;
    this.#inputStarted = true;
    let lines;
    try {
      lines = this.#splitter!.push(chunk);
    } catch (error) {
      return this.#stopOnInputError(session, error as LanchatError);
    }
    // The chunk may be reused for a later read once nothing refers to it: when its lines
    // have left (the splitter keeps only a copy of an unfinished line).
    const { recycleInput } = this.#io;
    const done = recycleInput && ((): void => recycleInput(chunk));
    if (!lines) done?.();
    if (lines && !this.#sendPiped(session, lines.parts, lines.lines, done)) {
      this.#awaitingDrain = true;
      this.#io.stdin.pause(); // until the socket drains; not idle, so no lingering count-down
      this.#disarmLinger();
    } else {
      this.#armLinger();
    }
  };

  #onStdinEnd = (): void => {
    this.#stdinEnded = true;
    const session = this.#session;
    if (!session?.isOpen) return;
    try {
      const last = this.#splitter!.end();
      if (last) this.#sendPiped(session, [last], 1);
    } catch (error) {
      return this.#stopOnInputError(session, error as LanchatError);
    }
    // A listener whose input was empty from the start is a pure receiver: it
    // does not leave first, it waits for the peer's goodbye. (A connector always
    // finishes at the end of its input, so two empty inputs cannot wait forever.)
    if (this.#options.role === 'listen' && session.stats.linesSent === 0) return;
    session.finish();
  };

  #stopOnInputError(session: Session, error: LanchatError): void {
    // Everything before the bad line still goes out.
    if (error instanceof BadLineError && error.before.lines > 0) this.#sendPiped(session, error.before.parts, error.before.lines);
    this.#inputError =
      error.code === 'ERR_LINE_TOO_LONG'
        ? new LanchatError(
            error.code,
            `a line of input is longer than ${this.#limitText(session)}; it and the rest of the input were not sent`,
          )
        : new LanchatError(error.code, `the input is not UTF-8 text; it was not sent from there on`);
    this.#stopInput();
    session.finish(false);
  }

  /**
   * Sends piped lines; with --commands each line may be a command. `written`:
   * called once `parts` are no longer needed (see ChatIO.recycleInput).
   */
  #sendPiped(session: Session, parts: Buffer[], lines: number, written?: () => void): boolean {
    if (!session.isOpen) {
      written?.();
      return true; // leaving: what comes now is not sent, nor logged as said
    }
    if (!this.#options.commands) {
      if (this.#transcript.active) this.#transcript.text({ kind: 'msg', nick: this.#nick, body: Buffer.concat(parts) }, new Date());
      return session.send('msg', parts, lines, written);
    }
    // Runs of plain lines go out as one message each (one frame, one ack), as without --commands.
    let more = true;
    let said: string[] = [];
    const say = (): void => {
      if (said.length > 0) more = this.#sendText(session, 'msg', said.join('\n'), said.length) && more;
      said = [];
    };
    const typed = Buffer.concat(parts).toString('utf8').split('\n').slice(0, -1);
    for (const [i, line] of typed.entries()) {
      const input = parseInput(line);
      if (input.command === 'say') {
        said.push(input.text);
      } else if (input.command === 'quit') {
        // Like the end of input, so that every line before is confirmed first; lines after it are not sent.
        say();
        this.#quitInput = true;
        session.finish(i === typed.length - 1);
        break;
      } else {
        say();
        more = this.#handleInput(session, input) && more;
      }
    }
    say();
    written?.(); // the lines were copied into strings
    return more;
  }

  #startKeyboard(session: Session): void {
    const { stdin, stdout, stderr, job } = this.#io;
    const output = stdout.isTTY ? stdout : stderr.isTTY ? stderr : undefined;
    const rl = openKeyboard(stdin, output, `${this.#nick}> `, job);
    this.#rl = rl;
    rl.on('error', this.#onKeyboardLost); // forwarded from stdin, or raw mode that cannot be set
    rl.on('line', (line) => {
      // At the terminal's end (its window closed) readline hands over the draft: Enter was never pressed.
      if (!stdin.readableEnded) this.#handleLine(session, line);
    });
    rl.on('SIGINT', () => {
      this.#exitOverride = 130;
      session.quit();
    });
    rl.on('close', () => {
      if (this.#rl !== rl) return;
      // Ctrl-D, or the terminal's end: in raw mode Ctrl-D is a key, so an end of input means the window closed.
      if (rl.terminal && stdin.readableEnded) this.#exitOverride ??= TERMINAL_CLOSED;
      session.quit({ graceMs: QUIT_GRACE_MS });
    });
    this.#notice('type a message and press Enter; /help lists commands, /quit leaves');
    rl.prompt();
  }

  /** One typed (or, with --commands, piped) line. Returns false when the socket is full. */
  #handleLine(session: Session, line: string): boolean {
    return this.#handleInput(session, parseInput(line));
  }

  #handleInput(session: Session, input: Input): boolean {
    switch (input.command) {
      case 'say':
        return this.#sendText(session, 'msg', input.text);
      case 'me':
        return this.#sendText(session, 'me', input.text);
      case 'nick':
        this.#changeNick(input.nick, session);
        break;
      case 'save':
        this.#save(session, input.file);
        break;
      case 'contact':
        this.#track(this.#saveContact(input.name, input.port));
        break;
      case 'who':
        this.#notice(this.#describeSession(session));
        break;
      case 'help':
        this.#notice(SLASH_HELP);
        break;
      case 'quit':
        // At a keyboard: leave now, once the lines just sent are confirmed (a second at most).
        // (In a pipe #sendPiped ends the input instead.)
        session.quit({ graceMs: QUIT_GRACE_MS });
        break;
      case 'invalid':
        this.#notice(input.hint);
        break;
    }
    this.#rl?.prompt();
    return true;
  }

  /** /nick, in a session or (no `session`) at a listener with nobody connected yet. */
  #changeNick(nick: string, session?: Session): void {
    if (!isValidNick(nick)) return this.#notice('lanchat: a nick is 1 to 32 characters, with no spaces or control characters');
    this.#nick = nick;
    if (session) {
      session.setNick(nick);
      this.#rl?.setPrompt(`${nick}> `);
      this.#transcript.event(`you are now ${nick}`, new Date());
    }
    this.#notice(`you are now ${nick}`);
  }

  /** Sends `text`: one line, or `lines` of them joined by LF (piped, so already within the limit). */
  #sendText(session: Session, kind: TextKind, text: string, lines = 1): boolean {
    const body = Buffer.from(`${text}\n`, 'utf8');
    if (lines === 1 && body.length - 1 > session.sendLimit) {
      // At a keyboard the line is refused and the chat goes on; in a pipe the run stops, and says so once.
      if (this.#options.interactive)
        this.#notice(`lanchat: not sent: the line is ${body.length - 1} bytes, longer than ${this.#limitText(session)}`);
      else this.#stopOnInputError(session, new LanchatError('ERR_LINE_TOO_LONG', ''));
      return true;
    }
    if (!session.isOpen) return true; // leaving: not sent, so not in the transcript either
    this.#transcript.text({ kind, nick: this.#nick, body }, new Date());
    const more = session.send(kind, body, lines);
    if (this.#options.interactive && !session.plain) this.#watchTyped(session, text);
    this.#rl?.prompt();
    return more;
  }

  /** Remembers a typed line, so that the person hears of it if it stays unconfirmed (see LATE_MS). */
  #watchTyped(session: Session, text: string): void {
    this.#typed.push({ text, through: session.stats.linesSent, sentAt: Date.now() });
    if (!this.#lateTimer) this.#armLateTimer(session);
  }

  #armLateTimer(session: Session): void {
    const oldest = this.#typed[0];
    if (!oldest) return;
    const dueAt = oldest.sentAt + (this.#options.lateMs ?? LATE_MS);
    this.#lateTimer = setTimeout(() => this.#tellLate(session, dueAt), Math.max(0, dueAt - Date.now()));
  }

  /**
   * Once the oldest unconfirmed typed line is due, names it and counts every
   * other line still unconfirmed with it: one notice per stall, never again for
   * the same lines (the session's end counts what never came).
   */
  #tellLate(session: Session, dueAt: number): void {
    this.#lateTimer = null;
    const confirmed = session.stats.linesSent - session.unconfirmedLines;
    const late = this.#typed.filter((line) => line.through > confirmed);
    const first = late[0];
    if (first && first.sentAt + (this.#options.lateMs ?? LATE_MS) > dueAt) {
      this.#typed = late; // the lines due were confirmed in time: wait for the oldest left
      return this.#armLateTimer(session);
    }
    this.#typed = [];
    if (!first) return;
    const chars = [...first.text];
    const quote = inert(chars.slice(0, LATE_QUOTE_CHARS).join('')) + (chars.length > LATE_QUOTE_CHARS ? '…' : '');
    const more = late.length > 1 ? ` and ${plural(late.length - 1, 'more line')}` : '';
    const seconds = Math.round((Math.max(Date.now(), dueAt) - first.sentAt) / 1000);
    this.#notice(`not delivered yet: "${quote}"${more} (${seconds} s)`);
  }

  #forgetTyped(): void {
    if (this.#lateTimer) clearTimeout(this.#lateTimer);
    this.#lateTimer = null;
    this.#typed = [];
  }

  #save(session: Session, file: string | null): void {
    const peer = (session.peerNick ?? 'peer').replace(/[^\p{L}\p{N}._-]/gu, '_');
    const path = resolve(this.#io.cwd, file ?? `lanchat-${peer}-${compactTimestamp(new Date())}.txt`);
    try {
      const lines = this.#transcript.save(path);
      this.#notice(`saved ${plural(lines, 'line')} to ${path}`);
    } catch (error) {
      const { code, message } = error as NodeJS.ErrnoException;
      const why = SAVE_ERRORS[code ?? ''] ?? message;
      this.#notice(
        code === 'EEXIST'
          ? `lanchat: ${path} exists; nothing saved (give another name: /save FILE)`
          : `lanchat: cannot save ${path}: ${why}`,
      );
    }
  }

  /** "65536 bytes (--max-line)", or the peer's smaller limit, named as such. */
  #limitText(session: Session): string {
    const own = session.sendLimit === this.#options.maxLine;
    return `${session.sendLimit} bytes (${own ? '--max-line' : "the peer's limit"})`;
  }

  #track(work: Promise<void>): void {
    this.#pending.add(work);
    void work.finally(() => this.#pending.delete(work));
  }

  /** /contact NAME [PORT]: the connector saves what it dialled, the listener the peer's address. */
  async #saveContact(name: string, port: number | null): Promise<void> {
    const { saveContact, dialled, role } = this.#options;
    if (!saveContact) return this.#notice('lanchat: contacts are not available here');
    if (role === 'listen' && port === null) {
      return this.#notice(
        `usage: /contact NAME PORT (the port ${inert(this.#session?.peerNick ?? 'the peer')} listens on; it connected from port ${this.#peer.port})`,
      );
    }
    const host = role === 'connect' && dialled ? dialled.host : this.#peer.host;
    const contactPort = port ?? dialled?.port ?? this.#peer.port;
    try {
      await saveContact({ name, host, port: contactPort, ...(this.#key && { fingerprint: this.#key.fingerprint }) });
      this.#notice(`saved contact ${name} (${formatAddress(host, contactPort)})`);
      if (this.#key) this.#key = { ...this.#key, note: role === 'connect' ? `pinned in contact ${name}` : `contact ${name}` };
    } catch (error) {
      this.#notice(`lanchat: ${(error as Error).message}`);
    }
  }

  #describeSession(session: Session): string {
    const { linesSent, linesReceived, connectedAt } = session.stats;
    const kind = session.plain ? 'plain text, no confirmations' : 'lanchat protocol';
    const unconfirmed = session.unconfirmedLines;
    const confirmations =
      unconfirmed === 0 ? 'every line you sent is confirmed' : `${plural(unconfirmed, 'line')} you sent not confirmed yet`;
    return [
      `talking to ${inert(session.peerNick ?? '?')} at ${this.#address} (${kind})`,
      `connected since ${connectedAt ? timestamp(connectedAt) : '-'}`,
      `messages: ${linesSent} sent, ${linesReceived} received`,
      this.#security(),
      ...(session.plain ? [] : [confirmations]),
    ].join('\n');
  }

  /** Said when a session opens, and by /who. */
  #security(): string {
    return this.#key
      ? `encrypted (TLS 1.3); peer key ${this.#key.fingerprint} (${this.#key.note})`
      : 'not encrypted: anyone on the network can read this session';
  }

  /** The check of the nick a peer claims (see SessionSecurity.vouch). */
  #vouch(vouch: SessionSecurity['vouch'], nick: string): void {
    const warning = vouch?.(nick, this.#nick);
    if (warning) this.#notice(`lanchat: ${warning.split('\n').map(inert).join('\n')}`);
  }
}

function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}
