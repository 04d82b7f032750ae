import { EventEmitter, once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import type { Duplex } from 'node:stream';
import { refuse } from '../src/door.js';
import { openSession, type Session, type Incoming, type SessionOptions } from '../src/session.js';
import { DEFAULT_MAX_LINE, lineJoins } from '../src/protocol.js';
import { duplexPair } from './duplex-pair.js';

const sessions: Session[] = [];
afterEach(() => {
  for (const session of sessions.splice(0)) session.quit();
});

interface Side {
  session: Session;
  received: Incoming[];
  text: () => string;
}

function side(socket: Duplex, options: Partial<SessionOptions> & Pick<SessionOptions, 'role' | 'nick'>): Side {
  const received: Incoming[] = [];
  const session = openSession(socket, {
    maxLine: DEFAULT_MAX_LINE,
    waitMs: 2000,
    deliver: (text, written) => {
      received.push(text);
      setImmediate(written);
      return true;
    },
    ...options,
  });
  session.on('peer-done', () => session.finish()); // nothing more of our own to send
  sessions.push(session);
  return { session, received, text: () => Buffer.concat(received.map((r) => r.body)).toString() };
}

function pair(): { alice: Side; bob: Side } {
  const [a, b] = quietPair();
  return { alice: side(a, { role: 'connect', nick: 'alice' }), bob: side(b, { role: 'listen', nick: 'bob' }) };
}

/** A pair whose raw ends (played by the test) ignore the reset a session sends when it drops them. */
function quietPair(...options: Parameters<typeof duplexPair>): [Duplex, Duplex] {
  const pair = duplexPair(...options);
  for (const end of pair) end.on('error', () => {});
  return pair;
}

const lines = (text: string): [Buffer, number] => [Buffer.from(text), text.split('\n').length - 1];

describe('Session between two lanchat peers', () => {
  it('exchanges hellos: each side learns the other nick', async () => {
    const { alice, bob } = pair();
    await Promise.all([once(alice.session, 'open'), once(bob.session, 'open')]);
    expect(alice.session.peerNick).toBe('bob');
    expect(bob.session.peerNick).toBe('alice');
    expect(alice.session.plain).toBe(false);
  });

  it('when the connector finishes, every line is confirmed and both end cleanly', async () => {
    const { alice, bob } = pair();
    await once(alice.session, 'open');
    alice.session.send('msg', ...lines('one\ntwo\n'));
    alice.session.send('me', ...lines('waves\n'));
    alice.session.finish();
    const [aliceEnd, bobEnd] = await Promise.all([alice.session.done, bob.session.done]);
    expect(aliceEnd).toEqual({ reason: 'finished', error: undefined, unconfirmed: 0, peerLeft: true });
    expect(bobEnd.reason).toBe('peer-left');
    expect(bob.text()).toBe('one\ntwo\nwaves\n');
    expect(bob.received.map((r) => [r.kind, r.nick])).toEqual([
      ['msg', 'alice'],
      ['me', 'alice'],
    ]);
    expect(bob.session.stats.linesReceived).toBe(3);
  });

  it('when the peer says goodbye, our own lines in flight are still confirmed first', async () => {
    const { alice, bob } = pair();
    await once(bob.session, 'open');
    bob.session.send('msg', ...lines('from bob\n'));
    alice.session.send('msg', ...lines('from alice\n'));
    alice.session.finish();
    const [aliceEnd, bobEnd] = await Promise.all([alice.session.done, bob.session.done]);
    expect(aliceEnd.unconfirmed).toBe(0);
    expect(bobEnd).toMatchObject({ reason: 'peer-left', unconfirmed: 0 });
    expect(alice.text()).toBe('from bob\n');
  });

  it('tells the peer about a nick change', async () => {
    const { alice, bob } = pair();
    await once(bob.session, 'open');
    const changed = once(bob.session, 'nick');
    alice.session.setNick('carol');
    expect(await changed).toEqual(['alice', 'carol']);
    alice.session.send('msg', ...lines('hi\n'));
    alice.session.finish();
    await bob.session.done;
    expect(bob.received[0].nick).toBe('carol');
  });

  it('counts lines as unconfirmed when the peer never acks', async () => {
    const [a, b] = quietPair();
    const alice = side(a, { role: 'connect', nick: 'alice', waitMs: 100 });
    b.once('data', () => b.write('{"type":"hello","version":1,"nick":"bob","maxLine":65536}\n'));
    await once(alice.session, 'open');
    alice.session.send('msg', ...lines('1\n2\n3\n'));
    alice.session.finish();
    expect(await alice.session.done).toMatchObject({ reason: 'finished', unconfirmed: 3 });
  });

  it('ends with ERR_PEER_LOST when the peer closes without goodbye', async () => {
    const [a, b] = quietPair();
    const alice = side(a, { role: 'connect', nick: 'alice' });
    b.write('{"type":"hello","version":1,"nick":"bob","maxLine":65536}\n');
    await once(alice.session, 'open');
    b.end(); // no bye frame: bob crashed
    const end = await alice.session.done;
    expect(end.reason).toBe('failed');
    expect(end.error).toMatchObject({ code: 'ERR_PEER_LOST', message: expect.stringContaining('bob left without saying goodbye') });
  });

  it('ends with ERR_PEER_LOST when the peer closes in the middle of a frame', async () => {
    const [a, b] = quietPair();
    const alice = side(a, { role: 'connect', nick: 'alice' });
    b.write('{"type":"hello","version":1,"nick":"bob","maxLine":65536}\n{"type":"msg","id":1,"size":10}\nabc');
    await once(alice.session, 'open');
    b.end();
    expect((await alice.session.done).error?.message).toMatch(/middle of a frame/);
  });

  it('sends an error to a peer whose frame is malformed, and fails', async () => {
    const [a, b] = quietPair();
    const bob = side(b, { role: 'listen', nick: 'bob' });
    a.write('{"type":"hello","version":1,"nick":"alice","maxLine":65536}\n');
    await once(bob.session, 'open');
    const reply: Buffer[] = [];
    a.on('data', (chunk: Buffer) => reply.push(chunk));
    const ended = once(a, 'end');
    a.write('{"type":"msg","id":"x"}\n');
    const end = await bob.session.done;
    expect(end.reason).toBe('failed');
    expect(end.error?.code).toBe('ERR_BAD_FRAME');
    await ended;
    expect(Buffer.concat(reply).toString()).toContain('"type":"error"');
  });

  it('refuses a hello with a hostile nick with an error to that peer', async () => {
    const [a, b] = quietPair();
    const bob = side(b, { role: 'listen', nick: 'bob' });
    const reply: Buffer[] = [];
    a.on('data', (chunk: Buffer) => reply.push(chunk));
    const ended = once(a, 'end');
    a.write('{"type":"hello","version":1,"nick":"\\u001b[2J","maxLine":65536}\n');
    expect((await bob.session.done).error?.message).toMatch(/nick is invalid/);
    await ended;
    expect(Buffer.concat(reply).toString()).toMatch(/^\{"type":"error"/);
  });

  it('connector reports a refusal (busy) from the listener', async () => {
    const [a, b] = quietPair();
    const alice = side(a, { role: 'connect', nick: 'alice' });
    void refuse(b, 'busy: already in a chat');
    const end = await alice.session.done;
    expect(end.error).toMatchObject({ code: 'ERR_PEER_REFUSED', message: expect.stringContaining('busy') });
  });

  it('connector gives up on a listener that is not lanchat', async () => {
    const [a, b] = quietPair();
    const alice = side(a, { role: 'connect', nick: 'alice' });
    b.write('SSH-2.0-OpenSSH_9.2\r\n');
    expect((await alice.session.done).error?.code).toBe('ERR_NOT_LANCHAT');
  });

  it('splits a batch bigger than the peer body limit at line boundaries', async () => {
    const { alice, bob } = pair();
    await once(alice.session, 'open');
    const text = `${'x'.repeat(1000)}\n`.repeat(3000); // ~3 MB, over the 1 MiB body limit
    alice.session.send('msg', ...lines(text));
    alice.session.finish();
    expect((await alice.session.done).unconfirmed).toBe(0);
    expect(bob.text()).toBe(text);
    expect(bob.received.length).toBeGreaterThan(2);
  });
});

describe('acks under a full socket', () => {
  it('a peer that floods us and never reads gets one newest ack when it drains, not a backlog', async () => {
    // The flooder's socket takes a few bytes and then nothing (it does not read); our socket is full early.
    const [flooder, socket] = quietPair({ readableHighWaterMark: 64 }, { writableHighWaterMark: 64 });
    const written: string[] = [];
    const bob = side(socket, { role: 'listen', nick: 'bob' });
    flooder.write('{"type":"hello","version":1,"nick":"flood","maxLine":100}\n');
    await once(bob.session, 'open');
    // The callback of the last write: bob has read every message (his output takes each at once).
    for (let id = 1; id < 1000; id++) flooder.write(`{"type":"msg","id":${id},"size":2}\nx\n`);
    await new Promise((resolve) => flooder.write('{"type":"msg","id":1000,"size":2}\nx\n', resolve));
    // And every text is written (each a turn later): its acks are due.
    await new Promise((resolve) => setImmediate(resolve));
    expect(bob.received).toHaveLength(1000);
    // What waits to be written: a handful of bytes, not a thousand acks.
    expect(socket.writableLength).toBeLessThan(200);
    // The peer reads at last, until the newest ack arrives.
    const newest = '{"type":"ack","id":1000}\n';
    flooder.on('data', (chunk: Buffer) => written.push(chunk.toString()));
    while (!written.includes(newest)) await once(flooder, 'data');
    expect(written.at(-1)).toBe('{"type":"ack","id":1000}\n');
  });

  it('send says the socket is full while the peer does not read, and drain follows once it does', async () => {
    const [raw, end] = quietPair({ readableHighWaterMark: 1024 });
    const alice = side(end, { role: 'connect', nick: 'alice' });
    raw.write('{"type":"hello","version":1,"nick":"bob","maxLine":65536}\n');
    await once(alice.session, 'open');
    let sent = 0;
    while (alice.session.send('msg', ...lines('x'.repeat(99) + '\n')) && sent < 10_000) sent++;
    expect(sent).toBeLessThan(10_000); // the socket filled up
    const drained = once(alice.session, 'drain');
    raw.resume(); // the peer reads at last
    await drained;
    expect(alice.session.send('msg', ...lines('more\n'))).toBe(true);
  });
});

describe('backpressure from the output to the sender', () => {
  it("a receiver whose output is full stops reading, the sender's socket fills, and both go on once the output takes the text", async () => {
    const [a, b] = quietPair();
    const alice = side(a, { role: 'connect', nick: 'alice' });
    // Bob's output is full at first: each write waits until the test lets it go.
    const held: Array<() => void> = [];
    let full = true;
    const received: string[] = [];
    const bob = openSession(b, {
      role: 'listen',
      nick: 'bob',
      maxLine: DEFAULT_MAX_LINE,
      waitMs: 2000,
      deliver: (text, written) => {
        received.push(text.body.toString());
        if (full) held.push(written);
        else setImmediate(written);
        return !full;
      },
    });
    sessions.push(bob);
    await Promise.all([once(alice.session, 'open'), once(bob, 'open')]);
    const line = `${'x'.repeat(999)}\n`;
    let sent = 0;
    while (alice.session.send('msg', ...lines(line)) && sent < 10_000) {
      sent++;
      if (sent % 16 === 0) await new Promise((resolve) => setImmediate(resolve)); // the link moves what it can
    }
    expect(sent).toBeLessThan(10_000); // alice's socket filled up: bob stopped reading
    expect(held.length).toBeLessThan(sent); // bob read only part of it
    const drained = once(alice.session, 'drain');
    // Bob's output takes everything, now and as it comes.
    full = false;
    for (const written of held.splice(0)) written();
    await drained;
    alice.session.finish();
    bob.on('peer-done', () => bob.finish());
    expect(await alice.session.done).toMatchObject({ reason: 'finished', unconfirmed: 0 });
    expect(received.join('')).toBe(line.repeat(sent + 1));
  });
});

describe('Session with a plain (netcat) peer', () => {
  it('a listener whose door found a plain peer speaks plain lines with it', async () => {
    const [a, b] = quietPair();
    const bob = side(b, { role: 'listen', nick: 'bob', plain: true, plainNick: '10.0.0.9:1234' });
    a.write('hello from nc\nsecond\n');
    await once(bob.session, 'open');
    expect(bob.session.plain).toBe(true);
    const out: Buffer[] = [];
    a.on('data', (chunk: Buffer) => out.push(chunk));
    bob.session.send('msg', ...lines('reply\n'));
    a.end('last line without newline');
    expect(await bob.session.done).toMatchObject({ reason: 'peer-left', unconfirmed: 0 });
    expect(bob.text()).toBe('hello from nc\nsecond\nlast line without newline\n');
    expect(bob.received[0].nick).toBe('10.0.0.9:1234');
    expect(Buffer.concat(out).toString()).toBe('reply\n');
  });

  it('a listener never guesses again: a peer the door let in as lanchat that sends text is dropped, not printed', async () => {
    const [a, b] = quietPair();
    const bob = side(b, { role: 'listen', nick: 'bob', handshakeMs: 5000 });
    a.write('hello from nc\n');
    const end = await bob.session.done;
    expect(end.error?.code).toBe('ERR_BAD_FRAME');
    expect(bob.received).toEqual([]);
  });

  it('a listener session given no hello fails once its handshake time is up', async () => {
    const [, b] = quietPair();
    const bob = side(b, { role: 'listen', nick: 'bob', handshakeMs: 50 });
    expect((await bob.session.done).error).toMatchObject({ code: 'ERR_HANDSHAKE', message: 'no hello within 0.05 s' });
    expect(bob.session.plain).toBe(false);
  });

  it('drops a plain peer whose line is over the limit', async () => {
    const [a, b] = quietPair();
    const bob = side(b, { role: 'listen', nick: 'bob', plain: true, maxLine: 100 });
    a.write('x'.repeat(150));
    expect((await bob.session.done).error?.code).toBe('ERR_LINE_TOO_LONG');
  });

  it('takes a plain peer’s bytes that are not UTF-8 (a Latin-1 terminal) as they are, and drops nobody for them', async () => {
    const [a, b] = quietPair();
    const bob = side(b, { role: 'listen', nick: 'bob', plain: true, plainNick: '10.0.0.9:1234' });
    a.write(Buffer.from('caf\xe9\n\x00\xff\xfe\n', 'latin1'));
    a.end(Buffer.from('na\xefve', 'latin1'));
    expect(await bob.session.done).toMatchObject({ reason: 'peer-left' });
    expect(Buffer.concat(bob.received.map((text) => text.body))).toEqual(Buffer.from('caf\xe9\n\x00\xff\xfe\nna\xefve\n', 'latin1'));
    expect(bob.session.stats.linesReceived).toBe(3);
  });

  it("raw 'bytes' (connect --raw to a pipe) hands on every chunk as it came: any bytes, no line limit, nothing added", async () => {
    const [a, b] = quietPair();
    const alice = side(a, { role: 'connect', nick: 'alice', plain: true, raw: 'bytes', maxLine: 100 });
    await once(alice.session, 'open');
    const chunks = [Buffer.from([0, 0xff, 0x0a, 0xfe]), Buffer.alloc(5000, 0xe9), Buffer.from('\x00no newline at the end')];
    for (const chunk of chunks) b.write(chunk);
    b.end();
    expect(await alice.session.done).toMatchObject({ reason: 'peer-left' });
    expect(Buffer.concat(alice.received.map((text) => text.body))).toEqual(Buffer.concat(chunks));
    expect(alice.session.stats.linesReceived).toBe(1);
  });

  it("raw 'lines' (connect --raw shown by lines) hands on a line unfinished after the limit as it is, and the end with nothing added", async () => {
    const [a, b] = quietPair();
    const alice = side(a, { role: 'connect', nick: 'alice', plain: true, raw: 'lines', maxLine: 100 });
    await once(alice.session, 'open');
    b.write('whole \xe9\n', 'latin1');
    b.write(Buffer.alloc(150, 0x78));
    b.end(Buffer.from('\nlast, unfinished'));
    expect(await alice.session.done).toMatchObject({ reason: 'peer-left' });
    expect(alice.received.map((text) => text.body.toString('latin1'))).toEqual(['whole \xe9\n', 'x'.repeat(150), '\n', 'last, unfinished']);
  });

  it('a raw connector sends plain lines and half-closes when finished', async () => {
    const [a, b] = quietPair();
    const alice = side(a, { role: 'connect', nick: 'alice', plain: true });
    await once(alice.session, 'open');
    const got: Buffer[] = [];
    b.on('data', (chunk: Buffer) => got.push(chunk));
    alice.session.send('msg', ...lines('a\nb\n'));
    alice.session.finish();
    await once(b, 'end');
    b.end('answer\n');
    expect(await alice.session.done).toMatchObject({ reason: 'finished', unconfirmed: 0 });
    expect(Buffer.concat(got).toString()).toBe('a\nb\n');
    expect(alice.text()).toBe('answer\n');
  });
});

describe('Session waiting for the goodbye', () => {
  it('fails when a lanchat peer goes quiet without its goodbye (it may not have sent everything)', async () => {
    const [raw, end] = quietPair();
    const bob = side(end, { role: 'listen', nick: 'bob', waitMs: 100 });
    raw.write('{"type":"hello","version":1,"nick":"alice","maxLine":65536}\n{"type":"msg","id":1,"size":3}\nhi\n');
    await once(bob.session, 'open');
    bob.session.finish(); // nothing of ours to confirm: our goodbye goes out, and alice never answers
    const result = await bob.session.done;
    expect(result.reason).toBe('failed');
    expect(result.error?.message).toBe('alice sent nothing for 0.1 s and did not say goodbye: what it was still sending may be lost');
    expect(bob.text()).toBe('hi\n');
  });
});

describe('Session reading into reused buffers', () => {
  /**
   * A listener whose output writes a moment later (copying the text only
   * then, a few turns of the event loop on: after the next chunks have come
   * in), and whose recycle scribbles over each chunk, as the next read into
   * that buffer would: text taken from a chunk recycled too early, or a chunk
   * kept past its recycling, shows up as '#'. `settled()` resolves once the
   * output has written everything it was given.
   */
  function scribbledListener(options: Partial<SessionOptions> = {}): {
    session: Session;
    raw: Duplex;
    written: string[];
    delivered: Buffer[];
    recycled: Buffer[];
    settled: () => Promise<unknown>;
  } {
    const [raw, end] = quietPair();
    const written: string[] = [];
    const delivered: Buffer[] = [];
    const recycled: Buffer[] = [];
    const output = new EventEmitter();
    let writing = 0;
    const later = (turns: number, then: () => void): unknown => setImmediate(turns > 1 ? () => later(turns - 1, then) : then);
    const session = openSession(end, {
      role: 'listen',
      nick: 'bob',
      maxLine: DEFAULT_MAX_LINE,
      waitMs: 2000,
      deliver: (text, done) => {
        writing++;
        delivered.push(text.body);
        later(5, () => {
          written.push(text.body.toString());
          done();
          if (--writing === 0) output.emit('settled');
        });
        return true;
      },
      recycle: (chunk) => {
        recycled.push(chunk);
        chunk.fill('#');
      },
      ...options,
    });
    session.on('peer-done', () => session.finish());
    sessions.push(session);
    const settled = async (): Promise<unknown> => writing === 0 || once(output, 'settled');
    return { session, raw, written, delivered, recycled, settled };
  }

  /** Writes `text` cut at `cuts`, each piece its own chunk (a turn of the event loop apart). */
  async function writeCut(raw: Duplex, text: string, cuts: number[]): Promise<Buffer[]> {
    const pieces = [0, ...cuts, text.length].slice(1).map((end, i, ends) => Buffer.from(text.slice(i === 0 ? 0 : ends[i - 1], end)));
    for (const piece of pieces) {
      raw.write(piece);
      await new Promise((resolve) => setImmediate(resolve));
    }
    return pieces;
  }

  it('recycles every chunk once, after its text is written, and keeps nothing of it', async () => {
    const { session, raw, written, recycled, settled } = scribbledListener();
    const wire =
      '{"type":"hello","version":1,"nick":"alice","maxLine":65536}\n' +
      '{"type":"msg","id":1,"size":18}\nhello\nworld\nagain\n' +
      '{"type":"me","id":2,"size":6}\nwaves\n{"type":"bye"}\n';
    // A hello, a header, a body (mid-line) and an action each cut across chunks.
    const pieces = await writeCut(raw, wire, [10, 70, 85, 100, 104, 118, 140, 145]);
    await session.done;
    await settled();
    expect(written.join('')).toBe('hello\nworld\nagain\nwaves\n');
    expect(recycled.length).toBe(pieces.length);
    expect(new Set(recycled).size).toBe(pieces.length);
  });

  it('joins a long line that came in pieces into a lent buffer, taken back only once its text is written', async () => {
    const { session, raw, written, delivered, settled } = scribbledListener();
    await longLinesInPieces(session, raw);
    await settled();
    const joined = lentBuffers(delivered);
    expect(written.join('')).toBe(LONG_LINES);
    expect(joined.length).toBe(24);
    expect(new Set(joined).size).toBeLessThan(joined.length); // buffers were taken back and lent again
  });

  it('lends nothing without recycling, where written text may still be held (a room host relays it)', async () => {
    const { session, raw, written, delivered, settled } = scribbledListener({ recycle: undefined });
    await longLinesInPieces(session, raw);
    await settled();
    expect(written.join('')).toBe(LONG_LINES);
    expect(lentBuffers(delivered)).toEqual([]);
  });

  /** 24 different lines of 6 KiB. */
  const LONG_LINES = Array.from({ length: 24 }, (_, i) => `${String.fromCharCode(97 + i).repeat(6143)}\n`).join('');

  /** The memory of the texts delivered in buffers lent by lineJoins. */
  const lentBuffers = (delivered: Buffer[]): ArrayBufferLike[] =>
    delivered.filter((body) => body.buffer.byteLength === lineJoins.size).map((body) => body.buffer);

  /**
   * Sends LONG_LINES to `session`, each line cut in two, a turn of the event loop apart
   * (so a line is joined while the ones before it still wait to be written).
   */
  async function longLinesInPieces(session: Session, raw: Duplex): Promise<void> {
    const wire = `{"type":"hello","version":1,"nick":"alice","maxLine":65536}\n{"type":"msg","id":1,"size":${LONG_LINES.length}}\n${LONG_LINES}{"type":"bye"}\n`;
    const start = wire.indexOf(LONG_LINES);
    await writeCut(
      raw,
      wire,
      Array.from({ length: 24 }, (_, i) => start + i * 6144 + 3000),
    );
    await session.done;
  }

  it("keeps nothing of a plain peer's chunks past their recycling either", async () => {
    const { session, raw, written, recycled, settled } = scribbledListener({ plain: true });
    await once(session, 'open');
    const pieces = await writeCut(raw, 'one line\nand a second one\nlast', [4, 12, 20]);
    raw.end();
    await session.done;
    await settled();
    expect(written.join('')).toBe('one line\nand a second one\nlast\n');
    expect(recycled.filter((chunk) => chunk.length > 0).length).toBe(pieces.length);
  });
});

describe('Session goodbyes', () => {
  /** Every frame the raw end reads, as parsed JSON headers. */
  function frames(raw: Duplex): Array<Record<string, unknown>> {
    const seen: Array<Record<string, unknown>> = [];
    let text = '';
    raw.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n')) {
        const line = text.slice(0, i);
        text = text.slice(i + 1);
        if (line.startsWith('{')) seen.push(JSON.parse(line) as Record<string, unknown>);
      }
    });
    return seen;
  }
  const hello = '{"type":"hello","version":1,"nick":"alice","maxLine":65536}\n';

  it('quit after finish sends one goodbye, not two', async () => {
    const [raw, end] = quietPair();
    const seen = frames(raw);
    const bob = side(end, { role: 'listen', nick: 'bob' });
    raw.write(hello);
    await once(bob.session, 'open');
    bob.session.finish(); // nothing to confirm: the goodbye goes at once
    bob.session.quit();
    await bob.session.done;
    expect(seen.filter((frame) => frame.type === 'bye')).toEqual([{ type: 'bye' }]);
  });

  it('a goodbye says when the input was cut short, and the peer learns it', async () => {
    const { alice, bob } = pair();
    await Promise.all([once(alice.session, 'open'), once(bob.session, 'open')]);
    alice.session.send('msg', ...lines('first part\n'));
    alice.session.quit({ complete: false });
    const [aliceEnd, bobEnd] = await Promise.all([alice.session.done, bob.session.done]);
    expect(aliceEnd.peerCut).toBeUndefined();
    expect(bobEnd.peerCut).toBe(true);
    expect(bob.text()).toBe('first part\n');
  });

  it('a complete goodbye is the plain {"type":"bye"} of version 1', async () => {
    const [raw, end] = quietPair();
    const seen = frames(raw);
    const bob = side(end, { role: 'listen', nick: 'bob' });
    raw.write(hello);
    await once(bob.session, 'open');
    bob.session.finish();
    raw.write('{"type":"bye"}\n');
    expect((await bob.session.done).peerCut).toBeUndefined();
    expect(seen.at(-1)).toEqual({ type: 'bye' });
  });

  it('quit with a grace waits for the acks of lines already sent, then leaves', async () => {
    const [raw, end] = quietPair();
    const seen = frames(raw);
    const bob = side(end, { role: 'listen', nick: 'bob' });
    raw.write(hello);
    await once(bob.session, 'open');
    bob.session.send('msg', ...lines('just typed\n'));
    bob.session.quit({ graceMs: 5000 });
    await new Promise((resolve) => setImmediate(resolve));
    expect(seen.some((frame) => frame.type === 'bye')).toBe(false); // still waiting for the ack
    raw.write('{"type":"ack","id":1}\n');
    const result = await bob.session.done;
    expect(result).toMatchObject({ reason: 'quit', unconfirmed: 0 });
    expect(seen.filter((frame) => frame.type === 'bye')).toHaveLength(1);
  });

  it('quit with a grace gives up on acks that never come, and says how many lines were not confirmed', async () => {
    const [raw, end] = quietPair();
    const bob = side(end, { role: 'listen', nick: 'bob' });
    raw.write(hello);
    await once(bob.session, 'open');
    bob.session.send('msg', ...lines('one\ntwo\n'));
    bob.session.quit({ graceMs: 50 });
    expect(await bob.session.done).toMatchObject({ reason: 'quit', unconfirmed: 2 });
  });
});
