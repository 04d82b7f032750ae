// Joins a Console (the terminal or the pipes) to its conversation: what is
// typed or piped in is sent, what arrives is rendered, slash commands run,
// and the transcript is kept. Resolves to an Outcome; the commands turn it
// into an exit code (errors.ts exitCode). Streams come in through ChatIO, so
// tests run it with in-memory streams.
import { homedir } from 'node:os';
import { resolve } from 'node:path';
import { TLSSocket } from 'node:tls';
import type { Duplex } from 'node:stream';
import { Console, type ConsoleIO } from './console.js';
import { Direct, RoomHost, plural, type Conversation, type Incoming } from './conversation.js';
import { Room, type RoomOptions } from './room.js';
import type { SessionSecurity } from './door.js';
import { LanchatError, type Outcome } from './errors.js';
import type { Role } from './session.js';
import { BadLineError, NICK_RULE, isValidNick, type Lines, type TextKind } from './protocol.js';
import { SLASH_HELP, completeInput, needsPeer, parseInput, refusal, slashHelp, type Input } from './slash.js';
import {
  compactTimestamp,
  describeStatus,
  inert,
  renderStatusJson,
  renderText,
  type Format,
  type StatusEvent,
  type TextEvent,
} from './terminal.js';
import { Transcript, type LogFile } from './transcript.js';
import { formatAddress, type Endpoint } from './address.js';
import { readTlsIntoPool, recycleRead } from './transport.js';
import { Files } from './files.js';

export interface ChatIO extends ConsoleIO {
  cwd: string;
  /** What `~` in a /save path stands for (default: the user's home directory). */
  home?: string;
  /** Aborted with 'SIGINT' or 'SIGTERM' when the process is asked to stop. */
  signal: AbortSignal;
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
  /** --log, opened (and checked) before any peer is reached: see openLog. */
  log?: LogFile;
  handshakeMs?: number;
  /** Several sessions one after another (listen --keep): input left at the end of one goes to the next. */
  keep?: boolean;
  /** Connector: what it dialled (what /contact saves). */
  dialled?: Endpoint;
  /** Saves a contact for /contact; throws a LanchatError to refuse. */
  saveContact?: (contact: Endpoint & { name: string; fingerprint?: string }) => Promise<void>;
  /** At a keyboard, how long a line may go unconfirmed before the person is told (default 5 s). */
  lateMs?: number;
  /** Told of each /nick taken (a listener re-announces itself). */
  onNickChange?: (nick: string) => void;
  /** listen --accept-files DIR: files offered are taken into DIR without asking. */
  acceptFiles?: string;
  /** Refuse files offered that are bigger than this many bytes. */
  maxFileSize?: number;
  /** lanchat send: offer these files, read no input, and leave once each has arrived (or not). */
  sendFiles?: readonly string[];
}

/** What a listener with nobody connected yet needs to know (see Chat.idle). */
export interface IdleListener {
  /** The address it listens on, for /who. */
  listening: string;
  /** Ctrl-D or /quit: stop listening. */
  onQuit: () => void;
}

/** `~` and `~/…` as a shell expands them (`~user` is left as typed). */
function expandHome(path: string, home: string): string {
  return path === '~' || path.startsWith('~/') ? home + path.slice(1) : path;
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
/** How long piped input may pause, once the peer has finished, before we finish too. */
const LINGER_MS = 200;
/** At a keyboard, how long /quit and Ctrl-D wait for the acks of lines just sent. */
const QUIT_GRACE_MS = 1000;
/** After a session, how long we read what piped input still had, to say how much was not sent. */
const LEFTOVER_MS = 1000;
/** At a keyboard, how long a line may go unconfirmed before the person is told. */
const LATE_MS = 5000;
/** How much of a late line the notice quotes. */
const LATE_QUOTE_CHARS = 40;

/** A typed line quoted in a notice: made inert, and cut at LATE_QUOTE_CHARS. */
function quoted(text: string): string {
  const chars = [...text];
  return inert(chars.slice(0, LATE_QUOTE_CHARS).join('')) + (chars.length > LATE_QUOTE_CHARS ? '…' : '');
}

/** A line typed at the keyboard, until the peer confirms it or the person is told it is late. */
interface TypedLine {
  text: string;
  /** The session's count of lines sent, this one included: confirmed once that many are. */
  through: number;
  sentAt: number;
}

export class Chat {
  #io: ChatIO;
  #console: Console;
  #options: ChatOptions;
  #nick: string;
  #transcript: Transcript;
  /** A piped /quit ended the input on purpose: what follows it is not ours to send. */
  #quitInput = false;
  /** The session was ended for another to follow at once (see endSession). */
  #handingOn = false;
  #session: Conversation | null = null;
  /** Slash commands still at work (/contact), finished before a session's end is reported. */
  #pending = new Set<Promise<void>>();
  #inputError: LanchatError | null = null;
  /** Set when the way we leave decides the outcome (a signal, Ctrl-C, a closed terminal, a broken stdout). */
  #override: Outcome | null = null;
  #lingering = false;
  /** Piped input paused because the socket is full: that is not the input pausing. */
  #awaitingDrain = false;
  /** A listener with nobody connected yet. */
  #idleListener: IdleListener | null = null;
  /** Typed lines not yet confirmed (oldest first), and the timer that names the late ones. */
  #typed: TypedLine[] = [];
  #lateTimer: NodeJS.Timeout | null = null;
  #lingerTimer: NodeJS.Timeout | null = null;
  /** The files of the running conversation (a lanchat peer, 1:1). */
  #files: Files | null = null;

  constructor(io: ChatIO, options: ChatOptions) {
    this.#io = io;
    this.#options = options;
    this.#nick = options.nick;
    this.#console = new Console(io, { interactive: options.interactive });
    this.#console.on('broken', this.#onOutputBroken);
    this.#console.on('keyboard-lost', this.#onKeyboardLost);
    this.#transcript = new Transcript({
      keep: options.commands,
      log: options.log,
      onError: (message) => this.#notice(`lanchat: ${message}`),
    });
  }

  /**
   * Runs one session on a connected socket; resolves to how it ended.
   * `plain`: the listener already knows the peer for netcat (see the door).
   */
  run(socket: Duplex, peer: Endpoint, { plain, ...security }: SessionSecurity & { plain?: boolean } = {}): Promise<Outcome> {
    // Its reads are given back (recycle) once written out: a 1:1 session's TLS records can go into reused buffers.
    if (socket instanceof TLSSocket) readTlsIntoPool(socket);
    const direct = new Direct(socket, peer, security, {
      role: this.#options.role,
      nick: this.#nick,
      maxLine: this.#options.maxLine,
      plain: this.#options.plain || plain,
      raw: this.#options.plain ? this.#rawOutput : undefined,
      waitMs: this.#options.waitMs,
      idleMs: this.#options.idleMs,
      aliveMs: this.#options.aliveMs,
      handshakeMs: this.#options.handshakeMs,
      files: true,
      deliver: (text, written) => this.#deliver(text, written),
      recycle: recycleRead,
    });
    return this.#converse(direct);
  }

  /**
   * `connect --raw` passes the peer's bytes on as they arrive when stdout
   * takes them as they are (plain, not a terminal, where a prompt would be
   * drawn after an unfinished line) and nothing else wants lines (a transcript).
   */
  get #rawOutput(): 'bytes' | 'lines' {
    const asBytes = this.#options.format === 'plain' && !this.#io.stdout.isTTY && !this.#transcript.active;
    return asBytes ? 'bytes' : 'lines';
  }

  /** `connect --raw` sends piped input as it comes, any bytes (commands need lines of text). */
  get #rawInput(): boolean {
    return this.#options.plain === true && !this.#options.commands;
  }

  /** A room whose host's user is this chat: what its members say is shown here. Run it with `host`. */
  openRoom(options: Pick<RoomOptions, 'name' | 'maxMembers'>): Room {
    const { maxLine, waitMs, idleMs, aliveMs, handshakeMs } = this.#options;
    return new Room({
      ...options,
      hostNick: this.#nick,
      session: { maxLine, waitMs, idleMs, aliveMs, handshakeMs },
      deliver: (text, written) => this.#deliver(text, written),
    });
  }

  /** Hosts `room` (see openRoom) until the host leaves; resolves to how it ended. */
  host(room: Room): Promise<Outcome> {
    return this.#converse(new RoomHost(room, this.#options.maxLine));
  }

  /** Runs one conversation until it ends; resolves to how it ended. */
  async #converse(session: Conversation): Promise<Outcome> {
    this.#inputError = null;
    this.#override = null;
    this.#handingOn = false;
    this.#stopIdle();
    this.#transcript.restart();
    this.#session = session;
    const onAbort = (): void => {
      this.#override = { signal: this.#io.signal.reason };
      session.quit({ complete: this.#inputComplete });
    };
    if (this.#io.signal.aborted) onAbort();
    else this.#io.signal.addEventListener('abort', onAbort);
    session.on('status', (event) => this.#status(event));
    session.on('warning', (warning) => this.#notice(`lanchat: ${warning.split('\n').map(inert).join('\n')}`));
    session.on('notice', (text) => this.#notice(text));
    session.on('you', (nick, note) => this.#takeNick(nick, note));
    session.on('open', () => {
      this.#notice(session.security());
      this.#openFiles(session);
      // Only where /contact can be typed (a listener's peer, not a room's member, which is not a contact).
      if (session instanceof Direct && session.keyIsNew && session.place === 'direct' && this.#options.commands)
        this.#notice('not a contact yet: /contact NAME PORT keeps this peer (PORT: the port they listen on)');
      this.#startInput(session);
    });
    session.on('closing', () => this.#stopInput());
    session.on('peer-done', () => this.#onPeerDone(session));
    const end = await session.done;
    this.#io.signal.removeEventListener('abort', onAbort);
    this.#stopInput();
    const files = this.#files;
    this.#files = null;
    // Why the chat ended is said once, in the session's own line just after.
    files?.close('the chat ended before it was complete');
    await Promise.allSettled(this.#pending);
    this.#session = null;
    await this.#console.flush(this.#io.signal);
    // A signal while the output drained is still a signal: its code, and the notices below.
    if (this.#io.signal.aborted) this.#override ??= { signal: this.#io.signal.reason };

    const report = session.conclude(end);
    for (const line of report.notices) this.#notice(line);
    if (this.#override !== null) return this.#override;
    // Set by the input handlers while we awaited the session.
    const inputError = this.#inputError as LanchatError | null;
    if (inputError) this.#notice(`lanchat: ${inputError.message}`);
    const unsent = inputError || this.#handingOn ? null : await this.#leftoverInput();
    if (unsent) this.#notice(`lanchat: ${unsent}: ${report.why}`);
    // A log that stopped short (a full disk) fails the session too: what the user asked to keep is not all there.
    const failed =
      report.failed ||
      inputError ||
      unsent ||
      (report.peerCut && !this.#options.interactive) ||
      !this.#transcript.logComplete ||
      files?.failed;
    return { failed: Boolean(failed) };
  }

  /**
   * When a signal stops us: whether what our input gave was all sent, as far as
   * we know — false once piped input has given something and has not been read
   * to its end (an input that is open but never gave anything has nothing we
   * know of to lose).
   */
  get #inputComplete(): boolean {
    if (this.#options.interactive) return true;
    return this.#console.inputEnded ? !this.#console.holding : !this.#console.inputStarted;
  }

  /**
   * When we finish after the peer did: our input has gone quiet (or ended), so
   * only a line it left half-way is known to be missing. What it gives later is
   * counted as not sent on our side (#leftoverInput); the peer has left.
   */
  get #nothingPending(): boolean {
    return !this.#console.holding;
  }

  /**
   * After the last session, what piped input had that never left, said as
   * "N lines of input not sent": the rest is read (and dropped) until it ends,
   * for LEFTOVER_MS at most. Null when nothing was left. With --keep the input
   * is kept for the next peer instead.
   */
  async #leftoverInput(): Promise<string | null> {
    const input = this.#console;
    if (this.#options.interactive || this.#options.keep || input.inputEnded || this.#quitInput || !input.readingPipe) return null;
    const { lines, bytes, ended } = await input.countLeftover(LEFTOVER_MS);
    if (lines === 0 && bytes === 0) return null; // an input that ended, or stays open, with nothing more had nothing to send
    const what = this.#rawInput ? plural(bytes, 'byte') : plural(lines, 'line'); // --raw input is bytes, not lines
    return ended ? `${what} of input not sent` : `the rest of the input was not sent (${what} and more)`;
  }

  /**
   * The peer has finished sending. At a keyboard we leave too. From a pipe we
   * first send what our input still has ready — until it ends or pauses for
   * LINGER_MS — so that two scripts piping at each other both get everything.
   */
  #onPeerDone(session: Conversation): void {
    if (this.#options.interactive || this.#console.inputEnded || !this.#console.readingPipe)
      return this.#finish(session, this.#nothingPending);
    this.#lingering = true;
    this.#armLinger();
  }

  /** Counts down LINGER_MS of quiet input — never while the input waits for the socket to drain. */
  #armLinger(): void {
    if (!this.#lingering || this.#awaitingDrain) return;
    if (this.#lingerTimer) this.#lingerTimer.refresh();
    else
      this.#lingerTimer = setTimeout(() => {
        if (this.#session) this.#finish(this.#session, this.#nothingPending);
      }, LINGER_MS);
  }

  #disarmLinger(): void {
    if (this.#lingerTimer) clearTimeout(this.#lingerTimer);
    this.#lingerTimer = null;
  }

  /** True once whoever reads our stdout has gone: no session can deliver anything now. */
  get outputBroken(): boolean {
    return this.#console.broken;
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
    this.#idleListener = listener;
    this.#console.readIdleLines(
      (line) => this.#handleIdleInput(parseInput(line)),
      () => this.#quitIdle(),
    );
  }

  #stopIdle(): void {
    this.#idleListener = null;
    this.#console.stopIdleLines();
  }

  #quitIdle(): void {
    const listener = this.#idleListener;
    this.#stopIdle();
    listener?.onQuit();
  }

  #handleIdleInput(input: Input): void {
    if (input.command === 'say' || input.command === 'me') return this.#notice('lanchat: nobody is connected yet; that was not sent');
    if (needsPeer(input)) return this.#notice(`lanchat: /${input.command} needs a peer: nobody is connected yet`);
    switch (input.command) {
      case 'nick':
        return this.#changeNick(input.nick);
      case 'who':
        return this.#notice(`nobody is connected yet; listening on ${this.#idleListener?.listening} as ${inert(this.#nick)}`);
      case 'help':
        return this.#notice(SLASH_HELP);
      case 'quit':
        return this.#quitIdle();
      case 'invalid':
        return this.#notice(input.hint);
      default:
        return; // the rest need a peer (above)
    }
  }

  /** The terminal is gone (EIO): the end of the keyboard, as Ctrl-D — the session still says goodbye. */
  #onKeyboardLost = (): void => {
    if (!this.#console.typing || !this.#session) return;
    this.#override ??= { signal: 'SIGHUP' };
    this.#session.quit();
  };

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

  /** Releases stdin, and resolves once the log is written out: to false if it could not be written completely. */
  async close(): Promise<boolean> {
    this.#stopIdle();
    this.#stopInput();
    this.#console.close();
    await this.#transcript.close();
    return this.#transcript.logComplete;
  }

  #onOutputBroken = (): void => {
    // Whoever read our output has gone (`| head -1`): leave quietly.
    this.#override ??= { failed: true };
    this.#session?.quit();
  };

  #deliver(text: Incoming, written: () => void): boolean {
    const now = new Date();
    this.#transcript.text(text, now);
    const room = this.#session?.room;
    const data = renderText(this.#options.format, room ? { ...text, room } : text, now);
    return this.#writeOut(data, written);
  }

  #writeOut(data: string | Buffer, written?: () => void): boolean {
    return this.#console.write(data, written);
  }

  /** A status line: on stderr, above the prompt when there is one, and on stdout in json. */
  #status(event: StatusEvent): void {
    const now = new Date();
    const line = describeStatus(event);
    this.#transcript.event(line, now);
    this.#notice(line);
    if (this.#options.format === 'json') this.#writeOut(renderStatusJson(event, now, this.#session?.room ?? undefined));
  }

  #notice(text: string): void {
    this.#console.notice(text);
  }

  #startInput(session: Conversation): void {
    if (this.#options.sendFiles) return; // lanchat send reads no input
    if (this.#options.interactive) return this.#startKeyboard(session);
    // Input ran out in an earlier session (--keep): a listener only receives now.
    if (this.#console.inputEnded) return this.#options.role === 'listen' ? undefined : session.finish();
    session.on('drain', this.#onSessionDrain);
    this.#console.readPipe(
      session.sendLimit,
      {
        lines: (lines, written) => this.#onPipedLines(session, lines, written),
        end: () => this.#onInputEnd(session),
        bad: (error) => this.#stopOnInputError(session, error as LanchatError),
      },
      this.#rawInput,
    );
  }

  #stopInput(): void {
    this.#lingering = false;
    this.#awaitingDrain = false;
    this.#disarmLinger();
    this.#session?.off('drain', this.#onSessionDrain);
    this.#forgetTyped();
    const draft = this.#console.stopInput();
    // Left on the screen: say it never left.
    if (draft !== '') this.#notice(`not sent (the session ended): "${quoted(draft)}"`);
  }

  #onSessionDrain = (): void => {
    this.#awaitingDrain = false;
    this.#console.resumeInput();
    this.#armLinger();
  };

  /** Piped lines: sent; false pauses the input until the socket drains (not idle, so no lingering count-down). */
  #onPipedLines(session: Conversation, lines: Lines, written?: () => void): boolean {
    if (!session.isOpen) {
      written?.();
      return true;
    }
    const more = this.#sendPiped(session, lines.parts, lines.lines, written);
    if (more) {
      this.#armLinger();
      return true;
    }
    this.#awaitingDrain = true;
    this.#disarmLinger();
    return false;
  }

  #onInputEnd(session: Conversation): void {
    if (!session.isOpen) return;
    // A listener whose input was empty from the start is a pure receiver: it
    // does not leave first, it waits for the peer's goodbye — unless that came
    // already (we were lingering). (A connector always finishes at the end of
    // its input, so two empty inputs cannot wait forever.)
    if (this.#options.role === 'listen' && session.linesSent === 0 && !this.#lingering) return;
    this.#finish(session);
  }

  /**
   * We have nothing more to say: goodbye once every file on its way has
   * arrived (or not) — a goodbye says we send nothing more, files included.
   */
  #finish(session: Conversation, complete = true): void {
    const files = this.#files;
    if (!files?.busy) return session.finish(complete);
    this.#track(files.idle().then(() => session.finish(complete)));
  }

  /** A lanchat peer, or a room: files both ways (and lanchat send's own). */
  #openFiles(session: Conversation): void {
    if (!session.files) return;
    const { interactive, acceptFiles, maxFileSize, sendFiles } = this.#options;
    const files = new Files(session.files, {
      cwd: this.#io.cwd,
      canAsk: interactive || this.#options.commands,
      ...(acceptFiles !== undefined && { acceptInto: resolve(this.#io.cwd, acceptFiles) }),
      ...(maxFileSize !== undefined && { maxFileSize }),
      peerId: (from) => session.fileSender(from),
      peerNick: () => session.peerNick ?? 'the peer',
      notice: (text) => this.#notice(text),
      ...(this.#io.stderr.isTTY && { progress: (line) => this.#console.status(line) }),
    });
    this.#files = files;
    if (!sendFiles) return;
    if (!session.canSendFiles) {
      const peer = inert(session.peerNick ?? 'the peer');
      this.#notice(
        session.room === null
          ? `lanchat: ${peer} takes no files (its lanchat is older: update it)`
          : `lanchat: ${peer}'s room ("${inert(session.room)}") relays no files (its lanchat is older: update it)`,
      );
      this.#override ??= { failed: true };
      return session.finish();
    }
    // Into a room, lanchat send sends to its host (listen --room --accept-files takes them).
    const to = session.place === 'member' ? (session.peerNick ?? undefined) : undefined;
    this.#track(files.send(sendFiles, to).then(() => this.#finish(session)));
  }

  #stopOnInputError(session: Conversation, error: LanchatError): void {
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
  #sendPiped(session: Conversation, parts: Buffer[], lines: number, written?: () => void): boolean {
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

  #startKeyboard(session: Conversation): void {
    this.#console.openKeyboard(
      `${this.#nick}> `,
      {
        line: (line) => this.#handleLine(session, line),
        interrupt: () => {
          this.#override = { signal: 'SIGINT' };
          session.quit();
        },
        end: (terminalClosed) => {
          if (terminalClosed) this.#override ??= { signal: 'SIGHUP' };
          session.quit({ graceMs: QUIT_GRACE_MS });
        },
      },
      (line) => completeInput(line, session.place, session.nicks()),
    );
    this.#notice('type a message and press Enter; /help lists commands, /quit leaves');
    this.#console.prompt();
  }

  /** One typed (or, with --commands, piped) line. Returns false when the socket is full. */
  #handleLine(session: Conversation, line: string): boolean {
    return this.#handleInput(session, parseInput(line));
  }

  #handleInput(session: Conversation, input: Input): boolean {
    const refused = refusal(input, session.place);
    if (refused !== null) {
      this.#notice(refused);
      this.#console.prompt();
      return true;
    }
    switch (input.command) {
      case 'say':
        // An empty line at a keyboard is Enter pressed by habit, not a message (piped ones are data: #sendPiped).
        if (this.#options.interactive && input.text.trim() === '') break;
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
        this.#notice(session.describe(input.nick));
        break;
      case 'names':
        this.#notice(session.names());
        break;
      case 'msg':
        this.#sendPrivate(session, input.nick, input.text);
        break;
      case 'kick':
        session.kick?.(input.nick, input.reason);
        break;
      case 'send':
        this.#sendFiles(session, input.paths);
        break;
      case 'accept':
        this.#withFiles((files) => this.#track(files.accept(input.dir === null ? null : this.#expandHome(input.dir))));
        break;
      case 'decline':
        this.#withFiles((files) => files.decline());
        break;
      case 'cancel':
        this.#withFiles((files) => files.cancel());
        break;
      case 'help':
        this.#notice(slashHelp(session.place));
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
    this.#console.prompt();
    return true;
  }

  /**
   * /nick, in a session or (no `session`) at a listener with nobody connected
   * yet. In a room it is a request: the nick is ours once the room says so
   * (the conversation's 'you').
   */
  #changeNick(nick: string | null, session?: Conversation): void {
    if (nick === null) return this.#notice(`you are ${inert(this.#nick)}`);
    if (!isValidNick(nick)) return this.#notice(`lanchat: ${NICK_RULE}`);
    if (!session) this.#nick = nick;
    else if (session.setNick(nick)) this.#takeNick(nick);
    else return;
    this.#options.onNickChange?.(nick);
    this.#notice(`you are now ${nick}`);
  }

  /** Our nick is now `nick` (we changed it, or the room gave it to us); `note`: what to tell the person. */
  #takeNick(nick: string, note: string | null = null): void {
    this.#nick = nick;
    this.#console.setPrompt(`${nick}> `);
    this.#transcript.event(`you are now ${nick}`, new Date());
    if (note !== null) this.#notice(note);
  }

  /** /send PATH... (in a room: /send NICK PATH...): offered when the peer takes files. */
  #sendFiles(session: Conversation, paths: string[]): void {
    this.#withFiles((files) => {
      if (!session.canSendFiles && session.place === 'member')
        return this.#notice(`lanchat: ${inert(session.peerNick ?? 'the host')}'s room relays no files (its lanchat is older)`);
      if (!session.canSendFiles)
        return this.#notice(`lanchat: ${inert(session.peerNick ?? 'the peer')} takes no files (its lanchat is older, or it is netcat)`);
      if (session.place === 'direct') return this.#track(files.send(paths.map((path) => this.#expandHome(path))).then(() => undefined));
      const [nick, ...rest] = paths;
      if (rest.length === 0) return this.#notice('usage: /send NICK PATH...');
      const recipient = session.fileRecipient(nick);
      if ('refused' in recipient) return this.#notice(recipient.refused);
      this.#track(
        files
          .send(
            rest.map((path) => this.#expandHome(path)),
            recipient.to,
          )
          .then(() => undefined),
      );
    });
  }

  /** `~/…` in a path typed in a slash command, as a shell would expand it. */
  #expandHome(path: string): string {
    return expandHome(path, this.#io.home ?? homedir());
  }

  #withFiles(use: (files: Files) => void): void {
    if (this.#files) use(this.#files);
    else this.#notice('lanchat: files go only between two lanchat peers (this peer is netcat)');
  }

  /** /msg NICK TEXT: one line to one member of the room. */
  #sendPrivate(session: Conversation, nick: string, text: string): void {
    const body = Buffer.from(`${text}\n`, 'utf8');
    if (body.length - 1 > session.sendLimit) {
      return this.#notice(`lanchat: not sent: the line is ${body.length - 1} bytes, longer than ${this.#limitText(session)}`);
    }
    if (!session.isOpen) return;
    const refused = session.sendTo(nick, 'msg', body, 1);
    if (refused !== null) return this.#notice(refused);
    const now = new Date();
    this.#transcript.text({ kind: 'msg', nick: this.#nick, to: nick, body }, now);
    this.#showOwn({ kind: 'msg', nick: this.#nick, to: nick, body }, now);
    if (this.#options.interactive) this.#watchTyped(session, text);
  }

  /** Sends `text`: one line, or `lines` of them joined by LF (piped, so already within the limit). */
  #sendText(session: Conversation, kind: TextKind, text: string, lines = 1): boolean {
    const body = Buffer.from(`${text}\n`, 'utf8');
    if (lines === 1 && body.length - 1 > session.sendLimit) {
      // At a keyboard the line is refused and the chat goes on; in a pipe the run stops, and says so once.
      if (this.#options.interactive)
        this.#notice(`lanchat: not sent: the line is ${body.length - 1} bytes, longer than ${this.#limitText(session)}`);
      else this.#stopOnInputError(session, new LanchatError('ERR_LINE_TOO_LONG', ''));
      return true;
    }
    if (!session.isOpen) return true; // leaving: not sent, so not in the transcript either
    const now = new Date();
    this.#transcript.text({ kind, nick: this.#nick, body }, now);
    this.#showOwn({ kind, nick: this.#nick, body }, now);
    const more = session.send(kind, body, lines);
    if (this.#options.interactive && !session.plain) this.#watchTyped(session, text);
    this.#console.prompt();
    return more;
  }

  /** A line just typed and sent: at a terminal, shown as the peer's are (`[HH:MM] alice: hi`) in place of its echo. */
  #showOwn(text: TextEvent, now: Date): void {
    if (this.#options.interactive && this.#options.format === 'pretty')
      this.#console.replaceTypedLine(renderText('pretty', text, now) as string);
  }

  /** Remembers a typed line, so that the person hears of it if it stays unconfirmed (see LATE_MS). */
  #watchTyped(session: Conversation, text: string): void {
    this.#typed.push({ text, through: session.linesSent, sentAt: Date.now() });
    if (!this.#lateTimer) this.#armLateTimer(session);
  }

  #armLateTimer(session: Conversation): void {
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
  #tellLate(session: Conversation, dueAt: number): void {
    this.#lateTimer = null;
    const confirmed = session.linesSent - session.unconfirmedLines;
    const late = this.#typed.filter((line) => line.through > confirmed);
    const first = late[0];
    if (first && first.sentAt + (this.#options.lateMs ?? LATE_MS) > dueAt) {
      this.#typed = late; // the lines due were confirmed in time: wait for the oldest left
      return this.#armLateTimer(session);
    }
    this.#typed = [];
    if (!first) return;
    const quote = quoted(first.text);
    const more = late.length > 1 ? ` and ${plural(late.length - 1, 'more line')}` : '';
    const seconds = Math.round((Math.max(Date.now(), dueAt) - first.sentAt) / 1000);
    this.#notice(`not delivered yet: "${quote}"${more} (${seconds} s)`);
  }

  #forgetTyped(): void {
    if (this.#lateTimer) clearTimeout(this.#lateTimer);
    this.#lateTimer = null;
    this.#typed = [];
  }

  #save(session: Conversation, file: string | null): void {
    const peer = (session.peerNick ?? 'peer').replace(/[^\p{L}\p{N}._-]/gu, '_');
    const path = resolve(this.#io.cwd, file === null ? `lanchat-${peer}-${compactTimestamp(new Date())}.txt` : this.#expandHome(file));
    try {
      const { lines, complete } = this.#transcript.save(path);
      const incomplete = complete ? '' : '; the conversation is incomplete: what came after could not be kept';
      this.#notice(`saved ${plural(lines, 'line')} to ${path}${incomplete}`);
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
  #limitText(session: Conversation): string {
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
    const session = this.#session;
    if (!saveContact || !(session instanceof Direct)) return this.#notice('lanchat: contacts are not available here');
    const { peer, key } = session;
    if (role === 'listen' && port === null) {
      const who = session.plain ? 'the peer' : inert(session.peerNick ?? 'the peer');
      return this.#notice(
        `usage: /contact NAME PORT\n  PORT: the one ${who} listens on ("lanchat listen PORT" on their side); the port it\n` +
          `  connected from (${peer.port}) is picked anew each time and cannot be dialled`,
      );
    }
    const host = role === 'connect' && dialled ? dialled.host : peer.host;
    const contactPort = port ?? dialled?.port ?? peer.port;
    try {
      await saveContact({ name, host, port: contactPort, ...(key && { fingerprint: key.fingerprint }) });
      this.#notice(`saved contact ${name} (${formatAddress(host, contactPort)})`);
      session.keyNote = role === 'connect' ? `pinned in contact ${name}` : `contact ${name}`;
    } catch (error) {
      this.#notice(`lanchat: ${(error as Error).message}`);
    }
  }
}
