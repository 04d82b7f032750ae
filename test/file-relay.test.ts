// Files in a room (src/file-relay.ts through src/room.ts), in-process over
// duplex pairs with backpressure: members are lanchat sessions with a
// FileLane, raw frame writers played by the test, or netcat lines. A file
// goes from one member to another through the host, streamed and never kept
// there; refusals; leaving mid-transfer; what the host holds for a member
// that does not read; a sender that ignores the window; text beside a file.
import { EventEmitter, once } from 'node:events';
import { createHash, randomBytes } from 'node:crypto';
import { Readable, Writable, type Duplex } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DEFAULT_MAX_LINE, FrameDecoder, encodeControl, type Frame, type RoomFrame } from '../src/protocol.js';
import { Room } from '../src/room.js';
import { ACTIVE_PER_RECEIVER, RELAY_AHEAD_BYTES } from '../src/file-relay.js';
import { openSession, type Incoming, type LanchatSession, type Session } from '../src/session.js';
import { FileLane, WINDOW_BYTES, type Destination, type IncomingTransfer, type Source } from '../src/transfer.js';
import { duplexPair } from './duplex-pair.js';
import { until } from './until.js';

const rooms: Room[] = [];
const sessions: Session[] = [];
const streams: Duplex[] = [];
afterEach(async () => {
  vi.useRealTimers();
  for (const session of sessions.splice(0)) session.quit();
  for (const stream of streams.splice(0)) stream.destroy();
  await Promise.all(rooms.splice(0).map((room) => room.close()));
});

/** Waits (up to 10 s, in 5 ms steps) until `done()`, for what no event says (bytes held); the assertion after it says what was expected. */
async function poll(done: () => boolean): Promise<void> {
  for (let i = 0; i < 2000 && !done(); i++) await new Promise((resolve) => setTimeout(resolve, 5));
}

interface Host {
  room: Room;
  seen: string[];
  events: string[];
  changes: EventEmitter;
}

function hostRoom(session: { idleMs?: number } = {}): Host {
  const changes = new EventEmitter();
  const seen: string[] = [];
  const events: string[] = [];
  const room = new Room({
    name: 'dev',
    hostNick: 'alice',
    maxMembers: 50,
    session: { maxLine: DEFAULT_MAX_LINE, waitMs: 2000, aliveMs: 0, ...session },
    deliver: (text, written) => {
      seen.push(`${text.nick}: ${text.body.toString()}`);
      changes.emit('change');
      setImmediate(written);
      return true;
    },
  });
  room.on('joined', (member) => events.push(`joined ${member.nick}`));
  room.on('left', (nick, why) => events.push(`left ${nick} (${why})`));
  for (const event of ['joined', 'left'] as const) room.on(event, () => changes.emit('change'));
  rooms.push(room);
  return { room, seen, events, changes };
}

let nextPort = 41_000;

/** A connection the door let in: the host's end joins the room; returns both ends. */
function admit(room: Room, plain = false): { member: Duplex; atHost: Duplex } {
  const [atHost, member] = duplexPair();
  for (const end of [atHost, member]) end.on('error', () => {});
  streams.push(atHost, member);
  room.join({ stream: atHost, from: { host: '127.0.0.1', port: nextPort++ }, security: { plain } });
  return { member, atHost };
}

interface Member {
  session: LanchatSession;
  /** Its files (null: an older lanchat, without the feature). */
  lane: FileLane | null;
  /** Its end of the link, and the host's. */
  end: Duplex;
  atHost: Duplex;
  seen: string[];
  frames: RoomFrame[];
  offers: IncomingTransfer[];
  changes: EventEmitter;
}

async function member(host: Host, nick: string, { files = true } = {}): Promise<Member> {
  const { member: end, atHost } = admit(host.room);
  const changes = new EventEmitter();
  const seen: string[] = [];
  const session = openSession(end, {
    role: 'connect',
    nick,
    maxLine: DEFAULT_MAX_LINE,
    waitMs: 2000,
    aliveMs: 0,
    files,
    deliver: (text: Incoming, written) => {
      seen.push(`${text.nick}: ${text.body.toString()}`);
      changes.emit('change');
      setImmediate(written);
      return true;
    },
  }) as LanchatSession;
  sessions.push(session);
  const frames: RoomFrame[] = [];
  session.on('room', (frame) => {
    frames.push(frame);
    changes.emit('change');
  });
  session.on('peer-done', () => session.finish());
  const lane = files ? new FileLane(session) : null;
  const offers: IncomingTransfer[] = [];
  lane?.on('offer', (transfer) => {
    offers.push(transfer);
    changes.emit('change');
  });
  await once(session, 'open');
  return { session, lane, end, atHost, seen, frames, offers, changes };
}

/** A file in memory, read 1 MiB at a time (as lanchat reads a file). */
function source(data: Buffer, name = 'report.pdf'): Source {
  const readBytes = 1024 * 1024;
  return {
    name,
    size: data.length,
    key: createHash('sha256').update(name).digest('hex').slice(0, 32),
    open(): Readable {
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
}

interface Kept {
  destination: Destination;
  contents: () => Buffer;
  /** Bytes handed to the disk: written, or waiting for a stalled write. */
  handed: () => number;
  startedAt: number | null;
  discarded: boolean;
  unstall: () => void;
}

/** A destination in memory; `prefix`: held from a cut transfer; `stall`: a disk that finishes no write until unstalled. */
function destination({ prefix = Buffer.alloc(0), stall = false } = {}): Kept {
  let file = [Buffer.from(prefix)];
  const stalled: Array<() => void> = [];
  let sink: Writable | null = null;
  const kept: Kept = {
    startedAt: null,
    discarded: false,
    unstall: () => {
      stall = false;
      for (const callback of stalled.splice(0)) setImmediate(callback);
    },
    contents: () => Buffer.concat(file),
    handed: () => Buffer.concat(file).length + (sink?.writableLength ?? 0),
    destination: {
      offset: prefix.length,
      prefix: createHash('sha256').update(prefix),
      open(start: number): Writable {
        kept.startedAt = start;
        file = [Buffer.concat(file).subarray(0, start)];
        sink = new Writable({
          write(chunk: Buffer, _encoding, callback) {
            file.push(Buffer.from(chunk));
            if (stall) stalled.push(callback);
            else setImmediate(callback);
          },
        });
        return sink;
      },
      keep: () => Promise.resolve('report.pdf'),
      discard: () => {
        kept.discarded = true;
        return Promise.resolve();
      },
    },
  };
  return kept;
}

/** `from` offers `data` to `to`; `to` accepts it into `kept` (what arrives at `to` comes back). */
async function sendAndAccept(from: FileLane, to: Member, nick: string, data: Buffer, kept: Kept) {
  const count = to.offers.length;
  const sending = from.offer(source(data), nick);
  await until(to.changes, () => to.offers.length > count);
  const receiving = to.offers[count];
  receiving.accept(kept.destination);
  return { sending, receiving };
}

/** A member played by hand: its frames written and read by the test. */
function rawMember(host: Host, nick: string): { write: (data: string | Buffer) => void; frames: Frame[]; changes: EventEmitter } {
  const { member: end } = admit(host.room);
  const changes = new EventEmitter();
  const frames: Frame[] = [];
  const decoder = new FrameDecoder(DEFAULT_MAX_LINE);
  end.on('data', (chunk: Buffer) => {
    decoder.push(chunk, (frame) => frames.push(frame));
    changes.emit('change');
  });
  end.write(encodeControl({ type: 'hello', version: 1, nick, maxLine: DEFAULT_MAX_LINE, features: ['room', 'file'] }));
  return { write: (data) => end.write(data), frames, changes };
}

describe('Files in a room: one member to another, through the host', () => {
  it('arrives byte-identical, offered as from its sender; nobody else sees it; the host keeps none of it', async () => {
    const host = hostRoom();
    const bob = await member(host, 'bob');
    const carol = await member(host, 'carol');
    const dave = await member(host, 'dave');
    expect(bob.session.canSendFiles).toBe(true); // the host's hello lists `file`
    const data = randomBytes(9 * 1024 * 1024 + 12_345); // more than two windows
    const kept = destination();
    const { sending, receiving } = await sendAndAccept(bob.lane!, carol, 'CAROL', data, kept);
    expect(receiving).toMatchObject({ from: 'bob', name: 'report.pdf', size: data.length });
    expect(sending.to).toBe('CAROL');
    expect(await Promise.all([sending.done, receiving.done])).toEqual([{ state: 'done' }, { state: 'done', savedAs: 'report.pdf' }]);
    expect(kept.contents().equals(data)).toBe(true);
    expect(sending.bytes).toBe(data.length); // bob's progress is what carol wrote
    expect(dave.offers).toEqual([]);
    expect(host.room.fileBytesHeld).toBe(0);
  });

  it('resumes end to end: a receiver holding the right prefix gets only the rest', async () => {
    const host = hostRoom();
    const bob = await member(host, 'bob');
    const carol = await member(host, 'carol');
    const data = randomBytes(3 * 1024 * 1024);
    const kept = destination({ prefix: data.subarray(0, 2_000_000) });
    const { sending, receiving } = await sendAndAccept(bob.lane!, carol, 'carol', data, kept);
    await Promise.all([sending.done, receiving.done]);
    expect(kept.startedAt).toBe(2_000_000);
    expect(receiving.startedFrom).toBe(2_000_000);
    expect(kept.contents().equals(data)).toBe(true);
  });

  it('the host takes part: it sends to a member, and a member to it, as members do', async () => {
    const host = hostRoom();
    const hostLane = new FileLane(host.room.hostFiles);
    const carol = await member(host, 'carol');
    const toCarol = randomBytes(5 * 1024 * 1024 + 7);
    const kept = destination();
    const { sending, receiving } = await sendAndAccept(hostLane, carol, 'carol', toCarol, kept);
    expect(receiving.from).toBe('alice');
    expect((await Promise.all([sending.done, receiving.done])).map((end) => end.state)).toEqual(['done', 'done']);
    expect(kept.contents().equals(toCarol)).toBe(true);

    const toHost = randomBytes(5 * 1024 * 1024 + 11);
    const offered = once(hostLane, 'offer') as Promise<[IncomingTransfer]>;
    const fromCarol = carol.lane!.offer(source(toHost), 'Alice');
    const [atHost] = await offered;
    expect(atHost.from).toBe('carol');
    const keptAtHost = destination();
    atHost.accept(keptAtHost.destination);
    expect((await Promise.all([fromCarol.done, atHost.done])).map((end) => end.state)).toEqual(['done', 'done']);
    expect(keptAtHost.contents().equals(toHost)).toBe(true);
  });
});

describe('Files in a room: refusals', () => {
  it('an offer to a nick nobody has, to yourself, or to nobody named, is declined by the host, saying why', async () => {
    const host = hostRoom();
    const bob = await member(host, 'bob');
    const ends = await Promise.all(['zed', 'BOB'].map((to) => bob.lane!.offer(source(randomBytes(100)), to).done));
    expect(ends).toEqual([
      { state: 'declined', why: 'nobody of that name is here' },
      { state: 'declined', why: 'that is you' },
    ]);
    const unnamed = bob.lane!.offer(source(randomBytes(100)));
    expect(await unnamed.done).toEqual({ state: 'declined', why: 'in a room an offer says whom it is for (/send NICK PATH)' });
  });

  it('a member whose hello lacks `file` (an older lanchat) and a netcat member take no files: the sender is told', async () => {
    const host = hostRoom();
    const bob = await member(host, 'bob');
    const old = await member(host, 'carol', { files: false });
    const { member: plainEnd } = admit(host.room, true);
    let plainText = '';
    plainEnd.setEncoding('utf8').on('data', (text: string) => (plainText += text));
    await until(host.changes, () => host.room.names().includes('guest1'));
    expect(old.session.canSendFiles).toBe(false);
    const ends = await Promise.all(['carol', 'guest1'].map((to) => bob.lane!.offer(source(randomBytes(100)), to).done));
    expect(ends).toEqual([
      { state: 'declined', why: 'carol takes no files (an older lanchat, or netcat)' },
      { state: 'declined', why: 'guest1 takes no files (an older lanchat, or netcat)' },
    ]);
    expect(plainText).not.toContain('offer');
  });
});

describe('Files in a room: someone leaves mid-transfer', () => {
  it('the receiver leaves: the sender is told who left and why', async () => {
    const host = hostRoom();
    const bob = await member(host, 'bob');
    const carol = await member(host, 'carol');
    const kept = destination({ stall: true });
    const { sending } = await sendAndAccept(bob.lane!, carol, 'carol', randomBytes(8 * 1024 * 1024), kept);
    await once(carol.lane!, 'progress');
    carol.session.quit();
    expect(await sending.done).toEqual({ state: 'failed', why: 'carol left (quit)' });
    expect(host.room.fileBytesHeld).toBe(0);
  });

  it('the sender leaves: the receiver is told, and keeps what came for a resume', async () => {
    const host = hostRoom();
    const bob = await member(host, 'bob');
    const carol = await member(host, 'carol');
    const kept = destination({ stall: true });
    const { receiving } = await sendAndAccept(bob.lane!, carol, 'carol', randomBytes(8 * 1024 * 1024), kept);
    await once(carol.lane!, 'progress');
    bob.session.quit();
    expect(await receiving.done).toEqual({ state: 'failed', why: 'bob left (quit)' });
    expect(kept.discarded).toBe(false);
    kept.unstall();
  });
});

describe('Files in a room: nobody stalls the room, the host holds little', () => {
  it('a receiver that stops reading makes the host hold no more than the window; the sender waits, the others talk on', async () => {
    const host = hostRoom();
    const bob = await member(host, 'bob');
    const carol = await member(host, 'carol');
    const dave = await member(host, 'dave');
    const data = randomBytes(24 * 1024 * 1024);
    const kept = destination();
    const { sending, receiving } = await sendAndAccept(bob.lane!, carol, 'carol', data, kept);
    await once(carol.lane!, 'progress');
    carol.end.pause(); // carol's process stops reading its socket (suspended, say)
    // Bob runs on until a window waits for carol, most of it at the host.
    await poll(() => host.room.fileBytesHeld >= WINDOW_BYTES / 2);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const held = host.room.fileBytesHeld;
    expect(held).toBeGreaterThanOrEqual(WINDOW_BYTES / 2);
    expect(held).toBeLessThanOrEqual(RELAY_AHEAD_BYTES);
    expect(sending.bytes).toBeLessThan(data.length / 2);
    // The others talk on, and carol is not dropped for the file waiting for her.
    dave.session.send('msg', Buffer.from('still here\n'), 1);
    await until(bob.changes, () => bob.seen.includes('dave: still here\n'));
    expect(host.events.filter((event) => event.startsWith('left'))).toEqual([]);
    // When carol reads again, dave's line comes before the file's bytes that waited at the host.
    let fileBytesRead = 0;
    let fileBytesBeforeLine = -1;
    carol.session.on('file', (frame) => {
      if (frame.type === 'chunk') for (const part of frame.parts) fileBytesRead += part.length;
    });
    carol.changes.on('change', () => {
      if (fileBytesBeforeLine < 0 && carol.seen.includes('dave: still here\n')) fileBytesBeforeLine = fileBytesRead;
    });
    carol.end.resume();
    expect((await Promise.all([sending.done, receiving.done])).map((end) => end.state)).toEqual(['done', 'done']);
    expect(kept.contents().equals(data)).toBe(true);
    expect(host.room.fileBytesHeld).toBe(0);
    expect(fileBytesBeforeLine).toBeGreaterThanOrEqual(0);
    expect(fileBytesBeforeLine).toBeLessThan(1024 * 1024); // not behind the window's worth that waited
  });

  it('a sender that ignores the window is stopped by the host (both sides told), not buffered', async () => {
    const host = hostRoom();
    const carol = await member(host, 'carol');
    const mallory = rawMember(host, 'mallory');
    await until(host.changes, () => host.room.names().includes('mallory'));
    mallory.write(encodeControl({ type: 'offer', file: 1, name: 'x.bin', bytes: 64 * 1024 * 1024, key: '0123456789abcdef', to: 'carol' }));
    await until(carol.changes, () => carol.offers.length === 1);
    const kept = destination({ stall: true }); // carol writes nothing: no `got` lets mallory on
    carol.offers[0].accept(kept.destination);
    await until(mallory.changes, () => mallory.frames.some((frame) => frame.type === 'accept'));
    mallory.write(encodeControl({ type: 'start', file: 1, offset: 0 }));
    const piece = randomBytes(256 * 1024);
    for (let i = 0; i < 40; i++) mallory.write(Buffer.concat([Buffer.from(`{"type":"chunk","file":1,"size":${piece.length}}\n`), piece])); // 10 MiB
    const why = 'the sender ran more than 5 MiB ahead of the receiver (the host stopped it)';
    expect(await carol.offers[0].done).toEqual({ state: 'failed', why });
    await until(mallory.changes, () => mallory.frames.some((frame) => frame.type === 'decline'));
    expect(mallory.frames).toContainEqual({ type: 'decline', file: 1, why });
    expect(host.room.fileBytesHeld).toBeLessThanOrEqual(RELAY_AHEAD_BYTES);
    expect(host.room.names()).toContain('mallory'); // the transfer ends, not the member
    kept.unstall();
  });

  it(`a member takes ${ACTIVE_PER_RECEIVER} relayed files at once: a further accept waits its turn at the host`, async () => {
    const host = hostRoom();
    const bob = await member(host, 'bob');
    const carol = await member(host, 'carol');
    const files = [0, 1, 2].map(() => randomBytes(6 * 1024 * 1024));
    const kept = files.map(() => destination({ stall: true }));
    const sent = files.map((data, i) => bob.lane!.offer(source(data, `f${i}.bin`), 'carol'));
    await until(carol.changes, () => carol.offers.length === 3);
    carol.offers.forEach((offer, i) => offer.accept(kept[i].destination));
    // The first two run until their windows wait at carol's disk; the third is not started.
    await poll(() => kept.filter((disk) => disk.handed() >= WINDOW_BYTES).length >= ACTIVE_PER_RECEIVER);
    expect(sent.map((transfer) => transfer.state)).toEqual(['active', 'active', 'offered']);
    expect(carol.offers[2]).toMatchObject({ state: 'offered', accepted: true });
    for (const disk of kept) disk.unstall();
    expect((await Promise.all(sent.map((transfer) => transfer.done))).map((end) => end.state)).toEqual(['done', 'done', 'done']);
    files.forEach((data, i) => expect(kept[i].contents().equals(data)).toBe(true));
  });

  it('file bytes waiting for a member that does not read hold no sender of text back', async () => {
    const host = hostRoom();
    const bob = await member(host, 'bob');
    const carol = await member(host, 'carol');
    const dave = await member(host, 'dave');
    const { sending } = await sendAndAccept(bob.lane!, carol, 'carol', randomBytes(24 * 1024 * 1024), destination());
    await once(carol.lane!, 'progress');
    carol.end.pause();
    await poll(() => host.room.fileBytesHeld >= 1024 * 1024);
    // 100 KiB of text to everyone: carol's socket holds a file's chunk, but its text backlog is small.
    dave.session.send('msg', Buffer.from(`${'t'.repeat(1023)}\n`.repeat(100)), 100);
    await until(bob.changes, () => bob.seen.some((line) => line.startsWith('dave: ')));
    expect(dave.atHost.isPaused()).toBe(false);
    expect(sending.state).toBe('active');
    carol.end.resume();
  });
});

describe('Files in a room: --idle-timeout', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('a member busy with files is not idle', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
    const host = hostRoom({ idleMs: 1000 });
    const mallory = rawMember(host, 'mallory');
    const settle = async (): Promise<void> => {
      for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
    };
    await settle();
    expect(host.room.names()).toContain('mallory');
    for (let file = 1; file <= 4; file++) {
      mallory.write(encodeControl({ type: 'offer', file, name: 'x', bytes: 1, key: '0123456789abcdef', to: 'nobody' }));
      await settle();
      await vi.advanceTimersByTimeAsync(600);
    }
    expect(host.room.names()).toContain('mallory'); // 2.4 s, a file frame every 0.6 s
    await vi.advanceTimersByTimeAsync(1000);
    await settle();
    expect(host.events).toContain('left mallory (dropped: it said nothing for 1 s (--idle-timeout))');
  });
});
