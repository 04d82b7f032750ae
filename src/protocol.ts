// The lanchat wire protocol (docs/PROTOCOL.md), pure: bytes in, frames out, and
// back. No sockets or streams here, so every limit can be tested with plain buffers.
import { isUtf8 } from 'node:buffer';
import { LanchatError, protocolError } from './errors.js';

export const PROTOCOL_VERSION = 1;
/** Default longest line, in bytes of UTF-8, not counting its line feed. */
export const DEFAULT_MAX_LINE = 64 * 1024;
/** Longest header line, line feed included: headers never carry user text. */
export const MAX_HEADER_BYTES = 4096;
const MIN_BODY_LIMIT = 1024 * 1024;
const MAX_ERROR_TEXT = 512;
const LF = 0x0a;

export type TextKind = 'msg' | 'me';

export type Frame =
  | { type: 'hello'; version: number; nick: string; maxLine: number }
  | { type: TextKind; id: number; body: Buffer; lines: number }
  | { type: 'ack'; id: number }
  | { type: 'nick'; nick: string }
  | { type: 'bye' }
  | { type: 'error'; message: string };

/** The frames without a body, which encode to a single JSON line. */
export type ControlFrame = Exclude<Frame, { type: TextKind }>;

/** Largest body a receiver with this line limit accepts in one frame. */
export function bodyLimit(maxLine: number): number {
  return Math.max(MIN_BODY_LIMIT, maxLine + 1);
}

const NICK = /^[^\p{C}\p{Z}]{1,32}$/u;

/** Nicks are 1–32 characters with no spaces and no control or format characters. */
export function isValidNick(nick: string): boolean {
  return NICK.test(nick);
}

/**
 * Counts the LF-terminated lines in `buf` (which must end in LF), or returns -1
 * when one of them is longer than `maxLine` bytes. indexOf is memchr: this runs
 * at several GB/s, so it can sit on the data path of every batch.
 */
export function countLines(buf: Buffer, maxLine: number): number {
  let lines = 0;
  let start = 0;
  while (start < buf.length) {
    const end = buf.indexOf(LF, start);
    if (end < 0 || end - start > maxLine) return -1;
    lines++;
    start = end + 1;
  }
  return lines;
}

export function encodeControl(frame: ControlFrame): string {
  return JSON.stringify(frame) + '\n';
}

/** The header line of a text frame; the body (`size` bytes of lines) follows it. */
export function encodeTextHeader(type: TextKind, id: number, size: number): string {
  return `{"type":"${type}","id":${id},"size":${size}}\n`;
}

function lineTooLong(maxLine: number): LanchatError {
  return new LanchatError('ERR_LINE_TOO_LONG', `a line is longer than ${maxLine} bytes`);
}

/** A bad line in the input, with the whole lines before it (which are fine to use). */
export class BadLineError extends LanchatError {
  readonly before: { body: Buffer; lines: number };

  constructor(cause: LanchatError, before: { body: Buffer; lines: number }) {
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

const NO_LINES = { body: Buffer.alloc(0), lines: 0 };

/**
 * Cuts a byte stream into runs of whole lines: stdin in a pipe, and the text of
 * plain (netcat) peers. A line still unfinished after `maxLine` bytes is an error,
 * so memory stays bounded whatever arrives.
 */
export class LineSplitter {
  /** Settable: a session's limit depends on the peer's. */
  maxLine: number;
  #tail: Buffer[] = [];
  #tailBytes = 0;

  constructor(maxLine: number) {
    this.maxLine = maxLine;
  }

  /**
   * The whole lines completed by `chunk` (null if none) and how many there are.
   * Throws BadLineError, carrying the good lines before the bad one.
   */
  push(chunk: Buffer): { body: Buffer; lines: number } | null {
    const last = chunk.lastIndexOf(LF);
    if (last < 0) {
      this.#keep(chunk, NO_LINES);
      return null;
    }
    let body = chunk.subarray(0, last + 1);
    if (this.#tailBytes > 0) {
      body = Buffer.concat([...this.#tail, body]);
      this.#tail = [];
      this.#tailBytes = 0;
    }
    let result;
    try {
      result = { body, lines: checkLines(body, this.maxLine) };
    } catch (error) {
      throw new BadLineError(error as LanchatError, this.#goodPrefix(body));
    }
    if (last + 1 < chunk.length) this.#keep(chunk.subarray(last + 1), result);
    return result;
  }

  /** At end of input: the unfinished last line, with a line feed added, or null. */
  end(): Buffer | null {
    if (this.#tailBytes === 0) return null;
    const body = Buffer.concat([...this.#tail, Buffer.from('\n')]);
    this.#tail = [];
    this.#tailBytes = 0;
    try {
      checkLines(body, this.maxLine);
    } catch (error) {
      throw new BadLineError(error as LanchatError, NO_LINES);
    }
    return body;
  }

  /** The lines of `body` before its first bad one (the slow path, taken once). */
  #goodPrefix(body: Buffer): { body: Buffer; lines: number } {
    let end = 0;
    let lines = 0;
    for (let next = body.indexOf(LF); next >= 0; next = body.indexOf(LF, end)) {
      if (next - end > this.maxLine || !isUtf8(body.subarray(end, next + 1))) break;
      end = next + 1;
      lines++;
    }
    return { body: body.subarray(0, end), lines };
  }

  #keep(part: Buffer, before: { body: Buffer; lines: number }): void {
    this.#tailBytes += part.length;
    if (this.#tailBytes > this.maxLine) throw new BadLineError(lineTooLong(this.maxLine), before);
    this.#tail.push(part);
  }
}

function isId(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) > 0;
}

function nickField(value: unknown): string {
  if (typeof value !== 'string' || !isValidNick(value)) throw protocolError('its nick is invalid');
  return value;
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
  const frame = ((): Frame | null => {
    switch (fields.type) {
      case 'hello':
        if (!isId(fields.version)) throw protocolError('the hello has no valid version');
        if (!isId(fields.maxLine)) throw protocolError('the hello has no valid maxLine');
        return { type: 'hello', version: fields.version, nick: nickField(fields.nick), maxLine: fields.maxLine };
      case 'msg':
      case 'me':
        if (!isId(fields.id)) throw protocolError('a message has no valid id');
        return { type: fields.type, id: fields.id, body: Buffer.alloc(0), lines: 0 };
      case 'ack':
        if (!isId(fields.id)) throw protocolError('an ack has no valid id');
        return { type: 'ack', id: fields.id };
      case 'nick':
        return { type: 'nick', nick: nickField(fields.nick) };
      case 'bye':
        return { type: 'bye' };
      case 'error':
        if (typeof fields.message !== 'string') throw protocolError('an error frame has no message');
        return { type: 'error', message: fields.message.slice(0, MAX_ERROR_TEXT) };
      default:
        if (typeof fields.type !== 'string') throw protocolError('a frame has no type');
        return null; // a newer peer's frame: skip it and its body
    }
  })();
  return { frame, size: size as number };
}

/**
 * Turns the bytes of a lanchat peer into frames. Headers are bounded by
 * MAX_HEADER_BYTES and bodies by the line limit, so a hostile peer can make
 * the decoder hold at most one body's worth of memory.
 */
export class FrameDecoder {
  readonly maxLine: number;
  #rest: Buffer = Buffer.alloc(0);
  #frame: Frame | null = null; // waiting for its body
  #need = 0;
  #parts: Buffer[] = [];

  constructor(maxLine: number) {
    this.maxLine = maxLine;
  }

  /** True while the decoder is in the middle of a frame. */
  get partial(): boolean {
    return this.#rest.length > 0 || this.#need > 0;
  }

  /** Decodes what `chunk` completes; calls `onFrame` for each frame. Throws on a bad one. */
  push(chunk: Buffer, onFrame: (frame: Frame) => void): void {
    const buf = this.#rest.length > 0 ? Buffer.concat([this.#rest, chunk]) : chunk;
    this.#rest = Buffer.alloc(0);
    let pos = 0;
    while (pos < buf.length) {
      if (this.#need > 0) {
        const take = Math.min(this.#need, buf.length - pos);
        this.#parts.push(buf.subarray(pos, pos + take));
        pos += take;
        this.#need -= take;
        if (this.#need === 0) this.#finishBody(onFrame);
        continue;
      }
      const end = buf.indexOf(LF, pos);
      if (end < 0 || end - pos >= MAX_HEADER_BYTES) {
        if (end >= 0 || buf.length - pos >= MAX_HEADER_BYTES) throw protocolError('a frame header is too long');
        this.#rest = Buffer.from(buf.subarray(pos));
        return;
      }
      const { frame, size } = parseHeader(buf.subarray(pos, end), this.maxLine);
      pos = end + 1;
      this.#frame = frame;
      this.#need = size;
      if (size === 0) this.#finishBody(onFrame);
    }
  }

  #finishBody(onFrame: (frame: Frame) => void): void {
    const frame = this.#frame;
    const body = this.#parts.length === 1 ? this.#parts[0]! : Buffer.concat(this.#parts);
    this.#frame = null;
    this.#parts = [];
    if (frame === null) return;
    if (frame.type === 'msg' || frame.type === 'me') {
      if (body.length === 0) throw protocolError('a message has no text');
      frame.body = body;
      frame.lines = checkLines(body, this.maxLine);
      if (frame.type === 'me' && frame.lines !== 1) throw protocolError('an action must be one line');
    }
    onFrame(frame);
  }
}
