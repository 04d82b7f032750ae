import { describe, expect, it } from 'vitest';
import {
  FrameDecoder,
  LineSplitter,
  MAX_FEATURES,
  MAX_HEADER_BYTES,
  bodyLimit,
  checkLines,
  countLines,
  encodeControl,
  encodeTextHeader,
  isValidNick,
  type Frame,
} from '../src/protocol.js';

const MAX = 64 * 1024;

type Decoded = Exclude<Frame, { parts: Buffer[] }> | { type: 'msg' | 'me'; id: number; body: Buffer; lines: number };

/** Decodes, joining the pieces of each text frame into one body (they arrive as lines complete). */
function decodeAll(chunks: Buffer[], maxLine = MAX): Decoded[] {
  const decoder = new FrameDecoder(maxLine);
  const frames: Decoded[] = [];
  let text: { type: 'msg' | 'me'; id: number; parts: Buffer[]; lines: number } | null = null;
  for (const chunk of chunks) {
    decoder.push(chunk, (frame) => {
      if (frame.type !== 'msg' && frame.type !== 'me') return frames.push(frame as Decoded);
      text ??= { type: frame.type, id: frame.id, parts: [], lines: 0 };
      text.parts.push(...frame.parts);
      text.lines += frame.lines;
      if (!frame.last) return;
      frames.push({ type: text.type, id: text.id, body: Buffer.concat(text.parts), lines: text.lines });
      text = null;
    });
  }
  return frames;
}

function textFrame(id: number, text: string, type: 'msg' | 'me' = 'msg'): Buffer {
  const body = Buffer.from(text);
  return Buffer.concat([Buffer.from(encodeTextHeader(type, id, body.length)), body]);
}

/** Every way of cutting `buf` in two. */
function allSplits(buf: Buffer): Buffer[][] {
  return Array.from({ length: buf.length + 1 }, (_, i) => [buf.subarray(0, i), buf.subarray(i)]);
}

describe('countLines', () => {
  it.each([
    ['a\n', 1],
    ['a\nbb\n\n', 3],
    ['\r\n', 1],
    ['', 0],
  ])('counts %j as %i lines', (text, lines) => {
    expect(countLines(Buffer.from(text), MAX)).toBe(lines);
  });

  it('returns -1 when a line is over the limit, not counting its LF', () => {
    expect(countLines(Buffer.from('abc\n'), 3)).toBe(1);
    expect(countLines(Buffer.from('ab\nabcd\n'), 3)).toBe(-1);
  });
});

describe('FrameDecoder', () => {
  const stream = Buffer.concat([
    Buffer.from(encodeControl({ type: 'hello', version: 1, nick: 'alice', maxLine: MAX })),
    textFrame(1, 'héllo ✓\nsecond line\r\n'),
    textFrame(2, 'waves\n', 'me'),
    Buffer.from(encodeControl({ type: 'ack', id: 7 })),
    Buffer.from(encodeControl({ type: 'nick', nick: 'carol' })),
    Buffer.from(encodeControl({ type: 'bye' })),
  ]);
  const expected = [
    { type: 'hello', version: 1, nick: 'alice', maxLine: MAX },
    { type: 'msg', id: 1, body: Buffer.from('héllo ✓\nsecond line\r\n'), lines: 2 },
    { type: 'me', id: 2, body: Buffer.from('waves\n'), lines: 1 },
    { type: 'ack', id: 7 },
    { type: 'nick', nick: 'carol' },
    { type: 'bye' },
  ];

  it('decodes several frames from one chunk', () => {
    expect(decodeAll([stream])).toEqual(expected);
  });

  it('decodes the same frames however the stream is cut in two (mid-header, mid-body, mid-character)', () => {
    for (const split of allSplits(stream)) expect(decodeAll(split)).toEqual(expected);
  });

  it('decodes a stream fed one byte at a time', () => {
    expect(decodeAll([...stream].map((byte) => Buffer.from([byte])))).toEqual(expected);
  });

  it('skips an unknown frame type and its body (forward compatibility)', () => {
    const unknown = Buffer.from('{"type":"file","size":4,"name":"x"}\nDATA{"type":"bye"}\n');
    expect(decodeAll([unknown])).toEqual([{ type: 'bye' }]);
  });

  it.each([
    ['not JSON', 'hello there\n', 'not valid JSON'],
    ['an array', '[1,2]\n', 'not a JSON object'],
    ['null', 'null\n', 'not a JSON object'],
    ['no type', '{"id":1}\n', 'no type'],
    ['a message without id', '{"type":"msg","size":2}\nx\n', 'no valid id'],
    ['a huge id', '{"type":"ack","id":1e400}\n', 'no valid id'],
    ['a string id', '{"type":"ack","id":"1"}\n', 'no valid id'],
    ['a negative size', '{"type":"msg","id":1,"size":-1}\n', 'invalid size'],
    ['a size over the body limit', `{"type":"msg","id":1,"size":${bodyLimit(MAX) + 1}}\n`, 'invalid size'],
    ['a nick object', '{"type":"nick","nick":{"toString":1}}\n', 'nick is invalid'],
    ['a nick with a space', '{"type":"nick","nick":"a b"}\n', 'nick is invalid'],
    ['a body without final LF', '{"type":"msg","id":1,"size":2}\nab', 'line feed'],
    ['an empty message', '{"type":"msg","id":1,"size":0}\n', 'no text'],
    ['a two-line action', '{"type":"me","id":1,"size":4}\na\nb\n', 'one line'],
    ['an error frame without message', '{"type":"error"}\n', 'no message'],
    ['an ack that carries a body', '{"type":"ack","id":1,"size":3}\nabc', 'an ack frame carries a body'],
    ['a bye that carries a body', '{"type":"bye","size":1}\nx', 'a bye frame carries a body'],
    ['an error that carries a body', '{"type":"error","message":"x","size":1}\nx', 'an error frame carries a body'],
    ['a hello that carries a body', '{"type":"hello","version":1,"nick":"a","maxLine":9,"size":2}\nhi', 'a hello frame carries a body'],
  ])('rejects %s', (_name, wire, message) => {
    expect(() => decodeAll([Buffer.from(wire)])).toThrow(message);
  });

  it.each([
    ['a nick', '{"type":"nick","nick":"a","size":2}\nx\n'],
    ['a ping', '{"type":"ping","size":2}\nx\n'],
  ])('rejects %s frame that carries a body (not skipped as an unknown frame would be)', (what, wire) => {
    expect(() => decodeAll([Buffer.from(wire)])).toThrow(
      expect.objectContaining({ code: 'ERR_BAD_FRAME', message: `${what} frame carries a body` }),
    );
  });

  it('takes a known control frame with "size":0 as one without a body', () => {
    expect(decodeAll([Buffer.from('{"type":"bye","size":0}\n{"type":"ping"}\n')])).toEqual([{ type: 'bye' }, { type: 'ping' }]);
  });

  it('rejects a body that is not UTF-8, with a stable code', () => {
    const wire = Buffer.concat([Buffer.from('{"type":"msg","id":1,"size":3}\n'), Buffer.from([0xc3, 0x28, 0x0a])]);
    expect(() => decodeAll([wire])).toThrow(expect.objectContaining({ code: 'ERR_NOT_UTF8' }));
  });

  it('rejects a line longer than its limit', () => {
    expect(() => decodeAll([textFrame(1, 'abcdef\n')], 5)).toThrow(expect.objectContaining({ code: 'ERR_LINE_TOO_LONG' }));
  });

  it('rejects a header that never ends without holding more than the header limit', () => {
    const decoder = new FrameDecoder(MAX);
    const flood = Buffer.alloc(1024, 'x');
    expect(() => {
      for (let i = 0; i < 10; i++) decoder.push(flood, () => {});
    }).toThrow('too long');
    expect(MAX_HEADER_BYTES).toBeLessThan(10 * 1024);
  });

  it('survives deeply nested JSON as a plain error', () => {
    const nested = '['.repeat(2000) + ']'.repeat(2000) + '\n';
    expect(() => decodeAll([Buffer.from(nested)])).toThrow();
  });
});

describe('hello features', () => {
  const hello = (extra: string): Buffer => Buffer.from(`{"type":"hello","version":1,"nick":"a","maxLine":9${extra}}\n`);

  it('decodes the features a hello lists, and the limit that goes with ping', () => {
    expect(decodeAll([hello(',"features":["ping","files-2"],"aliveMs":15000')])).toEqual([
      { type: 'hello', version: 1, nick: 'a', maxLine: 9, features: ['ping', 'files-2'], aliveMs: 15000 },
    ]);
  });

  it('decodes a hello without features as one that lists none (an older peer)', () => {
    const [frame] = decodeAll([hello('')]);
    expect(frame).toEqual({ type: 'hello', version: 1, nick: 'a', maxLine: 9 });
    expect(frame).not.toHaveProperty('features');
  });

  it('encodes a hello without features to the same bytes as before', () => {
    expect(encodeControl({ type: 'hello', version: 1, nick: 'a', maxLine: 9 })).toBe(
      '{"type":"hello","version":1,"nick":"a","maxLine":9}\n',
    );
    expect(encodeControl({ type: 'hello', version: 1, nick: 'a', maxLine: 9, features: ['ping'], aliveMs: 3000 })).toBe(
      '{"type":"hello","version":1,"nick":"a","maxLine":9,"features":["ping"],"aliveMs":3000}\n',
    );
  });

  it(`accepts up to ${MAX_FEATURES} features of up to 32 characters`, () => {
    const many = Array.from({ length: MAX_FEATURES }, (_, i) => `f${i}`.padEnd(32, 'x'));
    expect(decodeAll([hello(`,"features":${JSON.stringify(many)}`)])[0]).toMatchObject({ features: many });
  });

  it.each([
    ['not a list', ',"features":"ping"'],
    ['a number in the list', ',"features":["ping",1]'],
    ['an empty name', ',"features":[""]'],
    ['a name with a space', ',"features":["pi ng"]'],
    ['a name with a control character', ',"features":["\\u001b[2J"]'],
    ['a name of 33 characters', `,"features":["${'x'.repeat(33)}"]`],
    ['too many features', `,"features":${JSON.stringify(Array.from({ length: MAX_FEATURES + 1 }, (_, i) => `f${i}`))}`],
    ['an aliveMs that is not a positive integer', ',"features":["ping"],"aliveMs":-5'],
    ['an aliveMs that is a string', ',"aliveMs":"15000"'],
  ])('rejects a hello with %s', (_name, extra) => {
    expect(() => decodeAll([hello(extra)])).toThrow(expect.objectContaining({ code: 'ERR_BAD_FRAME' }));
  });
});

describe('LineSplitter', () => {
  it('returns whole lines only, keeping the rest for the next chunk', () => {
    const splitter = new LineSplitter(MAX);
    expect(splitter.push(Buffer.from('ab'))).toBeNull();
    expect(splitter.push(Buffer.from('c\nde'))).toEqual({ parts: [Buffer.from('abc\n')], lines: 1 });
    expect(splitter.push(Buffer.from('\r\n\nf'))).toEqual({ parts: [Buffer.from('de\r\n'), Buffer.from('\n')], lines: 2 });
    expect(splitter.push(Buffer.from('g\nh\ni\nj'))).toEqual({ parts: [Buffer.from('fg\n'), Buffer.from('h\ni\n')], lines: 3 });
    expect(splitter.end()).toEqual(Buffer.from('j\n'));
    expect(splitter.end()).toBeNull();
  });

  it('keeps a multi-byte character cut between chunks intact', () => {
    const text = Buffer.from('日本語\n✓\n');
    for (const [a, b] of allSplits(text)) {
      const splitter = new LineSplitter(MAX);
      const out = [splitter.push(a), splitter.push(b)].filter((x) => x !== null).flatMap((x) => x.parts);
      expect(Buffer.concat(out).toString()).toBe('日本語\n✓\n');
    }
  });

  it('fails as soon as an unfinished line passes the limit, holding no more than that', () => {
    const splitter = new LineSplitter(10);
    splitter.push(Buffer.from('0123456789'));
    expect(() => splitter.push(Buffer.from('x'))).toThrow(expect.objectContaining({ code: 'ERR_LINE_TOO_LONG' }));
  });

  it('hands back the good lines that came before a bad one', () => {
    const splitter = new LineSplitter(5);
    expect(() => splitter.push(Buffer.from('ok\nfine\ntoo long\nlater\n'))).toThrow(
      expect.objectContaining({ code: 'ERR_LINE_TOO_LONG', before: { parts: [Buffer.from('ok\nfine\n')], lines: 2 } }),
    );
    const tail = new LineSplitter(5);
    expect(() => tail.push(Buffer.from('ok\n123456'))).toThrow(
      expect.objectContaining({ before: { parts: [Buffer.from('ok\n')], lines: 1 } }),
    );
  });

  it('fails on a complete line over the limit and on text that is not UTF-8', () => {
    expect(() => new LineSplitter(3).push(Buffer.from('abcd\n'))).toThrow(expect.objectContaining({ code: 'ERR_LINE_TOO_LONG' }));
    expect(() => new LineSplitter(3).push(Buffer.from([0xff, 0x0a]))).toThrow(expect.objectContaining({ code: 'ERR_NOT_UTF8' }));
  });

  it("'bytes' (a plain peer's lines) takes bytes that are not UTF-8, and still keeps the line limit", () => {
    const splitter = new LineSplitter(5, 'bytes');
    expect(splitter.push(Buffer.from('caf\xe9\n\x00\xff', 'latin1'))).toEqual({ parts: [Buffer.from('caf\xe9\n', 'latin1')], lines: 1 });
    expect(splitter.end()).toEqual(Buffer.from('\x00\xff\n', 'latin1'));
    expect(() => new LineSplitter(5, 'bytes').push(Buffer.from('ok\n\xe9\xe9\xe9\xe9\xe9\xe9\n', 'latin1'))).toThrow(
      expect.objectContaining({ code: 'ERR_LINE_TOO_LONG', before: { parts: [Buffer.from('ok\n')], lines: 1 } }),
    );
    expect(() => new LineSplitter(5, 'bytes').push(Buffer.alloc(6))).toThrow(expect.objectContaining({ code: 'ERR_LINE_TOO_LONG' }));
  });

  it("'raw' (connect --raw) refuses nothing: a line unfinished after the limit is handed on as it is, the end with nothing added", () => {
    const splitter = new LineSplitter(4, 'raw');
    expect(splitter.push(Buffer.from('\xff\n12', 'latin1'))).toEqual({ parts: [Buffer.from('\xff\n', 'latin1')], lines: 1 });
    // '12' + '345' passes the limit of 4 while unfinished: it goes on, and nothing is held.
    expect(splitter.push(Buffer.from('345'))).toEqual({ parts: [Buffer.from('12345')], lines: 0 });
    expect(splitter.holding).toBe(false);
    expect(splitter.push(Buffer.from('6\n\x00a'))).toEqual({ parts: [Buffer.from('6\n')], lines: 1 });
    expect(splitter.push(Buffer.from('\n0123456789\nab'))).toEqual({
      parts: [Buffer.from('\x00a\n'), Buffer.from('0123456789\n')],
      lines: 2,
    });
    expect(splitter.end()).toEqual(Buffer.from('ab'));
    expect(splitter.end()).toBeNull();
  });
});

describe('checkLines', () => {
  it('accepts empty lines and CRLF', () => {
    expect(checkLines(Buffer.from('\n\r\n'), MAX)).toBe(2);
  });
});

describe('isValidNick', () => {
  it.each([
    ['alice', true],
    ['Zoë_2.0-x', true],
    ['日本', true],
    ['a'.repeat(32), true],
    ['a'.repeat(33), false],
    ['', false],
    ['a b', false],
    ['a\x1b[31m', false],
    ['evil\u202e', false],
    ['tab\t', false],
  ])('%j → %s', (nick, valid) => {
    expect(isValidNick(nick)).toBe(valid);
  });
});

describe('room frames', () => {
  it.each<[string, Decoded]>([
    [
      '{"type":"hello","version":1,"nick":"alice","maxLine":9,"room":"lab","you":"bob2"}',
      { type: 'hello', version: 1, nick: 'alice', maxLine: 9, room: 'lab', you: 'bob2' },
    ],
    ['{"type":"here","nicks":["alice","carol"]}', { type: 'here', nicks: ['alice', 'carol'] }],
    ['{"type":"joined","nick":"carol"}', { type: 'joined', nick: 'carol' }],
    ['{"type":"left","nick":"carol","why":"kicked by alice: spam"}', { type: 'left', nick: 'carol', why: 'kicked by alice: spam' }],
    ['{"type":"renamed","from":"carol","nick":"caro"}', { type: 'renamed', from: 'carol', nick: 'caro' }],
    ['{"type":"delivered","id":7}', { type: 'delivered', id: 7 }],
    ['{"type":"undelivered","id":7,"nick":"carol","why":"left (lost)"}', { type: 'undelivered', id: 7, nick: 'carol', why: 'left (lost)' }],
    ['{"type":"notice","message":"the nick carol is taken"}', { type: 'notice', message: 'the nick carol is taken' }],
    ['{"type":"notice","message":"x","size":0}', { type: 'notice', message: 'x' }],
  ])('decodes %s', (header, frame) => {
    expect(decodeAll([Buffer.from(`${header}\n`)])).toEqual([frame]);
  });

  it('decodes the room fields of a text frame, and encodes them back to the same header', () => {
    const decoder = new FrameDecoder(MAX);
    const frames: Frame[] = [];
    const meta = { from: 'carol', private: true, earlier: true } as const;
    decoder.push(Buffer.concat([Buffer.from(encodeTextHeader('msg', 3, 5, meta)), Buffer.from('psst\n')]), (frame) => frames.push(frame));
    expect(frames).toMatchObject([{ type: 'msg', id: 3, lines: 1, last: true, meta }]);
    expect(encodeTextHeader('msg', 3, 5, { to: 'dave' })).toBe('{"type":"msg","id":3,"size":5,"to":"dave"}\n');
    // `private` and `earlier` other than true are not marks at all.
    decoder.push(Buffer.from('{"type":"msg","id":4,"size":3,"from":"carol","private":"yes","earlier":false}\nhi\n'), (frame) =>
      frames.push(frame),
    );
    expect(frames[1]).toMatchObject({ meta: { from: 'carol' } });
    expect((frames[1] as { meta: object }).meta).toEqual({ from: 'carol' });
  });

  it.each([
    ['a text frame from a bad nick', '{"type":"msg","id":1,"size":3,"from":"a b"}\nhi\n', 'nick is invalid'],
    ['a text frame to a bad nick', '{"type":"msg","id":1,"size":3,"to":"\\u001b[2J"}\nhi\n', 'nick is invalid'],
    ['a text frame to a number', '{"type":"me","id":1,"size":3,"to":5}\nhi\n', 'nick is invalid'],
    ['a hello with a bad room name', '{"type":"hello","version":1,"nick":"a","maxLine":9,"room":"my room"}\n', 'nick is invalid'],
    ['a hello with a bad you', '{"type":"hello","version":1,"nick":"a","maxLine":9,"you":""}\n', 'nick is invalid'],
    ['a here without nicks', '{"type":"here"}\n', 'no nicks'],
    ['an empty here', '{"type":"here","nicks":[]}\n', 'no nicks'],
    ['a here with a bad nick', '{"type":"here","nicks":["alice","x y"]}\n', 'nick is invalid'],
    ['a joined without a nick', '{"type":"joined"}\n', 'nick is invalid'],
    ['a left without why', '{"type":"left","nick":"carol"}\n', 'a left frame has no text'],
    ['a left with a number for why', '{"type":"left","nick":"carol","why":3}\n', 'a left frame has no text'],
    ['a renamed without from', '{"type":"renamed","nick":"caro"}\n', 'nick is invalid'],
    ['a delivered without id', '{"type":"delivered"}\n', 'no valid id'],
    ['an undelivered without why', '{"type":"undelivered","id":1,"nick":"carol"}\n', 'an undelivered frame has no text'],
    ['an undelivered with a bad nick', '{"type":"undelivered","id":1,"nick":"","why":"lost"}\n', 'nick is invalid'],
    ['a notice without a message', '{"type":"notice"}\n', 'a notice has no text'],
    ['a here that carries a body', '{"type":"here","nicks":["a"],"size":2}\nx\n', 'a here frame carries a body'],
    ['a delivered that carries a body', '{"type":"delivered","id":1,"size":2}\nx\n', 'a delivered frame carries a body'],
    ['a notice that carries a body', '{"type":"notice","message":"m","size":2}\nx\n', 'a notice frame carries a body'],
    [
      'an undelivered that carries a body',
      '{"type":"undelivered","id":1,"nick":"a","why":"w","size":2}\nx\n',
      'an undelivered frame carries a body',
    ],
  ])('rejects %s', (_name, wire, message) => {
    expect(() => decodeAll([Buffer.from(wire)])).toThrow(
      expect.objectContaining({ code: 'ERR_BAD_FRAME', message: expect.stringContaining(message) }),
    );
  });

  it('cuts a long reason to 512 characters', () => {
    const [frame] = decodeAll([Buffer.from(`{"type":"notice","message":"${'x'.repeat(600)}"}\n`)]);
    expect(frame).toEqual({ type: 'notice', message: 'x'.repeat(512) });
  });
});
