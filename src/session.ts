// One chat session over one duplex byte stream (a TCP socket, or an in-memory
// pair in tests): handshake, messages and acks, nick changes, goodbye. It never
// touches process.* or the console: input comes in through methods, output
// leaves through the `deliver` callback and events, and the end is a promise.
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { Socket } from 'node:net';
import type { BufferPool } from './buffers.js';
import { LanchatError, protocolError } from './errors.js';
import { countLineFeeds } from './linefeeds.js';
import {
  BadLineError,
  FrameDecoder,
  LineSplitter,
  PROTOCOL_VERSION,
  bodyLimit,
  countLines,
  encodeControl,
  encodeChunkHeader,
  encodeTextHeader,
  lineJoins,
  FILE_FEATURE,
  ROOM_FEATURE,
  type ControlFrame,
  type FileFrame,
  type Frame,
  type RoomFrame,
  type TextKind,
  type TextMeta,
} from './protocol.js';

export type Role = 'connect' | 'listen';

export interface Incoming {
  kind: TextKind;
  /** Who said it: the peer, or in a room the member the host names. */
  nick: string;
  /**
   * Whole lines of UTF-8 text, each ending in a line feed. From a plain peer,
   * lines of any bytes; with `raw`, any bytes at all (see SessionOptions.raw).
   */
  body: Buffer;
  /** In a room: a member's private message is for this nick alone (at the host). */
  to?: string;
  /** In a room: only you were told this (at a member). */
  private?: true;
  /** In a room: said before you joined (at a member). */
  earlier?: true;
  /** On the last piece of a lanchat frame: its id (a room's host reports its delivery by it). */
  id?: number;
}

/**
 * What a room's host tells the session of each member (PROTOCOL.md, Rooms):
 * the room's name, and the nick a connector gets — or why it is refused.
 */
export interface HostedRoom {
  name: string;
  /** `nick`, or a free nick like it, for a connector that said `features`; an error refuses it (sent as an error frame). */
  admit: (nick: string, features: readonly string[]) => string | LanchatError;
}

export interface SessionOptions {
  role: Role;
  nick: string;
  maxLine: number;
  /**
   * Speak plain lines with no handshake: `connect --raw`, or a listener's
   * peer that its door found to be netcat. The session never guesses: a
   * listener's peer that is not plain must start with a hello.
   */
  plain?: boolean;
  /**
   * With a plain peer, pass on exactly what it sends, as netcat does
   * (`connect --raw`): no line limit, nothing added to an unfinished end.
   * 'bytes': as it arrives, for output that is the bytes themselves; 'lines':
   * cut into lines for output that shows lines, a line still unfinished after
   * `maxLine` bytes handed on as it is. Without it a plain peer's lines may
   * hold any bytes, but must keep within `maxLine`.
   */
  raw?: 'bytes' | 'lines';
  /** What to call a plain peer, which has no nick (usually its address). */
  plainNick?: string;
  /** Listener: we host this room, and the peer is one of its members. */
  room?: HostedRoom;
  /** We take and send files: the hello says so, and file frames are emitted as 'file' (else ignored). */
  files?: boolean;
  /** How long to wait for the peer's hello. */
  handshakeMs?: number;
  /** At the end, how long to wait without progress for acks and for the peer's goodbye. */
  waitMs?: number;
  /** End the session after this long without traffic either way (0: never). Heartbeats are not traffic. */
  idleMs?: number;
  /** What --idle-timeout counts: traffic either way (a 1:1 session), or only what the peer says (a room's member). */
  idleCounts?: 'either' | 'peer';
  /**
   * The peer is lost once nothing has arrived from it for this long (default
   * 15 s; 0: never, and no heartbeats). Kept by heartbeats with a lanchat peer
   * that offers them, by TCP keepalive with any other.
   */
  aliveMs?: number;
  /**
   * Hands a peer's text to the output. Call `written` once it has been written
   * (the ack goes out then); return false to pause the socket until that moment.
   */
  deliver: (text: Incoming, written: () => void) => boolean;
  /**
   * Called with each chunk the socket emitted once nothing refers to its bytes
   * any more (its text is written), so that its buffer can take another read.
   */
  recycle?: (chunk: Buffer) => void;
}

export type EndReason =
  /** We finished sending, said goodbye, and the peer closed. */
  | 'finished'
  /** The peer finished first (goodbye, or a plain peer's end of stream), then we did. */
  | 'peer-left'
  /** We left at once (/quit, Ctrl-D, a signal). */
  | 'quit'
  | 'failed';

export interface SessionEnd {
  reason: EndReason;
  error?: LanchatError;
  /** Lines sent but never confirmed by the peer (always 0 with plain peers). */
  unconfirmed: number;
  /** The peer said goodbye (or a plain peer ended its stream). */
  peerLeft: boolean;
  /** The peer's goodbye said that it stopped before the end of its input (a signal, /quit mid-input). */
  peerCut?: true;
}

type State = 'handshake' | 'open' | 'closing' | 'closed';

/** A socket chunk whose bytes were handed on: recycled once nothing holds it (`holds` back to 0). */
interface ChunkHolds {
  holds: number;
  chunk: Buffer | null;
}

/** The file frames a side sends as one header line (a chunk has a body: see `sendChunk`). */
export type FileControlFrame = Exclude<FileFrame, { type: 'chunk' }>;

const DEFAULT_HANDSHAKE_MS = 10_000;
const DEFAULT_WAIT_MS = 10_000;
export const DEFAULT_ALIVE_MS = 15_000;
/** The feature a hello lists when its sender sends and takes heartbeats (ping frames). */
const PING = 'ping';
const PING_LINE = encodeControl({ type: 'ping' });
/** However short a peer says its limit is, we ping at most every third of this. */
const MIN_PEER_ALIVE_MS = 1000;
/**
 * Node's libuv sends TCP keepalive probes 1 s apart and gives up after 10
 * unanswered (measured with strace on Node 20: TCP_KEEPINTVL 1, TCP_KEEPCNT
 * 10): the first probe goes this much before the limit.
 */
const KEEPALIVE_PROBES_MS = 10_000;
/** After /quit, how long the goodbye may take to leave before the socket is dropped. */
const QUIT_FLUSH_MS = 1000;

export interface Session {
  on(event: 'open', listener: () => void): this;
  /** The peer changed its nick. */
  on(event: 'nick', listener: (from: string, to: string) => void): this;
  /** The socket can take more after `send` returned false. */
  on(event: 'drain', listener: () => void): this;
  /** The peer has finished sending: call `finish()` once our own input is done. */
  on(event: 'peer-done', listener: () => void): this;
  /** The session takes no more input: we finish or quit. */
  on(event: 'closing', listener: () => void): this;
  /** A member: what the room's host said besides text. A host: nothing (members cannot say these). */
  on(event: 'room', listener: (frame: RoomFrame) => void): this;
  /** A host: the member asks for this nick (see `renamePeer`). */
  on(event: 'nick-request', listener: (nick: string) => void): this;
  /** The peer confirmed more of our lines (`confirmedLines` went up). */
  on(event: 'confirmed', listener: () => void): this;
  /**
   * A file frame (only with the `files` option). A chunk's bytes are slices of
   * what the socket read: call `release` once done with them (for any other
   * frame it does nothing).
   */
  on(event: 'file', listener: (frame: FileFrame, release: () => void) => void): this;
}

/**
 * What both kinds of session share: the socket's wiring, the state from open
 * to closed, delivery with backpressure and chunk recycling, --idle-timeout,
 * the one pending deadline, and the way out (finish, quit, failure, the end).
 * What is said on the wire is the subclass's: `LanchatSession` (hellos,
 * frames, acks, heartbeats) or `PlainSession` (lines both ways, as netcat).
 * Build one with `openSession`, which picks by `options.plain`.
 */
export abstract class Session extends EventEmitter {
  readonly role: Role;
  readonly done: Promise<SessionEnd>;
  /** A plain-text peer (netcat): lines both ways, no hello, no acks. */
  abstract readonly plain: boolean;
  protected readonly socket: Duplex;
  protected readonly options: SessionOptions;
  /**
   * Where a long line that came in pieces is joined: lent buffers, given back
   * once written, when `recycle` says that nothing refers to written text
   * any more (not at a room's host, whose members' sockets may still hold it).
   */
  protected readonly joins: BufferPool | null;
  protected readonly waitMs: number;
  protected readonly aliveMs: number;
  /** Lines we sent so far. */
  protected linesSent = 0;
  #state: State;
  #nick: string;
  /** The one pending deadline: handshake, or the wait at the end. */
  #timer: NodeJS.Timeout | null = null;
  #idleTimer: NodeJS.Timeout | null = null;
  #resolve!: (end: SessionEnd) => void;
  #ending: 'finish' | 'quit' | null = null;
  #peerDone = false;
  /** The peer finished before we said goodbye: the end is 'peer-left', not 'finished'. */
  #peerFirst = false;
  #sentBye = false;
  /** Our goodbye will say that we stopped before the end of our input. */
  #cut = false;
  #paused = 0;
  #linesReceived = 0;
  #connectedAt: Date | null = null;
  /** The socket chunk being read, and how many of its slices are still held. */
  #reading: ChunkHolds | null = null;

  constructor(socket: Duplex, options: SessionOptions) {
    super();
    this.role = options.role;
    this.socket = socket;
    this.options = options;
    this.joins = options.recycle ? lineJoins : null;
    this.waitMs = options.waitMs ?? DEFAULT_WAIT_MS;
    this.#nick = options.nick;
    this.aliveMs = options.aliveMs ?? DEFAULT_ALIVE_MS;
    this.done = new Promise((resolve) => (this.#resolve = resolve));

    // A peer may have left while it waited to be served (--keep): its end was already read.
    if (socket.readableEnded) queueMicrotask(() => this.#onSocketEnd());
    socket.on('data', (chunk: Buffer) => this.#onSocketData(chunk));
    socket.on('end', () => this.#onSocketEnd());
    socket.on('error', (error: NodeJS.ErrnoException) => this.#onSocketError(error));
    socket.on('close', () => this.onSocketClose());
    socket.on('drain', () => {
      this.flushAck();
      this.emit('drain');
    });
    socket.resume(); // it may have been paused while the listener looked at its first bytes
    if (socket instanceof Socket) socket.setNoDelay(true);
    if (options.idleMs) {
      const seconds = options.idleMs / 1000;
      const what = options.idleCounts === 'peer' ? 'it said nothing' : 'no traffic';
      this.#idleTimer = setTimeout(
        () => this.fail(new LanchatError('ERR_IDLE', `${what} for ${seconds} s (--idle-timeout)`), true),
        options.idleMs,
      );
    }
    this.#state = 'handshake';
  }

  get nick(): string {
    return this.#nick;
  }

  /** The peer's nick, or `plainNick` for a plain peer; null before the handshake. */
  abstract get peerNick(): string | null;

  /** What the peer's hello offered (see PROTOCOL.md, features); none for a plain or an older peer. */
  get peerFeatures(): readonly string[] {
    return [];
  }

  get isOpen(): boolean {
    return this.#state === 'open';
  }

  /** The longest line both sides accept. */
  get sendLimit(): number {
    return this.options.maxLine;
  }

  get stats(): { linesSent: number; linesReceived: number; connectedAt: Date | null } {
    return { linesSent: this.linesSent, linesReceived: this.#linesReceived, connectedAt: this.#connectedAt };
  }

  /** Lines sent and not confirmed by the peer yet (always 0 with plain peers). */
  get unconfirmedLines(): number {
    return this.unconfirmed;
  }

  /**
   * Sends whole lines (each ending in LF, at most `sendLimit` bytes), given as
   * one buffer or as the pieces they arrived in. Returns false when the socket
   * is full: wait for 'drain' before sending more. `written` is called once the
   * socket no longer needs the buffers (they may then be reused).
   */
  send(kind: TextKind, text: Buffer | Buffer[], lines: number, written?: () => void, meta?: TextMeta): boolean {
    if (this.#state !== 'open') return false;
    if (this.options.idleCounts !== 'peer') this.#idleTimer?.refresh();
    return this.sendText(kind, Array.isArray(text) ? text : [text], lines, written, meta);
  }

  /** Lines the peer has confirmed so far (for plain peers: all sent). */
  get confirmedLines(): number {
    return this.linesSent - this.unconfirmed;
  }

  /** Bytes written to the socket and not taken by the kernel yet: what a slow reader leaves behind. */
  get pendingBytes(): number {
    return this.socket.writableLength;
  }

  /** A room's host: the member's nick is now `nick` (the room checked that it is free). */
  abstract renamePeer(nick: string): void;

  /** A room's host: tells the member about the room (a plain member has no word for it). */
  tellRoom(_frame: RoomFrame): void {}

  /**
   * Holds what is written back until `releaseWrites` (calls nest): a room's
   * host relays everything one turn of the event loop brings to a member in
   * one system call.
   */
  holdWrites(): void {
    this.socket.cork();
  }

  releaseWrites(): void {
    this.socket.uncork();
  }

  /**
   * Reads nothing more until `resumeReading` (calls nest, with the pauses of
   * our own backpressure too): a room's host ending a busy turn of the event loop.
   */
  pauseReading(): void {
    if (this.#paused++ === 0) this.socket.pause();
  }

  resumeReading(): void {
    if (--this.#paused === 0 && this.#state !== 'closed') {
      this.socket.resume();
      this.resumed();
    }
  }

  /** Ends the session at once, telling the peer why (when it can read it): a room's host dropping a member. */
  drop(error: LanchatError): void {
    this.fail(error, true);
  }

  /** Changes our nick; the peer is told. */
  setNick(nick: string): void {
    this.#nick = nick;
    if (this.#state === 'open') this.tellNick(nick);
  }

  /**
   * We have nothing more to send: wait until every line is confirmed, say
   * goodbye, and end once the peer has finished too. Every wait gives up after
   * `waitMs` without progress. `complete`: false when our input was not all sent
   * (the goodbye tells the peer so).
   */
  finish(complete = true): void {
    if (this.#state !== 'open') return;
    this.#cut = !complete;
    this.#ending = 'finish';
    this.#state = 'closing';
    this.emit('closing');
    this.startFinishing();
  }

  /**
   * Leaves: goodbye after whatever is already on its way. `graceMs`: first wait
   * that long at most for the acks of lines already sent (a person who types a
   * line and /quit at once). `complete`: as for finish().
   */
  quit({ complete = true, graceMs = 0 }: { complete?: boolean; graceMs?: number } = {}): void {
    if (this.#state === 'closed' || this.#ending === 'quit') return;
    this.#cut ||= !complete;
    this.#ending = 'quit';
    this.#state = 'closing';
    this.emit('closing');
    if (graceMs > 0 && this.unconfirmed > 0 && !this.#sentBye) {
      this.startTimer(graceMs, () => this.leave());
      return;
    }
    this.leave();
  }

  // What the kinds of session say differently.

  /** Sends whole lines, as `send` (the session is open). */
  protected abstract sendText(kind: TextKind, parts: Buffer[], lines: number, written?: () => void, meta?: TextMeta): boolean;
  /** Tells the peer our new nick, if it can hear it. */
  protected abstract tellNick(nick: string): void;
  /** Reads a chunk from the socket; true when it held traffic (more than heartbeats). Throws LanchatError. */
  protected abstract read(chunk: Buffer): boolean;
  /** `finish()` was called: go on to the goodbye, now or once our lines are confirmed. */
  protected abstract startFinishing(): void;
  /** The goodbye to write ('' for none). */
  protected abstract goodbye(): string;
  /** Our goodbye has gone and the peer has not finished yet: wait for it. */
  protected abstract awaitPeer(): void;

  /** Lines sent and not confirmed by the peer yet. */
  protected get unconfirmed(): number {
    return 0;
  }

  /** The peer's goodbye said that it stopped before the end of its input. */
  protected get peerCut(): boolean {
    return false;
  }

  /** Sends the newest ack not sent yet, if the protocol has any. */
  protected flushAck(): void {}

  /** The text delivered with `ackId` (> 0) is written: the peer may be told. */
  protected acknowledge(_ackId: number): void {}

  /** We wrote to the socket (a sign of life for the peer). */
  protected wrote(): void {}

  /** We read again after pausing the socket. */
  protected resumed(): void {}

  /** Stops watching the link (the session is over). */
  protected stopWatching(): void {}

  /** The line that tells the peer why we drop it ('' when it cannot read one). */
  protected errorLine(_error: LanchatError): string {
    return '';
  }

  /**
   * Keeps watch on the link once the session is open: a peer that cannot ping
   * (netcat, an older lanchat) gets TCP keepalive, timed to give up at about
   * the limit.
   */
  protected watchLink(): void {
    if (this.aliveMs === 0) return;
    const socket = this.socket as Duplex & { setKeepAlive?: (enable: boolean, delayMs: number) => unknown };
    socket.setKeepAlive?.(true, Math.max(1000, this.aliveMs - KEEPALIVE_PROBES_MS));
  }

  /** The socket ended (its reading half): a subclass may have text left to deliver. */
  protected onSocketEnd(): void {
    this.onSocketClose();
  }

  // What the subclasses use.

  protected get state(): State {
    return this.#state;
  }

  /** A room's host gave us another nick (the hello's `you`, or a rename). */
  protected set ownNick(nick: string) {
    this.#nick = nick;
  }

  protected get ending(): 'finish' | 'quit' | null {
    return this.#ending;
  }

  protected get sentBye(): boolean {
    return this.#sentBye;
  }

  /** Our goodbye says that we stopped before the end of our input. */
  protected get cut(): boolean {
    return this.#cut;
  }

  /** We chose not to read (our output is slow). */
  protected get readingPaused(): boolean {
    return this.#paused > 0;
  }

  /** Writes buffers as one batch (a single writev); `written` follows the last (writes complete in order). */
  protected writeAll(parts: Buffer[], written?: () => void): boolean {
    this.wrote();
    this.socket.cork();
    let ok = true;
    parts.forEach((part, i) => (ok = this.socket.write(part, i === parts.length - 1 ? written : undefined)));
    this.socket.uncork();
    return ok;
  }

  protected write(data: string): void {
    if (this.socket.writableEnded || this.socket.destroyed) return;
    this.wrote();
    this.socket.write(data);
  }

  protected startTimer(ms: number, onTimeout: () => void): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(onTimeout, ms);
  }

  /** Progress: the pending wait starts again. */
  protected refreshTimer(): void {
    this.#timer?.refresh();
  }

  #stopTimer(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
  }

  protected opened(): void {
    this.#stopTimer();
    this.#state = 'open';
    this.#connectedAt = new Date();
    this.watchLink();
    this.emit('open');
  }

  #onSocketData(chunk: Buffer): void {
    const reading: ChunkHolds = { holds: 0, chunk: null };
    this.#reading = reading;
    this.#takeChunk(chunk);
    this.#reading = null;
    if (reading.holds > 0) reading.chunk = chunk;
    else this.options.recycle?.(chunk);
  }

  /** Keeps the socket chunk being read from being recycled until the function returned is called (once). */
  protected holdChunk(): () => void {
    const reading = this.#reading;
    if (!reading) return () => {};
    reading.holds++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (--reading.holds > 0 || !reading.chunk) return;
      this.options.recycle?.(reading.chunk);
      reading.chunk = null;
    };
  }

  #takeChunk(chunk: Buffer): void {
    if (this.#state === 'closed') return;
    let traffic: boolean;
    try {
      traffic = this.read(chunk);
    } catch (error) {
      if (!(error instanceof LanchatError)) throw error;
      // The good lines before a bad one are still the peer's words.
      if (error instanceof BadLineError && error.before.lines > 0) this.deliver('msg', error.before.parts, error.before.lines, 0);
      return this.readFailed(error);
    }
    // Traffic, not heartbeats: what --idle-timeout counts, and progress while we wait for the peer to finish.
    if ((this.#state as State) === 'closed' || !traffic) return; // reading may have ended the session
    if (this.options.idleCounts !== 'peer') this.#idleTimer?.refresh();
    if (this.#sentBye && this.#ending === 'finish') this.#timer?.refresh();
  }

  /** What the peer sent could not be read: drop it, saying why. */
  protected readFailed(error: LanchatError): void {
    this.fail(error, true);
  }

  /** The peer said something (acks and pings are not that): what --idle-timeout counts in a room. */
  protected spoke(): void {
    if (this.options.idleCounts === 'peer') this.#idleTimer?.refresh();
  }

  /** Hands text to the output; once the last part is written, acks `ackId` (0: nothing to ack). */
  protected deliver(kind: TextKind, parts: Buffer[], lines: number, ackId: number, meta?: TextMeta): void {
    this.#linesReceived += lines;
    this.spoke();
    const release = this.holdChunk();
    let written = false;
    let paused = false;
    const onWritten = (): void => {
      written = true;
      if (ackId > 0 && this.#state !== 'closed') this.acknowledge(ackId);
      if (paused) this.resumeReading();
      release();
      if (this.joins) for (const body of parts) this.joins.give(body);
    };
    let more = true;
    // Writes complete in order, so the last part's callback speaks for all of them.
    parts.forEach((body, i) => {
      const last = i === parts.length - 1;
      const incoming: Incoming = meta
        ? { ...roomFields(meta), kind, nick: meta.from ?? this.peerNick!, body }
        : { kind, nick: this.peerNick!, body };
      if (last && ackId > 0) incoming.id = ackId;
      more = this.options.deliver(incoming, last ? onWritten : () => {}) && more;
    });
    if (parts.length === 0) onWritten();
    // Backpressure: read no more until this text is out (unless it already is).
    if (!more && !written) {
      paused = true;
      this.pauseReading();
    }
  }

  /** The goodbye (unless one went already) and the end of our half; the session ends once it has left. */
  protected leave(): void {
    const goodbye = this.#sentBye ? '' : this.goodbye();
    this.#sentBye = true;
    this.flushAck();
    if (this.socket.writableEnded || this.socket.destroyed) return this.end('quit');
    this.socket.end(goodbye, () => this.end('quit'));
    this.startTimer(QUIT_FLUSH_MS, () => this.end('quit'));
  }

  /** The peer has finished sending (its goodbye, or a plain peer's end of stream). */
  protected onPeerDone(): void {
    if (this.#peerDone) return;
    this.#peerDone = true;
    if (this.#sentBye) return this.end(this.#ending === 'quit' ? 'quit' : 'finished');
    this.#peerFirst = true;
    this.emit('peer-done');
  }

  /** Our goodbye, once our lines are confirmed (or the wait ran out). */
  protected sayBye(): void {
    if (this.#sentBye) return;
    this.#sentBye = true;
    this.flushAck();
    const goodbye = this.goodbye();
    if (goodbye) this.write(goodbye);
    if (this.#peerDone) return this.end('peer-left');
    this.awaitPeer();
  }

  /** The end as it stands when our wait ran out: 'peer-left' if the peer finished first. */
  protected endFinished(): void {
    this.end(this.#peerFirst ? 'peer-left' : 'finished');
  }

  #onSocketEnd(): void {
    if (this.#state === 'closed') return;
    this.onSocketEnd();
  }

  #onSocketError(error: NodeJS.ErrnoException): void {
    if (this.#state === 'closed') return;
    const reset = error.code === 'ECONNRESET' || error.code === 'EPIPE';
    if (reset && (this.#peerDone || this.#ending === 'quit')) return this.onSocketClose();
    // TCP keepalive (or the kernel's retransmissions) gave up on the peer.
    if (error.code === 'ETIMEDOUT')
      return this.fail(new LanchatError('ERR_PEER_LOST', `lost ${this.peerNick ?? 'the peer'}: no answer (the connection timed out)`));
    this.fail(reset ? this.#lost('the connection was reset') : new LanchatError('ERR_SOCKET', error.message));
  }

  protected onSocketClose(): void {
    if (this.#state === 'closed') return;
    if (this.#ending === 'quit') return this.end('quit');
    if (this.#peerDone) return this.endFinished();
    this.fail(this.#lost());
  }

  #lost(how = 'the connection closed'): LanchatError {
    const who = this.peerNick ?? 'the peer';
    const when = this.#state === 'handshake' ? 'before the handshake' : 'without saying goodbye';
    return new LanchatError('ERR_PEER_LOST', `${how}: ${who} left ${when}`);
  }

  protected fail(error: LanchatError, tellPeer = false): void {
    if (this.#state === 'closed') return;
    const line = tellPeer ? this.errorLine(error) : '';
    if (line) {
      this.#sentBye = true;
      if (!this.socket.writableEnded && !this.socket.destroyed) this.socket.end(line);
    }
    this.end('failed', error);
  }

  protected end(reason: EndReason, error?: LanchatError): void {
    if (this.#state === 'closed') return;
    this.flushAck();
    this.#state = 'closed';
    this.#stopTimer();
    this.stopWatching();
    if (this.#idleTimer) clearTimeout(this.#idleTimer);
    this.#idleTimer = null;
    const socket = this.socket;
    if (!socket.writableEnded) socket.end();
    // Give a goodbye or an error line a moment to leave before the socket goes,
    // and report the end only once it has left: the process may exit right
    // after, and over TLS the last bytes take a few turns of the event loop.
    const unconfirmed = this.unconfirmed;
    const peerCut = this.peerCut || undefined;
    void closeSoon(socket).then(() => this.#resolve({ reason, error, unconfirmed, peerLeft: this.#peerDone, peerCut }));
  }
}

/** A session with a lanchat peer: hellos, frames, acks, nick changes, goodbyes and heartbeats (PROTOCOL.md). */
export class LanchatSession extends Session {
  readonly plain = false;
  #peerNick: string | null = null;
  #peerMaxLine: number;
  #peerFeatures: readonly string[] = [];
  #peerAliveMs = DEFAULT_ALIVE_MS;
  /** Heartbeats (see #watchLink): a ping when we have sent nothing for a while; the peer lost when nothing arrives. */
  #pingTimer: NodeJS.Timeout | null = null;
  #lossTimer: NodeJS.Timeout | null = null;
  /** The chunk being decoded held more than heartbeats. */
  #heardTraffic = false;
  #decoder: FrameDecoder;
  #peerCut = false;
  /** The newest ack not sent yet (0: none), waiting for the socket to drain. */
  #ackPending = 0;
  // Confirmation bookkeeping: ids are sequential and acks cumulative, so a queue
  // of (id, lines sent up to and including it) is all we need.
  #nextId = 1;
  #unacked: Array<[id: number, linesThrough: number]> = [];
  #linesConfirmed = 0;
  /** Connector: whether the listener's first byte opened a JSON object (null: nothing yet). */
  #spokeJson: boolean | null = null;
  /** A member: the room's name, from the host's hello (null: a 1:1 session). */
  #room: string | null = null;

  constructor(socket: Duplex, options: SessionOptions) {
    super(socket, options);
    this.#peerMaxLine = options.maxLine;
    this.#decoder = new FrameDecoder(options.maxLine, this.joins);
    if (options.role === 'connect') {
      this.write(encodeControl(this.#hello()));
      this.startTimer(options.handshakeMs ?? DEFAULT_HANDSHAKE_MS, () =>
        this.fail(new LanchatError('ERR_HANDSHAKE', 'the peer did not answer as a lanchat listener (for netcat, use --raw)')),
      );
    } else {
      const ms = options.handshakeMs ?? DEFAULT_HANDSHAKE_MS;
      this.startTimer(ms, () => this.fail(new LanchatError('ERR_HANDSHAKE', `no hello within ${ms / 1000} s`)));
    }
  }

  get peerNick(): string | null {
    return this.#peerNick;
  }

  override get peerFeatures(): readonly string[] {
    return this.#peerFeatures;
  }

  override get sendLimit(): number {
    return Math.min(this.options.maxLine, this.#peerMaxLine);
  }

  /** A member: the name of the room we joined (null in a 1:1 session, and at a host). */
  get room(): string | null {
    return this.#room;
  }

  /** Changes our nick. A member only asks: the host says `renamed` if the nick is free. */
  override setNick(nick: string): void {
    if (this.#room === null) return super.setNick(nick);
    if (this.isOpen) this.tellNick(nick);
  }

  override renamePeer(nick: string): void {
    this.#peerNick = nick;
  }

  override tellRoom(frame: RoomFrame): void {
    if (this.isOpen) this.write(encodeControl(frame));
  }

  protected override get unconfirmed(): number {
    return this.linesSent - this.#linesConfirmed;
  }

  protected override get peerCut(): boolean {
    return this.#peerCut;
  }

  protected sendText(kind: TextKind, parts: Buffer[], lines: number, written?: () => void, meta?: TextMeta): boolean {
    const size = parts.reduce((sum, part) => sum + part.length, 0);
    const limit = bodyLimit(this.#peerMaxLine);
    if (size <= limit) return this.#sendFrame(kind, parts, size, lines, written, meta);
    // Only a batch bigger than the peer's body limit is cut, at line boundaries.
    let ok = true;
    for (let rest = Buffer.concat(parts); rest.length > 0;) {
      const cut = rest.length <= limit ? rest.length : rest.lastIndexOf(0x0a, limit - 1) + 1;
      const piece = rest.subarray(0, cut);
      rest = rest.subarray(cut);
      ok = this.#sendFrame(kind, [piece], cut, countLines(piece, Infinity), rest.length === 0 ? written : undefined, meta);
    }
    return ok;
  }

  #sendFrame(kind: TextKind, parts: Buffer[], size: number, lines: number, written?: () => void, meta?: TextMeta): boolean {
    const id = this.#nextId++;
    this.linesSent += lines;
    this.#unacked.push([id, this.linesSent]);
    return this.writeAll([Buffer.from(encodeTextHeader(kind, id, size, meta)), ...parts], written);
  }

  protected tellNick(nick: string): void {
    this.write(encodeControl({ type: 'nick', nick }));
  }

  /** The peer's hello said that it takes files (and we do). */
  get canSendFiles(): boolean {
    return this.options.files === true && this.#peerFeatures.includes(FILE_FEATURE);
  }

  /** Sends a file frame without a body (the session is open and the peer takes files). */
  sendFileFrame(frame: FileControlFrame): void {
    if (this.isOpen || this.state === 'closing') this.write(encodeControl(frame));
  }

  /**
   * Sends bytes of file `file`. Returns false when the socket is full: wait for
   * 'drain' (so that a line typed now waits behind one chunk at most). `written`
   * as for `send`.
   */
  sendChunk(file: number, data: Buffer, written?: () => void): boolean {
    if (this.state === 'closed') return false;
    return this.writeAll([Buffer.from(encodeChunkHeader(file, data.length)), data], written);
  }

  protected startFinishing(): void {
    this.startTimer(this.waitMs, () => {
      // The wait for confirmations ran out: the peer is stuck, so do not wait
      // for its goodbye as well.
      this.sayBye();
      this.endFinished();
    });
    if (this.unconfirmed === 0) this.sayBye();
  }

  /** Our goodbye frame (none before the handshake): `complete: false` only when we stopped before the end of our input. */
  protected goodbye(): string {
    if (this.#peerNick === null) return '';
    return encodeControl(this.cut ? { type: 'bye', complete: false } : { type: 'bye' });
  }

  protected awaitPeer(): void {
    // A lanchat peer may still send, and its lines need acks: keep our half
    // open until its goodbye.
    this.startTimer(this.waitMs, () => {
      // A lanchat peer that goes quiet without its goodbye may not have sent everything.
      const seconds = this.waitMs / 1000;
      this.fail(
        new LanchatError(
          'ERR_NO_GOODBYE',
          `${this.peerNick ?? 'the peer'} sent nothing for ${seconds} s and did not say goodbye: what it was still sending may be lost`,
        ),
      );
    });
  }

  #hello(): ControlFrame {
    const hello: ControlFrame = { type: 'hello', version: PROTOCOL_VERSION, nick: this.nick, maxLine: this.options.maxLine };
    const room = this.options.room;
    // A host names its room and the member's nick in it (and relays files, when it does); a connector says it can show who said what.
    if (room) {
      const offers = [...(this.aliveMs > 0 ? [PING] : []), ...(this.options.files ? [FILE_FEATURE] : [])];
      return {
        ...hello,
        ...(offers.length > 0 && { features: offers }),
        ...(this.aliveMs > 0 && { aliveMs: this.aliveMs }),
        room: room.name,
        you: this.#peerNick!,
      };
    }
    const features = [
      ...(this.aliveMs > 0 ? [PING] : []),
      ...(this.role === 'connect' ? [ROOM_FEATURE] : []),
      ...(this.options.files ? [FILE_FEATURE] : []),
    ];
    if (features.length === 0) return hello;
    return { ...hello, features, ...(this.aliveMs > 0 && { aliveMs: this.aliveMs }) };
  }

  /**
   * Keeps watch on the link once the session is open. With a lanchat peer
   * that offers heartbeats, each side pings whenever it has sent nothing for a
   * third of the peer's limit, and takes the peer for lost when nothing at all
   * has arrived for its own limit. Pings are never answered: a side that keeps
   * its socket paused (its output is slow) reads nothing, but it still pings,
   * and its own countdown stands still until it reads again. An older lanchat
   * gets TCP keepalive, as a plain peer does.
   */
  protected override watchLink(): void {
    if (this.aliveMs === 0) return;
    if (this.#peerFeatures.includes(PING)) {
      this.#pingTimer = setTimeout(() => this.#pingDue(), Math.max(this.#peerAliveMs, MIN_PEER_ALIVE_MS) / 3);
      this.#lossTimer = setTimeout(() => this.#lossDue(), this.aliveMs);
      return;
    }
    super.watchLink();
  }

  #pingDue(): void {
    // Bytes still queued reach the peer before a ping would: they are the sign of life.
    if (this.socket.writableLength === 0) this.write(PING_LINE);
    this.#pingTimer?.refresh();
  }

  #lossDue(): void {
    // We chose not to read (our output is slow): the countdown starts again when we resume.
    if (this.readingPaused) return;
    this.fail(new LanchatError('ERR_PEER_LOST', `lost ${this.peerNick}: no answer for ${this.aliveMs / 1000} s`));
    this.socket.destroy(); // nothing queued for it will arrive: do not wait for it to leave
  }

  protected override stopWatching(): void {
    if (this.#pingTimer) clearTimeout(this.#pingTimer);
    if (this.#lossTimer) clearTimeout(this.#lossTimer);
    this.#pingTimer = this.#lossTimer = null;
  }

  protected override wrote(): void {
    this.#pingTimer?.refresh();
  }

  protected override resumed(): void {
    this.#lossTimer?.refresh(); // the countdown stood still while we did not read
  }

  protected read(chunk: Buffer): boolean {
    this.#lossTimer?.refresh(); // any byte is a sign of life
    if (this.state === 'handshake' && this.#spokeJson === null && chunk.length > 0) this.#spokeJson = chunk[0] === 0x7b;
    this.#heardTraffic = false;
    this.#decoder.push(chunk, (frame) => this.#onFrame(frame));
    return this.#heardTraffic || this.#decoder.partial;
  }

  protected override readFailed(error: LanchatError): void {
    // A listener whose first byte is not "{" is no lanchat at all; one that
    // speaks JSON but breaks the rules (a bad nick, say) is told so.
    if (this.state === 'handshake' && this.role === 'connect' && error.code === 'ERR_BAD_FRAME' && !this.#spokeJson) {
      return this.fail(new LanchatError('ERR_NOT_LANCHAT', 'the peer is not a lanchat listener (for netcat, use --raw)'));
    }
    super.readFailed(error);
  }

  #onFrame(frame: Frame): void {
    if (this.state === 'closed') return;
    if (frame.type !== 'ping') this.#heardTraffic = true;
    if (this.state === 'handshake') {
      if (frame.type === 'error') return this.fail(new LanchatError('ERR_PEER_REFUSED', `the peer refused: ${frame.message}`));
      if (frame.type !== 'hello') throw protocolError('it did not start with a hello');
      this.#peerNick = frame.nick;
      this.#peerMaxLine = frame.maxLine;
      this.#peerFeatures = frame.features ?? [];
      if (frame.aliveMs !== undefined) this.#peerAliveMs = frame.aliveMs;
      if (this.role === 'listen') {
        const admitted = this.options.room?.admit(frame.nick, this.#peerFeatures);
        if (admitted instanceof LanchatError) return this.fail(admitted, true);
        if (admitted !== undefined) this.#peerNick = admitted;
        this.write(encodeControl(this.#hello()));
      } else if (frame.room !== undefined) {
        this.#room = frame.room;
        if (frame.you !== undefined) this.ownNick = frame.you;
      }
      return this.opened();
    }
    switch (frame.type) {
      case 'msg':
      case 'me':
        return this.deliver(frame.type, frame.parts, frame.lines, frame.last ? frame.id : 0, frame.meta);
      case 'ack':
        // In a room an ack is the host's, for one hop: a line is confirmed once it is delivered to the room.
        return this.#room === null ? this.#confirm(frame.id) : undefined;
      case 'delivered':
        return this.#room === null ? undefined : this.#confirm(frame.id);
      case 'nick': {
        if (this.options.room) return void this.emit('nick-request', frame.nick);
        const from = this.#peerNick!;
        this.#peerNick = frame.nick;
        this.emit('nick', from, frame.nick);
        return;
      }
      case 'here':
      case 'joined':
      case 'left':
      case 'undelivered':
      case 'notice':
        return void (this.#room !== null && this.emit('room', frame));
      case 'renamed':
        if (this.#room === null) return;
        if (frame.from === this.nick) this.ownNick = frame.nick;
        if (frame.from === this.#peerNick) this.#peerNick = frame.nick;
        return void this.emit('room', frame);
      case 'bye':
        this.#peerCut = frame.complete === false;
        return this.onPeerDone();
      case 'error':
        return this.fail(new LanchatError('ERR_PEER_ERROR', `the peer reported an error: ${frame.message}`));
      case 'ping':
        return; // a sign of life, already counted
      case 'offer':
      case 'accept':
      case 'decline':
      case 'start':
      case 'chunk':
      case 'got':
      case 'sent':
      case 'received':
      case 'cancel':
        // Files are in use only when we said so in our hello; a peer that sends them anyway is ignored.
        if (!this.options.files) return;
        this.spoke(); // a member sending or taking a file is not idle
        this.emit('file', frame, frame.type === 'chunk' ? this.holdChunk() : () => {});
        return;
      case 'hello':
        throw protocolError('it sent a second hello');
    }
  }

  /**
   * Acks are cumulative, so while the socket is full only the newest one is
   * kept (and sent on 'drain'): a peer that floods us and never reads cannot
   * make a backlog of acks grow.
   */
  protected override acknowledge(id: number): void {
    this.#ackPending = Math.max(this.#ackPending, id);
    if (!this.socket.writableNeedDrain) this.flushAck();
  }

  protected override flushAck(): void {
    if (this.#ackPending === 0) return;
    const id = this.#ackPending;
    this.#ackPending = 0;
    this.write(encodeControl({ type: 'ack', id }));
  }

  #confirm(id: number): void {
    const before = this.#linesConfirmed;
    while (this.#unacked.length > 0 && this.#unacked[0][0] <= id) {
      this.#linesConfirmed = this.#unacked.shift()![1];
    }
    if (this.#linesConfirmed === before) return;
    this.emit('confirmed');
    if (this.sentBye) return;
    // A quit waiting (briefly) for the acks of lines already sent leaves once they are in.
    if (this.ending === 'quit') return void (this.unconfirmed === 0 && this.leave());
    if (this.ending !== 'finish') return;
    if (this.unconfirmed === 0) this.sayBye();
    else this.refreshTimer(); // progress: the wait starts again
  }

  protected override onSocketEnd(): void {
    if (this.#decoder.partial) return this.fail(protocolError('it closed in the middle of a frame'));
    super.onSocketEnd();
  }

  protected override errorLine(error: LanchatError): string {
    return encodeControl({ type: 'error', message: error.message });
  }
}

/**
 * A session with a plain-text peer (netcat; `connect --raw`, or a listener's
 * peer that its door found to be plain): lines both ways, no hello, no acks,
 * no heartbeats (TCP keepalive instead). Its end of stream is its goodbye,
 * and our FIN is ours.
 */
export class PlainSession extends Session {
  readonly plain = true;
  #splitter: LineSplitter | null = null;
  #name: string;

  constructor(socket: Duplex, options: SessionOptions) {
    super(socket, options);
    this.#name = options.plainNick ?? 'peer';
    queueMicrotask(() => this.#open());
  }

  get peerNick(): string {
    return this.#name;
  }

  renamePeer(nick: string): void {
    this.#name = nick;
  }

  #open(): void {
    if (this.state !== 'handshake') return;
    this.#splitter = new LineSplitter(this.options.maxLine, this.options.raw === 'lines' ? 'raw' : 'bytes', this.joins);
    this.opened();
  }

  protected sendText(kind: TextKind, parts: Buffer[], lines: number, written?: () => void): boolean {
    this.linesSent += lines;
    if (kind === 'me') parts.unshift(Buffer.from(`* ${this.nick} `));
    return this.writeAll(parts, written);
  }

  protected tellNick(): void {} // a plain peer has no word for it

  protected startFinishing(): void {
    this.sayBye(); // nothing to confirm
  }

  protected goodbye(): string {
    return '';
  }

  protected awaitPeer(): void {
    // A plain peer learns we are done from our FIN, and need never close.
    this.socket.end();
    this.startTimer(this.waitMs, () => this.end('finished'));
  }

  protected read(chunk: Buffer): boolean {
    if (this.options.raw === 'bytes') {
      this.deliver('msg', [chunk], countLineFeeds(chunk), 0);
      return true;
    }
    const lines = this.#splitter!.push(chunk);
    if (lines) this.deliver('msg', lines.parts, lines.lines, 0);
    return true;
  }

  protected override onSocketEnd(): void {
    if (this.state === 'handshake') return super.onSocketEnd();
    try {
      const last = this.#splitter?.end();
      if (last) this.deliver('msg', [last], 1, 0);
    } catch (error) {
      return this.fail(error as LanchatError);
    }
    this.onPeerDone();
  }
}

/** The room fields of a text frame as the output sees them. */
function roomFields(meta: TextMeta): Pick<Incoming, 'to' | 'private' | 'earlier'> {
  return {
    ...(meta.to !== undefined && { to: meta.to }),
    ...(meta.private && { private: true }),
    ...(meta.earlier && { earlier: true }),
  };
}

/** A session of the kind the caller knows its peer to be (`options.plain`): the session never guesses. */
export function openSession(socket: Duplex, options: SessionOptions): Session {
  return options.plain ? new PlainSession(socket, options) : new LanchatSession(socket, options);
}

/**
 * Destroys an ended socket after QUIT_FLUSH_MS, giving its last line a moment
 * to leave; resolves once that line has left (or the socket is gone), for a
 * process that may exit right after.
 */
export function closeSoon(socket: Duplex): Promise<void> {
  setTimeout(() => socket.destroy(), QUIT_FLUSH_MS).unref();
  return new Promise((resolve) => {
    if (socket.writableFinished || socket.destroyed) return resolve();
    socket.once('finish', resolve).once('close', resolve);
  });
}
