// The lanchat wire protocol (docs/PROTOCOL.md), pure: bytes in, frames out, and
// back. No sockets or streams here, so every limit can be tested with plain buffers.
import { isUtf8 } from 'node:buffer';
import { BufferPool } from './buffers.js';
import { LanchatError, protocolError } from './errors.js';
import { countLineFeeds, linesWithin } from './linefeeds.js';

export const PROTOCOL_VERSION = 1;
/** Default longest line, in bytes of UTF-8, not counting its line feed. */
export const DEFAULT_MAX_LINE = 64 * 1024;
/** Longest header line, line feed included: headers never carry user text. */
export const MAX_HEADER_BYTES = 4096;
const MIN_BODY_LIMIT = 1024 * 1024;
const MAX_ERROR_TEXT = 512;
/** A hello lists at most this many features, each a short name. */
export const MAX_FEATURES = 32;
const FEATURE = /^[\x21-\x7e]{1,32}$/;
const LF = 0x0a;

export type TextKind = 'msg' | 'me';

/**
 * What a text frame says about itself in a room (PROTOCOL.md, Rooms): from a
 * host, who said it (`from`), that only you see it (`private`), that it was
 * said before you came (`earlier`); from a member, to whom alone (`to`).
 */
export interface TextMeta {
  from?: string;
  to?: string;
  private?: true;
  earlier?: true;
}

/** The feature a hello lists when its sender can join rooms (show who said what). */
export const ROOM_FEATURE = 'room';
/** The feature a hello lists when its sender takes and sends files (PROTOCOL.md, Files). */
export const FILE_FEATURE = 'file';

export type Frame =
  /**
   * `features`: what the sender offers beyond version 1 (absent: nothing).
   * `aliveMs`: with "ping", how long the sender waits in silence before it
   * takes the peer for lost.
   */
  | {
      type: 'hello';
      version: number;
      nick: string;
      maxLine: number;
      features?: string[];
      aliveMs?: number;
      /** From a room's host: the room's name, and the nick the member has in it. */
      room?: string;
      you?: string;
    }
  /**
   * Text, delivered as its lines arrive: a big body comes as several of these,
   * and only the one with `last` set completes the frame (and may be acked).
   */
  | { type: TextKind; id: number; parts: Buffer[]; lines: number; last: boolean; meta?: TextMeta }
  | { type: 'ack'; id: number }
  | { type: 'nick'; nick: string }
  /** `complete: false`: the sender stopped before the end of its input (absent means complete). */
  | { type: 'bye'; complete?: false }
  | { type: 'error'; message: string }
  /** A sign of life, sent when a side has sent nothing for a while; never answered. */
  | { type: 'ping' }
  | RoomFrame
  | FileFrame;

/**
 * A file's way (PROTOCOL.md, Files). `file` is the id its sender gave the
 * offer, so a frame names whose offer it is by its type: the sender sends
 * offer, start, chunk, sent and cancel; the receiver accept, decline, got and
 * received.
 */
export type FileFrame =
  /**
   * `bytes`: the file's size (`size` is the body's, and an offer has none).
   * In a room: from a member, `to` (the member it is for); from the host, `from` (who offers it).
   */
  | { type: 'offer'; file: number; name: string; bytes: number; key: string; from?: string; to?: string }
  /** Send from `offset`: the receiver holds that much already, whose SHA-256 is `prefix`. */
  | { type: 'accept'; file: number; offset: number; prefix?: string }
  /** The receiver will not take it (any time: refused, given up, the data did not match). */
  | { type: 'decline'; file: number; why: string }
  /** The data follows from `offset` (the accepted one, or 0 when the prefix did not match). */
  | { type: 'start'; file: number; offset: number }
  /** Bytes of the file, in order: delivered as they arrive, `last` on the frame's final piece. */
  | { type: 'chunk'; file: number; parts: Buffer[]; last: boolean }
  /** The receiver has written `bytes` of the file (from 0): the sender may have WINDOW more on the way. */
  | { type: 'got'; file: number; bytes: number }
  /** Every byte is sent; the whole file's SHA-256. */
  | { type: 'sent'; file: number; sha256: string }
  /** The receiver checked the hash and kept the file. */
  | { type: 'received'; file: number }
  /** The sender stops (its file changed, a read failed, the user cancelled). */
  | { type: 'cancel'; file: number; why: string };

/** What a room's host tells its members besides text (PROTOCOL.md, Rooms). */
export type RoomFrame =
  /** Who is in the room besides you, when you join (several frames for a big room). */
  | { type: 'here'; nicks: string[] }
  | { type: 'joined'; nick: string }
  | { type: 'left'; nick: string; why: string }
  | { type: 'renamed'; from: string; nick: string }
  /** Every text frame you sent up to `id` was written out by everyone present when it was relayed (or reported undelivered). */
  | { type: 'delivered'; id: number }
  /** Text frame `id` did not reach `nick`, for `why`. */
  | { type: 'undelivered'; id: number; nick: string; why: string }
  /** A command the host refused (a nick taken, nobody of that name). */
  | { type: 'notice'; message: string };

/** The frames without a body, which encode to a single JSON line. */
export type ControlFrame = Exclude<Frame, { type: TextKind } | { type: 'chunk' }>;

/** The types of frame that carry a body. */
const BODY_TYPES = new Set(['msg', 'me', 'chunk']);

/** Largest body a receiver with this line limit accepts in one frame. */
export function bodyLimit(maxLine: number): number {
  return Math.max(MIN_BODY_LIMIT, maxLine + 1);
}

const NICK = /^[^\p{C}\p{Z}]{1,32}$/u;
/** What a bad nick is told. */
export const NICK_RULE = 'a nick is 1 to 32 characters, with no spaces or control characters';

/** Nicks are 1–32 characters with no spaces and no control or format characters. */
export function isValidNick(nick: string): boolean {
  return NICK.test(nick);
}

/**
 * Counts the LF-terminated lines in `buf` (which must end in LF), or returns -1
 * when one of them is longer than `maxLine` bytes (see linefeeds.ts: this sits
 * on the data path of every batch).
 */
export function countLines(buf: Buffer, maxLine: number): number {
  if (buf.length === 0) return 0;
  if (buf[buf.length - 1] !== LF || !linesWithin(buf, maxLine)) return -1;
  return countLineFeeds(buf);
}

export function encodeControl(frame: ControlFrame): string {
  return JSON.stringify(frame) + '\n';
}

/** The header line of a chunk of file `file`; the body (`size` bytes of the file) follows it. */
export function encodeChunkHeader(file: number, size: number): string {
  return `{"type":"chunk","file":${file},"size":${size}}\n`;
}

/** The header line of a text frame; the body (`size` bytes of lines) follows it. */
export function encodeTextHeader(type: TextKind, id: number, size: number, meta?: TextMeta): string {
  if (!meta) return `{"type":"${type}","id":${id},"size":${size}}\n`;
  // A room relays every line to every member: only the nicks need JSON's quoting.
  let fields = '';
  if (meta.from !== undefined) fields += `,"from":${JSON.stringify(meta.from)}`;
  if (meta.to !== undefined) fields += `,"to":${JSON.stringify(meta.to)}`;
  if (meta.private) fields += ',"private":true';
  if (meta.earlier) fields += ',"earlier":true';
  return `{"type":"${type}","id":${id},"size":${size}${fields}}\n`;
}

function lineTooLong(maxLine: number): LanchatError {
  return new LanchatError('ERR_LINE_TOO_LONG', `a line is longer than ${maxLine} bytes`);
}

/** A bad line in the input, with the whole lines before it (which are fine to use). */
export class BadLineError extends LanchatError {
  readonly before: Lines;

  constructor(cause: LanchatError, before: Lines) {
    super(cause.code, cause.message, cause.exitCode);
    this.before = before;
  }
}

/**
 * Checks that `body` is whole lines of UTF-8 text within the line limit and
 * returns how many lines it holds. Everything a peer says passes through here.
 */
export function checkLines(body: Buffer, maxLine: number): number {
  if (body.length > 0 && body[body.length - 1] !== LF) throw protocolError('a message does not end in a line feed');
  const lines = countLines(body, maxLine);
  if (lines < 0) throw lineTooLong(maxLine);
  if (!isUtf8(body)) throw new LanchatError('ERR_NOT_UTF8', 'text is not valid UTF-8');
  return lines;
}

/** Whole lines, as the pieces of buffers they arrived in (joined, they are the text). */
export interface Lines {
  parts: Buffer[];
  lines: number;
}

const NO_LINES: Lines = { parts: [], lines: 0 };

/**
 * What a LineSplitter lets through. 'text': lines of UTF-8 within the limit
 * (stdin, message bodies). 'bytes': lines of any bytes within the limit (a
 * plain peer at a listener). 'raw': anything (`connect --raw`, as netcat): a
 * line still unfinished after `maxLine` bytes is handed on as it is, and so is
 * an unfinished end, with nothing added.
 */
export type SplitMode = 'text' | 'bytes' | 'raw';

/**
 * Buffers to join a received line that arrived in pieces into (a long one
 * nearly always does), given back once the line is written out (a part that
 * is not one of them is ignored). Joined into fresh buffers, 60 KiB lines over
 * TLS kept about 10 MiB more of dead buffers waiting for V8 to collect them.
 */
export const lineJoins = new BufferPool(DEFAULT_MAX_LINE + 1, 16);
/** Shorter joins come from the slabs of Node's own buffer pool. */
const POOLED_JOIN_BYTES = 4096;

/**
 * Cuts a byte stream into runs of whole lines: stdin in a pipe, the text of
 * plain (netcat) peers, and message bodies as they arrive. Only a line that
 * straddles two chunks is copied; everything else is handed on as slices of the
 * chunks themselves. A line still unfinished after `maxLine` bytes is an error
 * (in 'raw' mode it is handed on), so memory stays bounded whatever arrives.
 */
export class LineSplitter {
  /** Settable: a session's limit depends on the peer's. */
  maxLine: number;
  readonly mode: SplitMode;
  readonly #joins: BufferPool | null;
  #tail: Buffer[] = [];
  #tailBytes = 0;

  /** `joins`: lend a long line that came in pieces from this pool (see lineJoins). */
  constructor(maxLine: number, mode: SplitMode = 'text', joins: BufferPool | null = null) {
    this.maxLine = maxLine;
    this.mode = mode;
    this.#joins = joins;
  }

  /** True while part of a line is held back, waiting for its end. */
  get holding(): boolean {
    return this.#tailBytes > 0;
  }

  /**
   * The whole lines completed by `chunk` (null if none) and how many there are.
   * Throws BadLineError, carrying the good lines before the bad one.
   */
  push(chunk: Buffer): Lines | null {
    const last = chunk.lastIndexOf(LF);
    if (last < 0) return this.#keep(chunk, NO_LINES);
    const parts: Buffer[] = [];
    let start = 0;
    if (this.#tailBytes > 0) {
      start = chunk.indexOf(LF) + 1;
      parts.push(this.#join([...this.#tail, chunk.subarray(0, start)], this.#tailBytes + start));
      this.#tail = [];
      this.#tailBytes = 0;
    }
    if (start <= last) parts.push(chunk.subarray(start, last + 1));
    let lines = 0;
    for (let i = 0; i < parts.length; i++) {
      try {
        lines += this.#check(parts[i]);
      } catch (error) {
        const good = this.#goodPrefix(parts[i]);
        throw new BadLineError(error as LanchatError, {
          parts: [...parts.slice(0, i), ...good.parts],
          lines: lines + good.lines,
        });
      }
    }
    const result = { parts, lines };
    return last + 1 < chunk.length ? this.#keep(chunk.subarray(last + 1), result) : result;
  }

  /** At end of input: the unfinished last line, with a line feed added (in 'raw' mode as it is), or null. */
  end(): Buffer | null {
    if (this.#tailBytes === 0) return null;
    const raw = this.mode === 'raw';
    const body = Buffer.concat(raw ? this.#tail : [...this.#tail, Buffer.from('\n')]);
    this.reset();
    if (raw) return body;
    try {
      this.#check(body);
    } catch (error) {
      throw new BadLineError(error as LanchatError, NO_LINES);
    }
    return body;
  }

  #join(pieces: Buffer[], size: number): Buffer {
    const joins = this.#joins;
    if (!joins || size < POOLED_JOIN_BYTES || size > joins.size) return Buffer.concat(pieces, size);
    const line = joins.take().subarray(0, size);
    let at = 0;
    for (const piece of pieces) at += piece.copy(line, at);
    return line;
  }

  /** Forgets a held-back partial line. */
  reset(): void {
    this.#tail = [];
    this.#tailBytes = 0;
  }

  /** The lines of `body` before its first bad one (the slow path, taken once). */
  #goodPrefix(body: Buffer): Lines {
    let end = 0;
    let lines = 0;
    for (let next = body.indexOf(LF); next >= 0; next = body.indexOf(LF, end)) {
      if (next - end > this.maxLine || (this.mode === 'text' && !isUtf8(body.subarray(end, next + 1)))) break;
      end = next + 1;
      lines++;
    }
    return { parts: end > 0 ? [body.subarray(0, end)] : [], lines };
  }

  /** The lines in `body` (whole lines), checked as the mode says. */
  #check(body: Buffer): number {
    if (this.mode === 'text') return checkLines(body, this.maxLine);
    const lines = countLines(body, this.mode === 'raw' ? Infinity : this.maxLine);
    if (lines < 0) throw lineTooLong(this.maxLine);
    return lines;
  }

  /** Holds back an unfinished line; returns the lines `before` it (null: none). */
  #keep(part: Buffer, before: Lines): Lines | null {
    this.#tailBytes += part.length;
    if (this.#tailBytes > this.maxLine) {
      if (this.mode !== 'raw') throw new BadLineError(lineTooLong(this.maxLine), before);
      // Nothing is refused: what is held so far goes on as it is (a piece of a longer line).
      const piece = this.#tail.length === 0 ? part : Buffer.concat([...this.#tail, part]);
      this.reset();
      return { parts: [...before.parts, piece], lines: before.lines };
    }
    // A copy: the chunk it came from may be reused for the next read once its lines are sent.
    this.#tail.push(Buffer.from(part));
    return before.parts.length > 0 ? before : null;
  }
}

function isId(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) > 0;
}

/** A count of bytes: an integer from 0 up. */
function byteCount(value: unknown, what: string): number {
  if (!Number.isSafeInteger(value) || (value as number) < 0) throw protocolError(`${what} is invalid`);
  return value as number;
}

const HASH = /^[0-9a-f]{64}$/;
const FILE_KEY = /^[0-9a-f]{16,64}$/;
/** Longest file name an offer may carry (the receiver keeps a safe version of it). */
const MAX_FILE_NAME = 1024;

function hashField(value: unknown, what: string): string {
  if (typeof value !== 'string' || !HASH.test(value)) throw protocolError(`${what} is not a SHA-256 in hex`);
  return value;
}

/** The file frames' fields, checked; null for a type that is not one. */
function fileFrame(fields: Record<string, unknown>): FileFrame | null {
  const type = fields.type;
  if (
    type !== 'offer' &&
    type !== 'accept' &&
    type !== 'decline' &&
    type !== 'start' &&
    type !== 'chunk' &&
    type !== 'got' &&
    type !== 'sent' &&
    type !== 'received' &&
    type !== 'cancel'
  )
    return null;
  if (!isId(fields.file)) throw protocolError(`${type === 'offer' || type === 'accept' ? 'an' : 'a'} ${type} frame has no valid file id`);
  const file = fields.file;
  switch (type) {
    case 'offer': {
      const { name, key } = fields;
      if (typeof name !== 'string' || name.length === 0 || name.length > MAX_FILE_NAME) throw protocolError('an offer has no valid name');
      if (typeof key !== 'string' || !FILE_KEY.test(key)) throw protocolError('an offer has no valid key');
      return {
        type,
        file,
        name,
        bytes: byteCount(fields.bytes, "an offer's bytes"),
        key,
        ...(fields.from !== undefined && { from: nickField(fields.from) }),
        ...(fields.to !== undefined && { to: nickField(fields.to) }),
      };
    }
    case 'accept': {
      const offset = byteCount(fields.offset, "an accept's offset");
      if (offset === 0) return { type, file, offset };
      return { type, file, offset, prefix: hashField(fields.prefix, "an accept's prefix") };
    }
    case 'start':
      return { type, file, offset: byteCount(fields.offset, "a start's offset") };
    case 'chunk':
      return { type, file, parts: [], last: false };
    case 'got':
      return { type, file, bytes: byteCount(fields.bytes, "a got's bytes") };
    case 'sent':
      return { type, file, sha256: hashField(fields.sha256, "a sent frame's sha256") };
    case 'received':
      return { type, file };
    case 'decline':
    case 'cancel':
      return { type, file, why: textField(fields.why, `a ${type} frame`) };
  }
}

function nickField(value: unknown): string {
  if (typeof value !== 'string' || !isValidNick(value)) throw protocolError('its nick is invalid');
  return value;
}

/** A short reason or notice from the peer (cut to MAX_ERROR_TEXT). */
function textField(value: unknown, what: string): string {
  if (typeof value !== 'string') throw protocolError(`${what} has no text`);
  return value.slice(0, MAX_ERROR_TEXT);
}

/** The room fields of a text frame, each checked when present. */
function textMeta(fields: Record<string, unknown>): TextMeta | undefined {
  if (fields.from === undefined && fields.to === undefined && fields.private === undefined && fields.earlier === undefined)
    return undefined;
  return {
    ...(fields.from !== undefined && { from: nickField(fields.from) }),
    ...(fields.to !== undefined && { to: nickField(fields.to) }),
    ...(fields.private === true && { private: true }),
    ...(fields.earlier === true && { earlier: true }),
  };
}

/** A hello's optional `features`: up to MAX_FEATURES names of printable ASCII (kept as sent: the session ignores those it does not know). */
function featuresField(value: unknown): string[] {
  if (!Array.isArray(value) || value.length > MAX_FEATURES || !value.every((name) => typeof name === 'string' && FEATURE.test(name))) {
    throw protocolError('the hello has invalid features');
  }
  return value as string[];
}

/** Parses one header line; returns the frame and the size of the body after it. */
function parseHeader(line: Buffer, maxLine: number): { frame: Frame | null; size: number } {
  if (!isUtf8(line)) throw protocolError('a frame is not valid UTF-8');
  let value: unknown;
  try {
    value = JSON.parse(line.toString('utf8'));
  } catch {
    throw protocolError('a frame is not valid JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw protocolError('a frame is not a JSON object');
  const fields = value as Record<string, unknown>;
  const size = fields.size ?? 0;
  if (!Number.isSafeInteger(size) || (size as number) < 0 || (size as number) > bodyLimit(maxLine)) {
    throw protocolError('a frame has an invalid size');
  }
  const file = fileFrame(fields);
  if (file) return { frame: file, size: size as number };
  const frame = ((): Frame | null => {
    switch (fields.type) {
      case 'hello':
        if (!isId(fields.version)) throw protocolError('the hello has no valid version');
        if (!isId(fields.maxLine)) throw protocolError('the hello has no valid maxLine');
        if (fields.aliveMs !== undefined && !isId(fields.aliveMs)) throw protocolError('the hello has an invalid aliveMs');
        return {
          type: 'hello',
          version: fields.version,
          nick: nickField(fields.nick),
          maxLine: fields.maxLine,
          ...(fields.features !== undefined && { features: featuresField(fields.features) }),
          ...(fields.aliveMs !== undefined && { aliveMs: fields.aliveMs }),
          ...(fields.room !== undefined && { room: nickField(fields.room) }),
          ...(fields.you !== undefined && { you: nickField(fields.you) }),
        };
      case 'msg':
      case 'me': {
        if (!isId(fields.id)) throw protocolError('a message has no valid id');
        const meta = textMeta(fields);
        return { type: fields.type, id: fields.id, parts: [], lines: 0, last: false, ...(meta && { meta }) };
      }
      case 'ack':
        if (!isId(fields.id)) throw protocolError('an ack has no valid id');
        return { type: 'ack', id: fields.id };
      case 'nick':
        return { type: 'nick', nick: nickField(fields.nick) };
      case 'bye':
        return fields.complete === false ? { type: 'bye', complete: false } : { type: 'bye' };
      case 'error':
        if (typeof fields.message !== 'string') throw protocolError('an error frame has no message');
        return { type: 'error', message: fields.message.slice(0, MAX_ERROR_TEXT) };
      case 'ping':
        return { type: 'ping' };
      case 'here':
        if (!Array.isArray(fields.nicks) || fields.nicks.length === 0) throw protocolError('a here frame has no nicks');
        return { type: 'here', nicks: fields.nicks.map(nickField) };
      case 'joined':
        return { type: 'joined', nick: nickField(fields.nick) };
      case 'left':
        return { type: 'left', nick: nickField(fields.nick), why: textField(fields.why, 'a left frame') };
      case 'renamed':
        return { type: 'renamed', from: nickField(fields.from), nick: nickField(fields.nick) };
      case 'delivered':
        if (!isId(fields.id)) throw protocolError('a delivered frame has no valid id');
        return { type: 'delivered', id: fields.id };
      case 'undelivered':
        if (!isId(fields.id)) throw protocolError('an undelivered frame has no valid id');
        return { type: 'undelivered', id: fields.id, nick: nickField(fields.nick), why: textField(fields.why, 'an undelivered frame') };
      case 'notice':
        return { type: 'notice', message: textField(fields.message, 'a notice') };
      default:
        if (typeof fields.type !== 'string') throw protocolError('a frame has no type');
        return null; // a newer peer's frame: skip it and its body
    }
  })();
  return { frame, size: size as number };
}

/**
 * Turns the bytes of a lanchat peer into frames. Headers are bounded by
 * MAX_HEADER_BYTES; a message body is cut into lines as it arrives and handed
 * on at once (never copied whole), so a hostile peer can make the decoder hold
 * at most one header, or one line, or one action.
 */
export class FrameDecoder {
  readonly maxLine: number;
  #rest: Buffer | null = null; // an unfinished header
  #frame: Frame | null = null; // the frame whose body is arriving (null: skip it)
  #need = 0;
  #body: LineSplitter;
  #action: Buffer[] = [];

  /** `joins`: see LineSplitter. */
  constructor(maxLine: number, joins: BufferPool | null = null) {
    this.maxLine = maxLine;
    this.#body = new LineSplitter(maxLine, 'text', joins);
  }

  /** True while the decoder is in the middle of a frame. */
  get partial(): boolean {
    return this.#rest !== null || this.#need > 0;
  }

  /** Decodes what `chunk` completes; calls `onFrame` for each frame. Throws on a bad one. */
  push(chunk: Buffer, onFrame: (frame: Frame) => void): void {
    let pos = 0;
    while (pos < chunk.length) {
      if (this.#need > 0) {
        pos = this.#takeBody(chunk, pos, onFrame);
        continue;
      }
      const end = chunk.indexOf(LF, pos);
      const held = this.#rest?.length ?? 0;
      if (end < 0) {
        if (held + chunk.length - pos >= MAX_HEADER_BYTES) throw protocolError('a frame header is too long');
        this.#rest = Buffer.concat([this.#rest ?? Buffer.alloc(0), chunk.subarray(pos)]);
        return;
      }
      if (held + end - pos >= MAX_HEADER_BYTES) throw protocolError('a frame header is too long');
      const header = this.#rest ? Buffer.concat([this.#rest, chunk.subarray(pos, end)]) : chunk.subarray(pos, end);
      this.#rest = null;
      pos = end + 1;
      const { frame, size } = parseHeader(header, this.maxLine);
      if (size === 0 && (frame?.type === 'msg' || frame?.type === 'me')) throw protocolError('a message has no text');
      if (size === 0 && frame?.type === 'chunk') throw protocolError('a chunk has no data');
      // Only text and chunks have bodies: a known control frame with one is broken, not a newer frame to skip.
      if (size > 0 && frame && !BODY_TYPES.has(frame.type))
        throw protocolError(`${/^[aeiou]/.test(frame.type) ? 'an' : 'a'} ${frame.type} frame carries a body`);
      this.#frame = frame;
      this.#need = size;
      if (size === 0 && frame) onFrame(frame);
    }
  }

  /** Takes what `chunk` holds of the current body; returns where the body part ends. */
  #takeBody(chunk: Buffer, pos: number, onFrame: (frame: Frame) => void): number {
    const take = Math.min(this.#need, chunk.length - pos);
    const piece = chunk.subarray(pos, pos + take);
    this.#need -= take;
    const last = this.#need === 0;
    const frame = this.#frame;
    if (frame?.type === 'chunk') {
      // A file's bytes are handed on as they are: no lines, no copy.
      onFrame({ ...frame, parts: [piece], last });
    } else if (frame?.type === 'msg') {
      const lines = this.#body.push(piece);
      if (last && this.#body.holding) throw protocolError('a message does not end in a line feed');
      if (lines || last) onFrame({ ...frame, parts: lines?.parts ?? [], lines: lines?.lines ?? 0, last });
    } else if (frame?.type === 'me') {
      // An action is one short line: kept whole (a copy: the chunk's buffer may be reused), checked, handed on.
      this.#action.push(Buffer.from(piece));
      if (last) {
        const body = Buffer.concat(this.#action);
        this.#action = [];
        if (checkLines(body, this.maxLine) !== 1) throw protocolError('an action must be one line');
        onFrame({ ...frame, parts: [body], lines: 1, last: true });
      }
    }
    return pos + take;
  }
}

/** Is this line (without its newline) a lanchat hello? How a listener tells lanchat from netcat. */
export function isHelloLine(line: Buffer): boolean {
  if (line[0] !== 0x7b) return false; // '{'
  try {
    const value: unknown = JSON.parse(line.toString('utf8'));
    return typeof value === 'object' && value !== null && (value as { type?: unknown }).type === 'hello';
  } catch {
    return false;
  }
}
