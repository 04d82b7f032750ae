import { describe, expect, it } from 'vitest';
import {
  compactTimestamp,
  decodeEscaped,
  describeStatus,
  inert,
  renderStatusJson,
  renderText,
  timestamp,
  type StatusEvent,
} from '../src/terminal.js';

describe('inert', () => {
  it.each([
    ['plain text', 'plain text'],
    ['tab\tkept', 'tab\tkept'],
    ['\x1b[31mred', '\\x1b[31mred'],
    ['a\rb\bc\x07\x7f', 'a\\x0db\\x08c\\x07\\x7f'],
    ['c1\u009b', 'c1\\x9b'],
    ['rtl\u202eevil\u2066', 'rtl\\u202eevil\\u2066'],
    ['zero\u200bwidth\ufeff', 'zero\\u200bwidth\\ufeff'],
    ['line\u2028sep', 'line\\u2028sep'],
    ['👩\u200d💻 family', '👩\u200d💻 family'],
    ['日本語 ✓', '日本語 ✓'],
  ])('%j → %j', (text, shown) => {
    expect(inert(text)).toBe(shown);
  });
});

describe('renderText', () => {
  const time = new Date(2026, 10, 24, 9, 5, 7);
  const body = Buffer.from('hi\r\n\x1b[2Jthere\n');

  it('plain writes the bytes as they came', () => {
    expect(renderText('plain', { kind: 'msg', nick: 'bob', body }, time)).toEqual(body);
  });

  it('pretty prefixes every line with time and sender and makes it inert', () => {
    expect(renderText('pretty', { kind: 'msg', nick: 'bob', body }, time)).toBe('[09:05] bob: hi\n[09:05] bob: \\x1b[2Jthere\n');
    expect(renderText('pretty', { kind: 'me', nick: 'bob', body: Buffer.from('waves\n') }, time)).toBe('[09:05] * bob waves\n');
  });

  it('json writes one object per line with exact text', () => {
    const out = renderText('json', { kind: 'msg', nick: 'bob', body }, time) as string;
    const events = out
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(events).toEqual([
      { type: 'message', nick: 'bob', text: 'hi\r', time: time.toISOString() },
      { type: 'message', nick: 'bob', text: '\x1b[2Jthere', time: time.toISOString() },
    ]);
  });
});

describe('decodeEscaped', () => {
  // Each byte that is not part of well-formed UTF-8 (Unicode's table 3-7) becomes \xNN; the rest is text.
  it.each([
    ['UTF-8 as it is', [...Buffer.from('héllo ✓ 😀')], 'héllo ✓ 😀'],
    ['Latin-1 café', [0x63, 0x61, 0x66, 0xe9], 'caf\\xe9'],
    ['a NUL stays a character (inert escapes it)', [0x61, 0x00], 'a\x00'],
    ['a lone continuation byte', [0x80, 0x41], '\\x80A'],
    ['an overlong form', [0xc0, 0xaf], '\\xc0\\xaf'],
    ['an overlong three-byte form', [0xe0, 0x80, 0xaf], '\\xe0\\x80\\xaf'],
    ['a surrogate', [0xed, 0xa0, 0x80], '\\xed\\xa0\\x80'],
    ['past U+10FFFF', [0xf4, 0x90, 0x80, 0x80], '\\xf4\\x90\\x80\\x80'],
    ['a sequence cut short, then text', [0xe2, 0x9c, 0x41], '\\xe2\\x9cA'],
    ['a sequence cut short at the end', [0x41, 0xf0, 0x9f, 0x98], 'A\\xf0\\x9f\\x98'],
    ['good beside bad', [0xe2, 0x9c, 0x93, 0xff, 0xc3, 0xa9], '✓\\xffé'],
  ])('%s', (_name, bytes, text) => {
    expect(decodeEscaped(Buffer.from(bytes))).toBe(text);
  });
});

describe('renderText of bytes that are not UTF-8 (a plain peer)', () => {
  const time = new Date(2026, 10, 24, 9, 5, 7);
  const body = Buffer.from('caf\xe9\nok\n\x1b\xff\n', 'latin1');

  it('pretty shows them escaped, readable and inert (plain writes the exact bytes)', () => {
    expect(renderText('pretty', { kind: 'msg', nick: '10.0.0.9:4000', body }, time)).toBe(
      '[09:05] 10.0.0.9:4000: caf\\xe9\n[09:05] 10.0.0.9:4000: ok\n[09:05] 10.0.0.9:4000: \\x1b\\xff\n',
    );
    expect(renderText('plain', { kind: 'msg', nick: 'peer', body }, time)).toEqual(body);
  });

  it('json gives the text (U+FFFD for what is not UTF-8) and, for such a line, its exact bytes in base64', () => {
    const out = renderText('json', { kind: 'msg', nick: 'peer', body }, time) as string;
    const events = out
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as { text: string; base64?: string });
    expect(events.map(({ text, base64 }) => ({ text, base64 }))).toEqual([
      { text: 'caf\ufffd', base64: 'Y2Fm6Q==' },
      { text: 'ok', base64: undefined },
      { text: '\x1b\ufffd', base64: Buffer.from([0x1b, 0xff]).toString('base64') },
    ]);
  });

  it('an unfinished last line (connect --raw) is shown as a line in pretty and json, and left as it is in plain', () => {
    const unfinished = Buffer.from('one\ntwo \xe9', 'latin1');
    expect(renderText('pretty', { kind: 'msg', nick: 'p', body: unfinished }, time)).toBe('[09:05] p: one\n[09:05] p: two \\xe9\n');
    expect(renderText('plain', { kind: 'msg', nick: 'p', body: unfinished }, time)).toEqual(unfinished);
    const json = (renderText('json', { kind: 'msg', nick: 'p', body: Buffer.from('one\ntwo') }, time) as string).trimEnd().split('\n');
    expect(json.map((line) => (JSON.parse(line) as { text: string }).text)).toEqual(['one', 'two']);
  });
});

describe('renderText in a room', () => {
  const time = new Date(2026, 10, 24, 9, 5, 7);
  const body = Buffer.from('psst\n');
  const said = { kind: 'msg', nick: 'carol', body, room: 'lab' } as const;

  it('pretty marks a private message after the nick and the history before it', () => {
    expect(renderText('pretty', { ...said, private: true }, time)).toBe('[09:05] carol (private): psst\n');
    expect(renderText('pretty', { ...said, kind: 'me', private: true }, time)).toBe('[09:05] * carol (private) psst\n');
    expect(renderText('pretty', { ...said, earlier: true }, time)).toBe('[09:05] (earlier) carol: psst\n');
    expect(renderText('pretty', said, time)).toBe('[09:05] carol: psst\n');
    expect(renderText('pretty', { ...said, to: 'dave' }, time)).toBe('[09:05] carol (private to dave): psst\n');
    expect(renderText('pretty', { ...said, nick: 'c\x1b[2J', private: true }, time)).toBe('[09:05] c\\x1b[2J (private): psst\n');
  });

  it('plain writes the public messages of now only: private ones and the history are not written', () => {
    expect(renderText('plain', said, time)).toEqual(body);
    expect(renderText('plain', { ...said, private: true }, time)).toBe('');
    expect(renderText('plain', { ...said, earlier: true }, time)).toBe('');
    expect(renderText('plain', { ...said, kind: 'me', private: true }, time)).toBe('');
    expect(renderText('plain', { ...said, to: 'dave' }, time)).toBe('');
  });

  it('json adds the room, and private or earlier where they apply', () => {
    const json = (event: Parameters<typeof renderText>[1]): unknown => JSON.parse(renderText('json', event, time) as string);
    const base = { type: 'message', nick: 'carol', text: 'psst', time: time.toISOString(), room: 'lab' };
    expect(json(said)).toEqual(base);
    expect(json({ ...said, private: true })).toEqual({ ...base, private: true });
    expect(json({ ...said, earlier: true })).toEqual({ ...base, earlier: true });
    expect(json({ ...said, to: 'dave' })).toEqual({ ...base, to: 'dave', private: true });
    expect(json({ kind: 'msg', nick: 'bob', body })).not.toHaveProperty('room');
  });
});

describe('describeStatus', () => {
  it.each<[StatusEvent, string]>([
    [{ type: 'joined', nick: 'carol' }, 'carol joined'],
    [
      {
        type: 'joined',
        nick: 'carol',
        address: '192.168.1.31:40112',
        plain: false,
        key: { fingerprint: 'AB', note: 'a key not known here' },
      },
      'carol joined (192.168.1.31:40112; a key not known here)',
    ],
    [
      { type: 'joined', nick: 'guest1', address: '192.168.1.9:5123', plain: true },
      'guest1 joined (192.168.1.9:5123; plain text, not encrypted)',
    ],
    [{ type: 'left', nick: 'carol', why: 'quit' }, 'carol left'],
    [{ type: 'left', nick: 'carol', why: 'lost' }, 'carol left (lost)'],
    [{ type: 'left', nick: 'carol', why: 'kicked by alice: \x1b[31m' }, 'carol left (kicked by alice: \\x1b[31m)'],
    [{ type: 'nick', from: 'carol', nick: 'caro' }, 'carol is now caro'],
    [
      { type: 'room', room: 'lab', host: 'alice', address: '127.0.0.1:5000', here: ['alice', 'carol'], you: 'bob' },
      'joined alice\'s room "lab" at 127.0.0.1:5000 — here: alice, carol (you are bob)',
    ],
    [
      { type: 'room', room: 'lab', host: 'alice', address: '127.0.0.1:5000', here: ['alice'], you: 'bob2', asked: 'bob' },
      'joined alice\'s room "lab" at 127.0.0.1:5000 — here: alice (you are bob2: bob was taken)',
    ],
    [{ type: 'here', nicks: ['dave', 'erin'] }, 'also here: dave, erin'],
  ])('%j → %j', (event, line) => {
    expect(describeStatus(event)).toBe(line);
  });

  it('json names the room of a room event', () => {
    const time = new Date(2026, 0, 2, 3, 4, 5);
    expect(JSON.parse(renderStatusJson({ type: 'left', nick: 'carol', why: 'lost' }, time, 'lab'))).toEqual({
      type: 'left',
      nick: 'carol',
      why: 'lost',
      room: 'lab',
      time: time.toISOString(),
    });
  });
});

describe('timestamps', () => {
  it('formats local time', () => {
    const time = new Date(2026, 0, 2, 3, 4, 5);
    expect(timestamp(time)).toBe('2026-01-02 03:04:05');
    expect(compactTimestamp(time)).toBe('20260102-030405');
  });
});
