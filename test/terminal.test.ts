import { describe, expect, it } from 'vitest';
import { compactTimestamp, inert, renderText, timestamp } from '../src/terminal.js';

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

describe('timestamps', () => {
  it('formats local time', () => {
    const time = new Date(2026, 0, 2, 3, 4, 5);
    expect(timestamp(time)).toBe('2026-01-02 03:04:05');
    expect(compactTimestamp(time)).toBe('20260102-030405');
  });
});
