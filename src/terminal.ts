// How events look on the way out: one renderer per --format, and the function
// that makes peer-controlled text inert before it reaches a terminal.
import { isUtf8 } from 'node:buffer';

export type Format = 'pretty' | 'plain' | 'json';
export const FORMATS: readonly Format[] = ['pretty', 'plain', 'json'];

// C0/C1 controls and DEL (but tab), bidi controls, other format characters (but
// ZWJ and the emoji tag characters), and the Unicode line/paragraph separators.
// eslint-disable-next-line no-misleading-character-class -- ZWJ on its own is what the lookahead lets through
const UNSAFE = /(?![\t\u200d\u{e0020}-\u{e007f}])[\p{Cc}\p{Cf}\p{Bidi_Control}\u2028\u2029]/gu;

function escapeChar(char: string): string {
  const code = char.codePointAt(0)!;
  if (code < 0x100) return `\\x${code.toString(16).padStart(2, '0')}`;
  if (code < 0x10000) return `\\u${code.toString(16).padStart(4, '0')}`;
  return `\\u{${code.toString(16)}}`;
}

/** Shows every character that could move the cursor, recolour or reorder text as a visible escape. */
export function inert(text: string): string {
  return text.replace(UNSAFE, escapeChar);
}

function pad(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/** `HH:MM` in local time. */
export function clock(time: Date): string {
  return `${pad(time.getHours())}:${pad(time.getMinutes())}`;
}

/** `YYYY-MM-DD HH:MM:SS` in local time, for transcripts. */
export function timestamp(time: Date): string {
  return `${time.getFullYear()}-${pad(time.getMonth() + 1)}-${pad(time.getDate())} ${clock(time)}:${pad(time.getSeconds())}`;
}

/** `YYYYMMDD-HHMMSS` in local time, for file names. */
export function compactTimestamp(time: Date): string {
  return timestamp(time).replace(/[-:]/g, '').replace(' ', '-');
}

/**
 * The lines of a body (each ended by LF, but for an unfinished last one from
 * `connect --raw`), without their line endings, as text: bytes that are not
 * UTF-8 (a plain peer's Latin-1, or binary) become `\xNN` escapes.
 */
export function splitLines(body: Buffer): string[] {
  const lines = decodeEscaped(body).split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}

/** `bytes` as text, each byte that is not part of well-formed UTF-8 shown as `\xNN`, as inert() shows a control character. */
export function decodeEscaped(bytes: Buffer): string {
  if (isUtf8(bytes)) return bytes.toString('utf8');
  let text = '';
  let start = 0; // where the well-formed run not yet decoded starts
  for (let at = 0; at < bytes.length;) {
    const length = utf8Length(bytes, at);
    if (length > 0) {
      at += length;
      continue;
    }
    text += `${bytes.toString('utf8', start, at)}\\x${bytes[at].toString(16).padStart(2, '0')}`;
    start = ++at;
  }
  return text + bytes.toString('utf8', start);
}

/** The length of the well-formed UTF-8 sequence at `at` (Unicode's table 3-7), or 0 when there is none. */
function utf8Length(bytes: Buffer, at: number): number {
  const lead = bytes[at];
  if (lead < 0x80) return 1;
  // The second byte's range depends on the lead (no overlong forms, no surrogates, nothing past U+10FFFF).
  let length = 4;
  let low = 0x80;
  let high = 0xbf;
  if (lead >= 0xc2 && lead <= 0xdf) length = 2;
  else if (lead >= 0xe0 && lead <= 0xef) length = 3;
  else if (lead < 0xf0 || lead > 0xf4) return 0;
  if (lead === 0xe0) low = 0xa0;
  else if (lead === 0xed) high = 0x9f;
  else if (lead === 0xf0) low = 0x90;
  else if (lead === 0xf4) high = 0x8f;
  if (at + length > bytes.length || bytes[at + 1] < low || bytes[at + 1] > high) return 0;
  for (let next = at + 2; next < at + length; next++) if ((bytes[next] & 0xc0) !== 0x80) return 0;
  return length;
}

/**
 * json's lines of a body: the text, and for a line that is not UTF-8 its
 * exact bytes in base64 (the text then has U+FFFD for each bad sequence).
 */
function jsonLines(body: Buffer): Array<{ text: string; base64?: string }> {
  if (isUtf8(body)) return splitLines(body).map((text) => ({ text }));
  const lines: Array<{ text: string; base64?: string }> = [];
  for (let start = 0; start < body.length;) {
    const lf = body.indexOf(0x0a, start);
    const end = lf < 0 ? body.length : lf;
    const line = body.subarray(start, end);
    lines.push(isUtf8(line) ? { text: line.toString('utf8') } : { text: line.toString('utf8'), base64: line.toString('base64') });
    start = end + 1;
  }
  return lines;
}

export interface TextEvent {
  kind: 'msg' | 'me';
  nick: string;
  body: Buffer;
  /** In a room: only you were told (a /msg). */
  private?: boolean;
  /** In a room: said to this member alone (a /msg we sent; at the host, one it relays). */
  to?: string;
  /** In a room: said before you joined (the history a newcomer is shown). */
  earlier?: boolean;
  /** In a room: its name (json carries it). */
  room?: string;
}

/** A peer's key and how we know it ("contact bob", "a key not known here", …). */
export interface KeyNote {
  fingerprint: string;
  note: string;
}

export type StatusEvent =
  /** `key`: the peer's key and how we know it, when the session is TLS (json carries it; stderr says it apart). */
  | { type: 'join'; nick: string; address: string; plain: boolean; key?: KeyNote }
  /** Someone changed nick (in a room: anyone, the host included). */
  | { type: 'nick'; from: string; nick: string }
  | { type: 'leave'; nick: string }
  /**
   * We joined a room as a member: its name, its host (and where we reached
   * it), who else is here (the host first), and our nick in it. `asked`: the
   * nick we asked for, when the host gave us another (it was taken).
   */
  | { type: 'room'; room: string; host: string; address: string; here: string[]; you: string; asked?: string }
  /** More members already in the room (a big room names them in several frames). */
  | { type: 'here'; nicks: string[] }
  /**
   * A member joined the room. At the host: where from (`address`), and how its
   * key is known (`key`; `plain`: a netcat member, no key, no encryption).
   */
  | { type: 'joined'; nick: string; address?: string; plain?: boolean; key?: KeyNote }
  /** A member left the room; `why`: quit, lost, dropped: …, kicked by … */
  | { type: 'left'; nick: string; why: string };

/** One message or action as `format` shows it on stdout. */
/**
 * One message or action as `format` shows it on stdout. Plain is the exact
 * bytes of what was said to everyone, now: private messages and a room's
 * history are not written there (''), so its output is a log of the room.
 */
export function renderText(format: Format, event: TextEvent, time: Date): string | Buffer {
  if (format === 'plain') {
    if (event.private || event.to !== undefined || event.earlier) return '';
    return event.kind === 'msg' ? event.body : `* ${event.nick} ${event.body.toString('utf8')}`;
  }
  if (format === 'json') {
    const type = event.kind === 'msg' ? 'message' : 'action';
    const iso = time.toISOString();
    const room = {
      ...(event.room !== undefined && { room: event.room }),
      ...(event.private && { private: true }),
      ...(event.to !== undefined && { to: event.to, private: true }),
      ...(event.earlier && { earlier: true }),
    };
    return jsonLines(event.body)
      .map(
        ({ text, base64 }) =>
          `${JSON.stringify({ type, nick: event.nick, text, ...(base64 !== undefined && { base64 }), time: iso, ...room })}\n`,
      )
      .join('');
  }
  const prefix = `[${clock(time)}] ${speaker(event)}`;
  return splitLines(event.body)
    .map((text) => `${prefix}${shownLine(text)}\n`)
    .join('');
}

/**
 * Who says a line, as people read it: `nick: ` for a message, `* nick ` for an
 * action; `(earlier) ` before what was said before you came, `(private)` after
 * the nick of what only you were told (`(private to carol)`: said to carol alone).
 */
export function speaker(event: Pick<TextEvent, 'kind' | 'nick' | 'private' | 'to' | 'earlier'>): string {
  const who =
    event.to !== undefined
      ? `${inert(event.nick)} (private to ${inert(event.to)})`
      : event.private
        ? `${inert(event.nick)} (private)`
        : inert(event.nick);
  const said = event.kind === 'msg' ? `${who}: ` : `* ${who} `;
  return event.earlier ? `(earlier) ${said}` : said;
}

/** A line as people read it: made inert, and a CR before the LF is its ending, not text. */
export function shownLine(text: string): string {
  return inert(text.endsWith('\r') ? text.slice(0, -1) : text);
}

let segmenter: Intl.Segmenter | null = null;

/**
 * The characters of `text` as people see them (an emoji or an accented letter
 * is one). The segmenter is made on first use: making it loads ICU's break
 * rules, about 10 ms that a session in a pipe never needs.
 */
export function* graphemes(text: string): Generator<string> {
  segmenter ??= new Intl.Segmenter(undefined, { granularity: 'grapheme' });
  for (const { segment } of segmenter.segment(text)) yield segment;
}

/**
 * string-width, loaded only where a line is fitted to a terminal: with its
 * emoji table its module takes ~15 ms to run, which a session in a pipe
 * (most scripts, every benchmark) never needs.
 */
let stringWidth: ((text: string) => number) | null = null;

/** Makes textWidth (and cutToWidth) usable: whoever draws at a terminal awaits it first. */
export async function loadWidths(): Promise<void> {
  stringWidth ??= (await import('string-width')).default;
}

/** Columns `text` takes at a terminal (wide characters count two). */
export function textWidth(text: string): number {
  if (!stringWidth) throw new Error('textWidth before loadWidths()');
  return stringWidth(text);
}

/**
 * `text` cut to `columns` columns of a terminal (wide characters count two),
 * between characters as people see them, with `…` where it was cut.
 */
export function cutToWidth(text: string, columns: number): string {
  if (textWidth(text) <= columns) return text;
  let kept = '';
  let width = 0;
  for (const segment of graphemes(text)) {
    const next = textWidth(segment);
    if (width + next > columns - 1) break;
    kept += segment;
    width += next;
  }
  return `${kept}…`;
}

/** The stderr line for a status event; peer data in it is always made inert. */
export function describeStatus(event: StatusEvent): string {
  switch (event.type) {
    case 'join':
      return event.plain
        ? `connected to ${event.address} (plain text: no nicks, no confirmations)`
        : `connected to ${inert(event.nick)} (${event.address})`;
    case 'nick':
      return `${inert(event.from)} is now ${inert(event.nick)}`;
    case 'leave':
      return `${inert(event.nick)} left`;
    case 'room': {
      const taken = event.asked !== undefined && event.asked !== event.you ? `: ${inert(event.asked)} was taken` : '';
      return (
        `joined ${inert(event.host)}'s room "${inert(event.room)}" at ${event.address}` +
        ` — here: ${event.here.map(inert).join(', ')} (you are ${inert(event.you)}${taken})`
      );
    }
    case 'here':
      return `also here: ${event.nicks.map(inert).join(', ')}`;
    case 'joined': {
      if (event.address === undefined) return `${inert(event.nick)} joined`;
      const how = event.key ? event.key.note : event.plain ? 'plain text, not encrypted' : 'not encrypted';
      return `${inert(event.nick)} joined (${event.address}; ${inert(how)})`;
    }
    case 'left':
      return event.why === 'quit' ? `${inert(event.nick)} left` : `${inert(event.nick)} left (${inert(event.why)})`;
  }
}

/** The stdout line for a status event in json format (other formats keep status on stderr); `room`: the room's name. */
export function renderStatusJson(event: StatusEvent, time: Date, room?: string): string {
  return `${JSON.stringify({ ...event, ...(room !== undefined && event.type !== 'room' && { room }), time: time.toISOString() })}\n`;
}
