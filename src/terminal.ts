// How events look on the way out: one renderer per --format, and the function
// that makes peer-controlled text inert before it reaches a terminal.

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

/** The lines of a body (each ended by LF), without their line endings. */
export function splitLines(body: Buffer): string[] {
  const lines = body.toString('utf8').split('\n');
  lines.pop();
  return lines;
}

export interface TextEvent {
  kind: 'msg' | 'me';
  nick: string;
  body: Buffer;
}

export type StatusEvent =
  /** `key`: the peer's key and how we know it, when the session is TLS (json carries it; stderr says it apart). */
  | { type: 'join'; nick: string; address: string; plain: boolean; key?: { fingerprint: string; note: string } }
  | { type: 'nick'; from: string; nick: string }
  | { type: 'leave'; nick: string };

/** One message or action as `format` shows it on stdout. */
export function renderText(format: Format, event: TextEvent, time: Date): string | Buffer {
  if (format === 'plain') {
    return event.kind === 'msg' ? event.body : `* ${event.nick} ${event.body.toString('utf8')}`;
  }
  const lines = splitLines(event.body);
  if (format === 'json') {
    const type = event.kind === 'msg' ? 'message' : 'action';
    const iso = time.toISOString();
    return lines.map((text) => `${JSON.stringify({ type, nick: event.nick, text, time: iso })}\n`).join('');
  }
  const prefix = `[${clock(time)}] ${speaker(event)}`;
  return lines.map((text) => `${prefix}${shownLine(text)}\n`).join('');
}

/** Who says a line, as people read it: `nick: ` for a message, `* nick ` for an action. */
export function speaker(event: Pick<TextEvent, 'kind' | 'nick'>): string {
  return event.kind === 'msg' ? `${inert(event.nick)}: ` : `* ${inert(event.nick)} `;
}

/** A line as people read it: made inert, and a CR before the LF is its ending, not text. */
export function shownLine(text: string): string {
  return inert(text.endsWith('\r') ? text.slice(0, -1) : text);
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
  }
}

/** The stdout line for a status event in json format (other formats keep status on stderr). */
export function renderStatusJson(event: StatusEvent, time: Date): string {
  return `${JSON.stringify({ ...event, time: time.toISOString() })}\n`;
}
