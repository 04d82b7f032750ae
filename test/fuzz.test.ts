// Random and mutated byte streams into a listening session: whatever arrives,
// the session ends (cleanly or with one LanchatError), never throws, never hangs.
// As at a real listener, the door's classification of the first bytes says
// whether the session speaks lanchat or plain lines.
import { describe, expect, it } from 'vitest';
import { LanchatError } from '../src/errors.js';
import { openSession, type SessionEnd } from '../src/session.js';
import { encodeControl, encodeTextHeader } from '../src/protocol.js';
import { classifyFirstBytes } from '../src/door.js';
import { duplexPair } from './duplex-pair.js';

/** mulberry32: a small seeded generator, so a failure can be replayed. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function text(type: 'msg' | 'me', id: number, body: string): string {
  return encodeTextHeader(type, id, Buffer.byteLength(body)) + body;
}

const VALID = Buffer.from(
  encodeControl({ type: 'hello', version: 1, nick: 'fuzz', maxLine: 1024 }) +
    text('msg', 1, 'hello\nworld\r\n') +
    encodeControl({ type: 'nick', nick: 'zz' }) +
    text('me', 2, 'waves\n') +
    encodeControl({ type: 'ack', id: 1 }) +
    '{"type":"future","size":3}\nabc' +
    encodeControl({ type: 'bye' }),
);

const PIECES = [
  '{',
  '}',
  '"type"',
  ':',
  '"hello"',
  '"msg"',
  '"size"',
  '"id"',
  '1e400',
  '-1',
  'null',
  '[]',
  '{"toString":1}',
  '\n',
  '\r\n',
  '\x00',
  '\xff',
  '"nick"',
  '"\\u001b"',
  '9007199254740993',
  '[[[[[[[[',
  '"version":1',
  '"maxLine":5',
];

function stream(rand: () => number): Buffer {
  const kind = Math.floor(rand() * 4);
  if (kind === 0) return Buffer.from(Array.from({ length: Math.floor(rand() * 300) }, () => Math.floor(rand() * 256)));
  if (kind === 1)
    return Buffer.from(Array.from({ length: Math.floor(rand() * 40) }, () => PIECES[Math.floor(rand() * PIECES.length)]).join(''));
  const bytes = [...VALID];
  for (let n = Math.floor(rand() * 4) + 1; n > 0; n--) {
    const at = Math.floor(rand() * bytes.length);
    const op = rand();
    if (op < 0.4) bytes[at] = Math.floor(rand() * 256);
    else if (op < 0.7) bytes.splice(at, 1);
    else bytes.splice(at, 0, ...Buffer.from(PIECES[Math.floor(rand() * PIECES.length)]));
  }
  return Buffer.from(kind === 2 ? bytes : bytes.slice(0, Math.floor(rand() * bytes.length)));
}

async function feed(data: Buffer, rand: () => number): Promise<SessionEnd> {
  const [peer, socket] = duplexPair();
  peer.on('data', () => {}); // the listener's replies
  peer.on('error', () => {}); // reset when the session gives up on it
  const session = openSession(socket, {
    role: 'listen',
    nick: 'bob',
    maxLine: 1024,
    plain: classifyFirstBytes(data, true) !== 'lanchat',
    waitMs: 5,
    deliver: (_text, written) => {
      written();
      return rand() < 0.9;
    },
  });
  session.on('peer-done', () => session.finish());
  for (let at = 0; at < data.length;) {
    const size = 1 + Math.floor(rand() * 64);
    peer.write(data.subarray(at, at + size));
    at += size;
  }
  if (rand() < 0.5) peer.end();
  else peer.destroy();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`session hung on ${JSON.stringify(data.toString('latin1'))}`)), 2000);
  });
  try {
    return await Promise.race([session.done, timeout]);
  } finally {
    clearTimeout(timer);
    session.quit();
  }
}

describe('fuzzing a listener', () => {
  it('ends 10,000 random and mutated streams with a clean end or one clear error', async () => {
    const rand = random(20261124);
    const reasons = new Map<string, number>();
    for (let i = 0; i < 10_000; i++) {
      const data = stream(rand);
      const end = await feed(data, rand);
      if (end.reason === 'failed') {
        expect(end.error).toBeInstanceOf(LanchatError);
        expect(end.error!.message).toMatch(/^[^\n]+$/);
      }
      reasons.set(end.reason, (reasons.get(end.reason) ?? 0) + 1);
    }
    // The corpus reaches both outcomes, so the test exercises more than one path.
    expect(reasons.get('failed')).toBeGreaterThan(1000);
    expect(reasons.get('peer-left')).toBeGreaterThan(100);
  }, 120_000);

  it('a flood without newlines is cut off at the line limit, whatever its size', async () => {
    const [peer, socket] = duplexPair();
    const session = openSession(socket, { role: 'listen', nick: 'bob', maxLine: 1024, plain: true, deliver: () => true });
    let sent = 0;
    const chunk = Buffer.alloc(512, 'x');
    const stop = session.done.then(() => true);
    let stopped = false;
    void stop.then(() => (stopped = true));
    while (!stopped && sent < 10 * 1024 * 1024) {
      peer.write(chunk);
      sent += chunk.length;
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect((await session.done).error?.code).toBe('ERR_LINE_TOO_LONG');
    expect(sent).toBeLessThanOrEqual(2048);
  });
});
