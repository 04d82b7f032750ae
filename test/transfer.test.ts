import { once } from 'node:events';
import { createHash, randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import type { Duplex } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_MAX_LINE, FrameDecoder, type Frame } from '../src/protocol.js';
import { type LanchatSession, openSession, type Incoming, type Session } from '../src/session.js';
import {
  CHUNK_BYTES,
  FileLane,
  WINDOW_BYTES,
  type Destination,
  type IncomingTransfer,
  type OutgoingTransfer,
  type Source,
  type TransferEnd,
} from '../src/transfer.js';
import { duplexPair } from './duplex-pair.js';

const sessions: Session[] = [];
afterEach(() => {
  for (const session of sessions.splice(0)) session.quit();
});

function open(socket: Duplex, role: 'connect' | 'listen', nick: string, files = true): { session: LanchatSession; text: Incoming[] } {
  const text: Incoming[] = [];
  const session = openSession(socket, {
    role,
    nick,
    maxLine: DEFAULT_MAX_LINE,
    waitMs: 5000,
    files,
    deliver: (incoming, written) => {
      text.push(incoming);
      setImmediate(written);
      return true;
    },
  }) as LanchatSession;
  sessions.push(session);
  return { session, text };
}

async function lanes(
  filesAtBob = true,
): Promise<{ alice: FileLane; bob: FileLane; aliceSide: ReturnType<typeof open>; bobSide: ReturnType<typeof open> }> {
  // Small buffers: the socket reports full early, as a busy one does.
  const [a, b] = duplexPair({ readableHighWaterMark: 16 * 1024 }, { readableHighWaterMark: 16 * 1024 });
  const aliceSide = open(a, 'connect', 'alice');
  const bobSide = open(b, 'listen', 'bob', filesAtBob);
  await Promise.all([once(aliceSide.session, 'open'), once(bobSide.session, 'open')]);
  return { alice: new FileLane(aliceSide.session), bob: new FileLane(bobSide.session), aliceSide, bobSide };
}

/** A file in memory, read in pieces of `readBytes` (as fs streams do). */
function source(data: Buffer, { name = 'report.pdf', readBytes = 64 * 1024 } = {}): Source & { opened: number } {
  const result = {
    name,
    size: data.length,
    key: createHash('sha256').update(name).digest('hex').slice(0, 32),
    opened: 0,
    open(): Readable {
      result.opened++;
      let at = 0;
      return new Readable({
        highWaterMark: readBytes,
        read() {
          if (at >= data.length) return void this.push(null);
          this.push(data.subarray(at, at + readBytes));
          at += readBytes;
        },
      });
    },
  };
  return result;
}

interface Kept {
  destination: Destination;
  /** The file as it stands: the prefix held before, then what was written. */
  contents: () => Buffer;
  startedAt: number | null;
  kept: boolean;
  discarded: boolean;
  /** Bytes handed to the sink and not written (a stalled disk holds them). */
  heldBytes: () => number;
  /** The stalled disk writes again. */
  unstall: () => void;
}

/** A destination in memory; `prefix`: bytes already held from a cut transfer; `stall`: a disk that does not finish writes. */
function destination({ prefix = Buffer.alloc(0), stall = false } = {}): Kept {
  let file = [Buffer.from(prefix)];
  let stalled: (() => void) | null = null;
  let sink: Writable | null = null;
  const kept: Kept = {
    startedAt: null,
    kept: false,
    discarded: false,
    heldBytes: () => sink?.writableLength ?? 0,
    unstall: () => {
      stall = false;
      if (stalled) setImmediate(stalled);
    },
    contents: () => Buffer.concat(file),
    destination: {
      offset: prefix.length,
      prefix: createHash('sha256').update(prefix),
      open(start: number): Writable {
        kept.startedAt = start;
        file = [Buffer.concat(file).subarray(0, start)];
        sink = new Writable({
          write(chunk: Buffer, _encoding, callback) {
            file.push(Buffer.from(chunk)); // a copy: the session may reuse the buffer once the write is done
            // A disk completes a write in a later turn of the event loop, never at once.
            if (stall) stalled = callback;
            else setImmediate(callback);
          },
        });
        return sink;
      },
      keep: () => {
        kept.kept = true;
        return Promise.resolve('report.pdf');
      },
      discard: () => {
        kept.discarded = true;
        return Promise.resolve();
      },
    },
  };
  return kept;
}

/** Waits (up to 10 s, in 5 ms steps) until `done()`; the assertion after it says what was expected. */
async function until(done: () => boolean): Promise<void> {
  for (let i = 0; i < 2000 && !done(); i++) await new Promise((resolve) => setTimeout(resolve, 5));
}

async function offerAndAccept(
  alice: FileLane,
  bob: FileLane,
  data: Buffer,
  kept: Kept,
): Promise<{ sending: OutgoingTransfer; receiving: IncomingTransfer }> {
  const offered = once(bob, 'offer') as Promise<[IncomingTransfer]>;
  const sending = alice.offer(source(data));
  const [receiving] = await offered;
  receiving.accept(kept.destination);
  return { sending, receiving };
}

describe('a file from one lanchat peer to another', () => {
  it('is offered, accepted, streamed and verified: the receiver keeps exactly the bytes sent', async () => {
    const { alice, bob } = await lanes();
    const data = randomBytes(3 * 1024 * 1024 + 12_345);
    const kept = destination();
    const { sending, receiving } = await offerAndAccept(alice, bob, data, kept);
    expect(receiving.name).toBe('report.pdf');
    expect(receiving.size).toBe(data.length);
    const [sent, received] = await Promise.all([sending.done, receiving.done]);
    expect(sent).toEqual({ state: 'done' });
    expect(received).toEqual({ state: 'done', savedAs: 'report.pdf' });
    expect(kept.contents().equals(data)).toBe(true);
    expect(kept.kept).toBe(true);
    expect(receiving.bytes).toBe(data.length);
    expect(sending.bytes).toBe(data.length); // the sender's progress is what the receiver wrote
  });

  it('an empty file arrives too', async () => {
    const { alice, bob } = await lanes();
    const kept = destination();
    const { sending, receiving } = await offerAndAccept(alice, bob, Buffer.alloc(0), kept);
    expect((await Promise.all([sending.done, receiving.done])).map((end) => end.state)).toEqual(['done', 'done']);
    expect(kept.kept).toBe(true);
  });

  it('a declined offer ends at both sides, with the reason at the sender', async () => {
    const { alice, bob } = await lanes();
    const offered = once(bob, 'offer') as Promise<[IncomingTransfer]>;
    const sending = alice.offer(source(randomBytes(1000)));
    const [receiving] = await offered;
    receiving.decline('not enough space: 1 kB free');
    expect(await sending.done).toEqual({ state: 'declined', why: 'not enough space: 1 kB free' });
    expect((await receiving.done).state).toBe('declined');
  });

  it('resumes: a receiver holding the right prefix gets only the rest', async () => {
    const { alice, bob } = await lanes();
    const data = randomBytes(2 * 1024 * 1024);
    const kept = destination({ prefix: data.subarray(0, 1_500_000) });
    const written: number[] = [];
    bob.on('progress', (transfer) => void written.push(transfer.bytes));
    const { sending, receiving } = await offerAndAccept(alice, bob, data, kept);
    await Promise.all([sending.done, receiving.done]);
    expect(kept.startedAt).toBe(1_500_000);
    expect(receiving.startedFrom).toBe(1_500_000);
    expect(written[0]).toBe(1_500_000);
    expect(kept.contents().equals(data)).toBe(true);
  });

  it('starts over when the prefix the receiver holds is not this file’s', async () => {
    const { alice, bob } = await lanes();
    const data = randomBytes(1024 * 1024);
    const other = Buffer.from(data.subarray(0, 500_000));
    other[1234] ^= 0xff;
    const kept = destination({ prefix: other });
    const { sending, receiving } = await offerAndAccept(alice, bob, data, kept);
    expect(await Promise.all([sending.done, receiving.done])).toEqual([{ state: 'done' }, { state: 'done', savedAs: 'report.pdf' }]);
    expect(kept.startedAt).toBe(0);
    expect(kept.contents().equals(data)).toBe(true);
  });

  it('starts over when the receiver claims more than the file holds', async () => {
    const { alice, bob } = await lanes();
    const data = randomBytes(10_000);
    const offered = once(bob, 'offer') as Promise<[IncomingTransfer]>;
    const shorter = source(data.subarray(0, 5000));
    const sending = alice.offer({ ...shorter, size: data.length, open: () => source(data).open() });
    const [receiving] = await offered;
    const kept = destination({ prefix: randomBytes(20_000) }); // longer than the offer: accepted from 0
    receiving.accept(kept.destination);
    expect((await Promise.all([sending.done, receiving.done])).map((end) => end.state)).toEqual(['done', 'done']);
    expect(kept.startedAt).toBe(0);
  });

  it('never runs more than the window ahead of a receiver whose disk is stuck, and text still flows', async () => {
    const { alice, bob, aliceSide, bobSide } = await lanes();
    const data = randomBytes(16 * 1024 * 1024);
    const kept = destination({ stall: true });
    const { sending, receiving } = await offerAndAccept(alice, bob, data, kept);
    // The sender stops once a window of bytes waits at the receiver's disk.
    await until(() => kept.heldBytes() >= WINDOW_BYTES - CHUNK_BYTES);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(kept.heldBytes()).toBeLessThanOrEqual(WINDOW_BYTES + 64 * 1024);
    // The session still reads: a line said now arrives while the file waits.
    aliceSide.session.send('msg', Buffer.from('still here\n'), 1);
    await until(() => bobSide.text.some((t) => t.body.toString() === 'still here\n'));
    expect(receiving.state).toBe('active');
    // The disk comes back: the rest follows, whole.
    kept.unstall();
    expect((await Promise.all([sending.done, receiving.done])).map((end) => end.state)).toEqual(['done', 'done']);
    expect(kept.contents().equals(data)).toBe(true);
  });

  it('a line typed during a transfer arrives before the file is done', async () => {
    const { alice, bob, bobSide, aliceSide } = await lanes();
    const data = randomBytes(8 * 1024 * 1024);
    const kept = destination();
    const { sending, receiving } = await offerAndAccept(alice, bob, data, kept);
    await once(bob, 'progress');
    aliceSide.session.send('msg', Buffer.from('hello during\n'), 1);
    await until(() => bobSide.text.length > 0);
    expect(receiving.state).toBe('active');
    expect(receiving.bytes).toBeLessThan(data.length / 2);
    await Promise.all([sending.done, receiving.done]);
  });

  it('the sender may cancel: the receiver is told why and keeps what came', async () => {
    const { alice, bob } = await lanes();
    const kept = destination({ stall: true });
    const { sending, receiving } = await offerAndAccept(alice, bob, randomBytes(8 * 1024 * 1024), kept);
    await once(bob, 'progress');
    sending.cancel('cancelled by alice');
    expect(await receiving.done).toEqual({ state: 'failed', why: 'cancelled by alice' });
    expect(kept.discarded).toBe(false);
  });

  it('when the session ends mid-transfer, both sides fail with the reason the lane is given', async () => {
    const { alice, bob, aliceSide, bobSide } = await lanes();
    const kept = destination({ stall: true });
    const { sending, receiving } = await offerAndAccept(alice, bob, randomBytes(8 * 1024 * 1024), kept);
    await once(bob, 'progress');
    aliceSide.session.quit();
    await Promise.all([aliceSide.session.done, bobSide.session.done]);
    alice.close('the connection ended');
    bob.close('alice left');
    expect(await sending.done).toEqual({ state: 'failed', why: 'the connection ended' });
    expect(await receiving.done).toEqual({ state: 'failed', why: 'alice left' });
    expect(alice.pending).toEqual([]);
  });

  it('a session that does not take files ignores file frames and does not offer the feature', async () => {
    const { aliceSide, bobSide } = await lanes(false);
    expect(aliceSide.session.canSendFiles).toBe(false);
    expect(bobSide.session.canSendFiles).toBe(false);
    expect(bobSide.session.peerFeatures).toContain('file');
  });
});

describe('a receiver checks what a sender claims', () => {
  /** A raw sender (the test writes its frames) and a lanchat receiver with a lane. */
  async function rawSender(): Promise<{ write: (line: string | Buffer) => void; bob: FileLane; frames: Frame[] }> {
    const [raw, b] = duplexPair();
    raw.on('error', () => {});
    const bobSide = open(b, 'listen', 'bob');
    const frames: Frame[] = [];
    const decoder = new FrameDecoder(DEFAULT_MAX_LINE);
    raw.on('data', (chunk: Buffer) => decoder.push(chunk, (frame) => frames.push(frame)));
    raw.write('{"type":"hello","version":1,"nick":"mallory","maxLine":65536,"features":["file"]}\n');
    await once(bobSide.session, 'open');
    return { write: (line) => raw.write(line), bob: new FileLane(bobSide.session), frames };
  }

  async function accepted(
    write: (line: string | Buffer) => void,
    bob: FileLane,
    size: number,
  ): Promise<{ receiving: IncomingTransfer; kept: Kept }> {
    const offered = once(bob, 'offer') as Promise<[IncomingTransfer]>;
    write(`{"type":"offer","file":1,"name":"x.bin","bytes":${size},"key":"0123456789abcdef"}\n`);
    const [receiving] = await offered;
    const kept = destination();
    receiving.accept(kept.destination);
    write('{"type":"start","file":1,"offset":0}\n');
    return { receiving, kept };
  }

  it('bytes whose SHA-256 does not match are thrown away, and the sender is told', async () => {
    const { write, bob, frames } = await rawSender();
    const { receiving, kept } = await accepted(write, bob, 4);
    write(Buffer.concat([Buffer.from('{"type":"chunk","file":1,"size":4}\n'), Buffer.from([0, 0xff, 0x0a, 0x7b])]));
    write(`{"type":"sent","file":1,"sha256":"${'0'.repeat(64)}"}\n`);
    const end: TransferEnd = await receiving.done;
    expect(end).toEqual({ state: 'failed', why: 'the data did not match its SHA-256' });
    expect(kept.discarded).toBe(true);
    expect(kept.kept).toBe(false);
    expect(frames).toContainEqual({ type: 'decline', file: 1, why: 'the data did not match its SHA-256' });
  });

  it('more bytes than offered are refused', async () => {
    const { write, bob } = await rawSender();
    const { receiving } = await accepted(write, bob, 2);
    write('{"type":"chunk","file":1,"size":3}\nabc');
    expect(await receiving.done).toEqual({ state: 'failed', why: 'more bytes came than were offered' });
  });

  it('fewer bytes than offered are refused at the end', async () => {
    const { write, bob } = await rawSender();
    const { receiving } = await accepted(write, bob, 5);
    write('{"type":"chunk","file":1,"size":3}\nabc');
    write(`{"type":"sent","file":1,"sha256":"${createHash('sha256').update('abc').digest('hex')}"}\n`);
    expect(await receiving.done).toEqual({ state: 'failed', why: '3 bytes came of the 5 offered' });
  });

  it('binary chunk bodies are decoded as they are, in pieces, with no line rules', () => {
    const decoder = new FrameDecoder(16);
    const frames: Frame[] = [];
    const body = Buffer.from([0x00, 0xff, 0xfe, 0x7b, 0x0a, 0x0a, 0x80]);
    const wire = Buffer.concat([Buffer.from(`{"type":"chunk","file":3,"size":${body.length}}\n`), body]);
    decoder.push(wire.subarray(0, 40), (frame) => frames.push(frame));
    decoder.push(wire.subarray(40), (frame) => frames.push(frame));
    const chunks = frames.filter((frame) => frame.type === 'chunk');
    expect(Buffer.concat(chunks.flatMap((frame) => frame.parts)).equals(body)).toBe(true);
    expect(chunks.map((frame) => frame.last)).toEqual([false, true]);
  });

  it.each([
    ['{"type":"offer","file":0,"name":"a","bytes":1,"key":"0123456789abcdef"}', 'an offer frame has no valid file id'],
    ['{"type":"offer","file":1,"name":"","bytes":1,"key":"0123456789abcdef"}', 'an offer has no valid name'],
    ['{"type":"offer","file":1,"name":"a","bytes":-1,"key":"0123456789abcdef"}', "an offer's bytes is invalid"],
    ['{"type":"offer","file":1,"name":"a","bytes":1,"key":"XYZ"}', 'an offer has no valid key'],
    ['{"type":"accept","file":1,"offset":5}', "an accept's prefix is not a SHA-256 in hex"],
    ['{"type":"sent","file":1,"sha256":"abc"}', "a sent frame's sha256 is not a SHA-256 in hex"],
    ['{"type":"got","file":1,"bytes":1.5}', "a got's bytes is invalid"],
    ['{"type":"got","file":1,"bytes":1,"size":2}\nab', 'a got frame carries a body'],
    ['{"type":"chunk","file":1,"size":0}', 'a chunk has no data'],
  ])('refuses %s', (line, message) => {
    expect(() => new FrameDecoder(DEFAULT_MAX_LINE).push(Buffer.from(line + '\n'), () => {})).toThrow(message);
  });
});
