// The room at its host (src/room.ts), in-process over duplex pairs with
// backpressure: members are lanchat sessions (connectors), raw frame writers
// played by the test, or plain (netcat) lines. Fan-out, private routing,
// unique nicks, history, delivery reports, and the budgets that keep one
// member from stalling the room.
import { EventEmitter, once } from 'node:events';
import type { Duplex } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  DEFAULT_MAX_LINE,
  FrameDecoder,
  encodeControl,
  encodeTextHeader,
  type Frame,
  type RoomFrame,
  type TextMeta,
} from '../src/protocol.js';
import { HISTORY_LINES, Room } from '../src/room.js';
import { openSession, type Incoming, type Session } from '../src/session.js';
import { duplexPair } from './duplex-pair.js';
import { until } from './until.js';

const rooms: Room[] = [];
const sessions: Session[] = [];
const streams: Duplex[] = [];
afterEach(async () => {
  for (const session of sessions.splice(0)) session.quit();
  for (const stream of streams.splice(0)) stream.destroy();
  await Promise.all(rooms.splice(0).map((room) => room.close()));
});

interface Host {
  room: Room;
  /** What the host's own output was handed: `nick: line` (private ones marked). */
  seen: string[];
  events: string[];
  changes: EventEmitter;
}

function hostRoom(options: { maxMembers?: number; hostNick?: string } = {}): Host {
  const changes = new EventEmitter();
  const seen: string[] = [];
  const events: string[] = [];
  const room = new Room({
    name: 'dev',
    hostNick: options.hostNick ?? 'alice',
    maxMembers: options.maxMembers ?? 50,
    session: { maxLine: DEFAULT_MAX_LINE, waitMs: 2000, aliveMs: 0 },
    deliver: (text, written) => {
      seen.push(...render(text));
      changes.emit('change');
      setImmediate(written);
      return true;
    },
  });
  room.on('joined', (member) => events.push(`joined ${member.nick}`));
  room.on('left', (nick, why) => events.push(`left ${nick} (${why})`));
  room.on('renamed', (from, nick) => events.push(`renamed ${from} ${nick}`));
  room.on('notice', (text) => events.push(`notice ${text}`));
  for (const event of ['joined', 'left', 'renamed', 'notice', 'confirmed'] as const) room.on(event, () => changes.emit('change'));
  rooms.push(room);
  return { room, seen, events, changes };
}

/** One line per line of text: `nick: line`, `nick (private): line`, `nick (earlier): line`. */
function render(text: Incoming): string[] {
  const mark = text.private ? ' (private)' : text.earlier ? ' (earlier)' : '';
  const lines = text.body.toString('utf8').split('\n').slice(0, -1);
  return lines.map((line) => (text.kind === 'me' ? `* ${text.nick}${mark} ${line}` : `${text.nick}${mark}: ${line}`));
}

let nextPort = 40_000;

/** A connection the door let in: the host's end joins the room, the test gets the member's end. */
function admit(room: Room, plain = false, memberOptions: Parameters<typeof duplexPair>[1] = {}): Duplex {
  const [hostEnd, memberEnd] = duplexPair({}, memberOptions);
  for (const end of [hostEnd, memberEnd]) end.on('error', () => {});
  streams.push(hostEnd, memberEnd);
  room.join({ stream: hostEnd, from: { host: '127.0.0.1', port: nextPort++ }, security: { plain } });
  return memberEnd;
}

interface LanchatMember {
  session: Session;
  seen: string[];
  frames: RoomFrame[];
  changes: EventEmitter;
  /** Output writes held back (a slow terminal): each releases one text. */
  held: Array<() => void>;
  ended: boolean;
}

/** A lanchat connector in the room; `slow`: its output takes text only when the test releases it. */
async function lanchatMember(host: Host, nick: string, slow = false): Promise<LanchatMember> {
  const changes = new EventEmitter();
  const member: LanchatMember = { session: null as unknown as Session, seen: [], frames: [], changes, held: [], ended: false };
  member.session = openSession(admit(host.room), {
    role: 'connect',
    nick,
    maxLine: DEFAULT_MAX_LINE,
    waitMs: 2000,
    aliveMs: 0,
    deliver: (text, written) => {
      member.seen.push(...render(text));
      changes.emit('change');
      if (!slow) {
        setImmediate(written);
        return true;
      }
      member.held.push(written);
      changes.emit('change');
      return false;
    },
  });
  member.session.on('room', (frame) => {
    member.frames.push(frame);
    changes.emit('change');
  });
  member.session.on('confirmed', () => changes.emit('change'));
  member.session.on('peer-done', () => member.session.finish());
  void member.session.done.then(() => {
    member.ended = true;
    changes.emit('change');
  });
  sessions.push(member.session);
  await once(member.session, 'open');
  return member;
}

const lines = (text: string): [Buffer, number] => [Buffer.from(text), text.split('\n').length - 1];

interface RawMember {
  end: Duplex;
  frames: Frame[];
  /** The text it got, as rendered lines (`from: line`). */
  seen: string[];
  changes: EventEmitter;
  send: (kind: 'msg' | 'me', id: number, text: string, meta?: TextMeta) => void;
  control: (frame: Parameters<typeof encodeControl>[0]) => void;
  closed: boolean;
}

/** A member played by hand: frames written and read by the test (it acks only when told to). */
function rawMember(host: Host, hello: object, options: { read?: boolean } = {}): RawMember {
  const end = admit(host.room);
  const changes = new EventEmitter();
  const decoder = new FrameDecoder(DEFAULT_MAX_LINE);
  const raw: RawMember = {
    end,
    frames: [],
    seen: [],
    changes,
    send: (kind, id, text, meta) => end.write(encodeTextHeader(kind, id, Buffer.byteLength(text), meta) + text),
    control: (frame) => end.write(encodeControl(frame)),
    closed: false,
  };
  end.on('close', () => {
    raw.closed = true;
    changes.emit('change');
  });
  end.on('end', () => {
    raw.closed = true;
    changes.emit('change');
  });
  if (options.read !== false) {
    end.on('data', (chunk: Buffer) => {
      decoder.push(chunk, (frame) => {
        raw.frames.push(frame);
        if (frame.type === 'msg' || frame.type === 'me') {
          const from = frame.meta?.from ?? '?';
          for (const line of Buffer.concat(frame.parts).toString().split('\n').slice(0, -1)) raw.seen.push(`${from}: ${line}`);
        }
      });
      changes.emit('change');
    });
  }
  end.write(encodeControl({ type: 'hello', version: 1, maxLine: DEFAULT_MAX_LINE, nick: 'raw', ...hello } as never));
  return raw;
}

interface PlainMember {
  end: Duplex;
  text: () => string;
  changes: EventEmitter;
}

/** A netcat member: lines both ways. */
async function plainMember(host: Host): Promise<PlainMember> {
  const end = admit(host.room, true);
  const changes = new EventEmitter();
  let text = '';
  end.setEncoding('utf8').on('data', (chunk: string) => {
    text += chunk;
    changes.emit('change');
  });
  const member = { end, text: () => text, changes };
  await until(changes, () => text.includes('* welcome'));
  return member;
}

const roomFrames = (raw: RawMember): Frame[] => raw.frames.filter((frame) => !['msg', 'me', 'hello'].includes(frame.type));

describe('Room: fan-out', () => {
  it('relays a public line to every member but its sender, from the host’s record of the connection', async () => {
    const host = hostRoom();
    const bob = await lanchatMember(host, 'bob');
    const carol = await lanchatMember(host, 'carol');
    const dave = await lanchatMember(host, 'dave');
    const plain = await plainMember(host);
    bob.session.send('msg', ...lines('hello all\nhéllo ✓ 日本語\n'));
    bob.session.send('me', ...lines('waves\n'));
    await until(carol.changes, () => carol.seen.length === 3);
    await until(dave.changes, () => dave.seen.length === 3);
    await until(host.changes, () => host.seen.length === 3);
    await until(plain.changes, () => plain.text().includes('waves'));
    const expected = ['bob: hello all', 'bob: héllo ✓ 日本語', '* bob waves'];
    expect(carol.seen).toEqual(expected);
    expect(dave.seen).toEqual(expected);
    expect(host.seen).toEqual(expected);
    expect(plain.text()).toContain('bob: hello all\nbob: héllo ✓ 日本語\n* bob waves\n');
    expect(bob.seen).toEqual([]); // never echoed to its sender
    // The host's own lines reach every member, under its nick.
    host.room.say('msg', ...lines('hi from the host\n'));
    await until(bob.changes, () => bob.seen.length === 1);
    await until(plain.changes, () => plain.text().includes('alice: hi from the host\n'));
    expect(bob.seen).toEqual(['alice: hi from the host']);
  });

  it('a member cannot speak as another: the `from` it puts on its frames is ignored', async () => {
    const host = hostRoom();
    const bob = await lanchatMember(host, 'bob');
    const plain = await plainMember(host);
    const mallory = rawMember(host, { nick: 'mallory', features: ['room'] });
    await until(mallory.changes, () => mallory.frames.some((frame) => frame.type === 'hello'));
    mallory.send('msg', 1, 'I am bob\n', { from: 'bob' });
    mallory.send('msg', 2, 'and this is earlier\n', { from: 'alice', earlier: true, private: true });
    await until(bob.changes, () => bob.seen.length === 2);
    await until(host.changes, () => host.seen.length === 2);
    await until(plain.changes, () => plain.text().includes('this is earlier'));
    expect(bob.seen).toEqual(['mallory: I am bob', 'mallory: and this is earlier']);
    expect(host.seen).toEqual(['mallory: I am bob', 'mallory: and this is earlier']);
    expect(plain.text()).toContain('mallory: I am bob\nmallory: and this is earlier\n');
  });

  it('refuses an old connector (no room feature) with an error frame telling it to update', async () => {
    const host = hostRoom();
    const old = rawMember(host, { nick: 'old' }); // a hello without features
    await until(old.changes, () => old.closed);
    expect(old.frames).toEqual([{ type: 'error', message: 'this is a room: update lanchat to join it' }]);
    expect(host.room.names()).toEqual(['alice']);
    expect(host.room.isFull).toBe(false);
  });

  it('is full once maxMembers are in (members still arriving count), and has room again when one leaves', async () => {
    const host = hostRoom({ maxMembers: 2 });
    const bob = await lanchatMember(host, 'bob');
    expect(host.room.isFull).toBe(false);
    admit(host.room); // let in, no hello yet: it holds a place
    expect(host.room.isFull).toBe(true);
    host.room.kick('bob', '');
    await until(bob.changes, () => bob.ended);
    await until(host.changes, () => !host.room.isFull);
  });
});

describe('Room: private messages', () => {
  it('a line with `to` reaches only that member, flagged private, and is delivered', async () => {
    const host = hostRoom();
    const bob = await lanchatMember(host, 'bob');
    const carol = await lanchatMember(host, 'carol');
    const plain = await plainMember(host);
    const mallory = rawMember(host, { nick: 'mallory', features: ['room'] });
    await until(mallory.changes, () => mallory.frames.some((frame) => frame.type === 'hello'));
    mallory.send('msg', 1, 'for carol only\n', { to: 'carol' });
    mallory.send('msg', 2, 'for the host\n', { to: 'ALICE' });
    await until(carol.changes, () => carol.seen.length === 1);
    await until(host.changes, () => host.seen.length === 1);
    expect(carol.seen).toEqual(['mallory (private): for carol only']);
    expect(host.seen).toEqual(['mallory (private): for the host']);
    await until(mallory.changes, () => mallory.frames.some((frame) => frame.type === 'delivered' && frame.id === 2));
    // A public line afterwards: bob and the plain member saw nothing private before it.
    mallory.send('msg', 3, 'public\n');
    await until(bob.changes, () => bob.seen.length === 1);
    await until(plain.changes, () => plain.text().includes('mallory: public'));
    expect(bob.seen).toEqual(['mallory: public']);
    expect(plain.text()).not.toContain('only');
    expect(plain.text()).not.toContain('host');
  });

  it('a plain member reads a private line marked as such', async () => {
    const host = hostRoom();
    const bob = await lanchatMember(host, 'bob');
    const plain = await plainMember(host);
    bob.session.send('msg', ...lines('psst\n'), undefined, { to: 'guest1' });
    await until(plain.changes, () => plain.text().includes('psst'));
    expect(plain.text()).toContain('bob (private): psst\n');
  });

  it('`to` a nick nobody has: undelivered (nobody of that name is here), and still delivered', async () => {
    const host = hostRoom();
    const mallory = rawMember(host, { nick: 'mallory', features: ['room'] });
    await until(mallory.changes, () => mallory.frames.some((frame) => frame.type === 'hello'));
    mallory.send('msg', 1, 'hello?\n', { to: 'nobody' });
    await until(mallory.changes, () => mallory.frames.some((frame) => frame.type === 'delivered'));
    expect(roomFrames(mallory).filter((frame) => frame.type !== 'ack')).toEqual([
      { type: 'here', nicks: ['alice'] },
      { type: 'undelivered', id: 1, nick: 'nobody', why: 'nobody of that name is here' },
      { type: 'delivered', id: 1 },
    ]);
    expect(host.seen).toEqual([]);
  });
});

describe('Room: nicks', () => {
  it('a second bob joins as bob2; the host and members learn it', async () => {
    const host = hostRoom();
    const bob = await lanchatMember(host, 'bob');
    const bob2 = await lanchatMember(host, 'bob');
    expect(bob2.session.nick).toBe('bob2');
    expect(bob2.frames[0]).toEqual({ type: 'here', nicks: ['alice', 'bob'] });
    await until(bob.changes, () => bob.frames.length > 1);
    expect(bob.frames).toContainEqual({ type: 'joined', nick: 'bob2' });
    expect(host.room.names()).toEqual(['alice', 'bob', 'bob2']);
    // A third asking for a look-alike of the host's nick does not get it either.
    const third = await lanchatMember(host, 'ALICE');
    expect(third.session.nick).toBe('ALICE2');
  });

  it.each([
    ['taken', 'carol'],
    ['the same but for case', 'CAROL'],
    ['a confusable look-alike (Cyrillic о)', 'car\u043el'],
    ['the host’s', 'alice'],
  ])('a rename to a nick that is %s is refused with a notice, and the nick stays', async (_what, wanted) => {
    const host = hostRoom();
    const bob = await lanchatMember(host, 'bob');
    await lanchatMember(host, 'carol');
    bob.session.setNick(wanted);
    await until(bob.changes, () => bob.frames.some((frame) => frame.type === 'notice'));
    expect(bob.frames.filter((frame) => frame.type === 'notice')).toEqual([
      { type: 'notice', message: `the nick ${wanted} is taken here` },
    ]);
    expect(bob.session.nick).toBe('bob');
    expect(host.room.names()).toEqual(['alice', 'bob', 'carol']);
  });

  it('a free rename is told to everyone, and the member speaks under its new nick', async () => {
    const host = hostRoom();
    const bob = await lanchatMember(host, 'bob');
    const carol = await lanchatMember(host, 'carol');
    bob.session.setNick('robert');
    await until(bob.changes, () => bob.session.nick === 'robert');
    await until(carol.changes, () => carol.frames.some((frame) => frame.type === 'renamed'));
    expect(carol.frames).toContainEqual({ type: 'renamed', from: 'bob', nick: 'robert' });
    expect(host.events).toContain('renamed bob robert');
    bob.session.send('msg', ...lines('new me\n'));
    await until(carol.changes, () => carol.seen.length === 1);
    expect(carol.seen).toEqual(['robert: new me']);
    // The old nick is free again.
    const other = await lanchatMember(host, 'bob');
    expect(other.session.nick).toBe('bob');
  });
});

describe('Room: history', () => {
  it(`a newcomer gets the last ${HISTORY_LINES} public lines marked earlier, never private ones`, async () => {
    const host = hostRoom();
    const bob = await lanchatMember(host, 'bob');
    const carol = await lanchatMember(host, 'carol');
    bob.session.send('msg', ...lines('first\n'));
    const said = Array.from({ length: 25 }, (_, i) => `line ${i}`);
    bob.session.send('msg', ...lines(said.map((line) => `${line}\n`).join('')));
    bob.session.send('msg', ...lines('secret\n'), undefined, { to: 'carol' });
    await until(carol.changes, () => carol.seen.length === 27);
    host.room.say('me', ...lines('nods\n'));
    host.room.sayTo('carol', 'msg', ...lines('host secret\n'));
    bob.session.send('msg', ...lines('last\n'));
    await until(carol.changes, () => carol.seen.length === 30);
    const dave = await lanchatMember(host, 'dave');
    await until(dave.changes, () => dave.seen.length === HISTORY_LINES);
    const expected = [...said.slice(-18).map((line) => `bob (earlier): ${line}`), '* alice (earlier) nods', 'bob (earlier): last'];
    expect(dave.seen).toEqual(expected);
    const plain = await plainMember(host);
    await until(plain.changes, () => plain.text().split('\n').length > HISTORY_LINES + 1);
    expect(plain.text()).toContain(expected.map((line) => `${line}\n`).join(''));
  });

  it('an empty line said alone, or first in a batch, is in the history', async () => {
    const host = hostRoom();
    const bob = await lanchatMember(host, 'bob');
    bob.session.send('msg', ...lines('\n'));
    bob.session.send('msg', ...lines('\nsecond\n'));
    await until(host.changes, () => host.seen.length === 3);
    const carol = await lanchatMember(host, 'carol');
    bob.session.send('msg', ...lines('now\n')); // after the history
    await until(carol.changes, () => carol.seen.includes('bob: now'));
    expect(carol.seen).toEqual(['bob (earlier): ', 'bob (earlier): ', 'bob (earlier): second', 'bob: now']);
  });
});

describe('Room: delivery', () => {
  it('delivered comes only once every present member has acked (the host’s output included)', async () => {
    const host = hostRoom();
    const sender = rawMember(host, { nick: 'sender', features: ['room'] });
    const late = rawMember(host, { nick: 'late', features: ['room'] }); // acks only when the test says
    const quick = await lanchatMember(host, 'quick');
    await until(late.changes, () => late.frames.some((frame) => frame.type === 'hello'));
    await until(sender.changes, () => sender.frames.some((frame) => frame.type === 'joined' && frame.nick === 'quick'));
    sender.send('msg', 1, 'one\n');
    await until(late.changes, () => late.seen.length === 1);
    await until(quick.changes, () => quick.seen.length === 1);
    await until(host.changes, () => host.seen.length === 1);
    await until(sender.changes, () => sender.frames.some((frame) => frame.type === 'ack'));
    // Everyone but `late` has it: no delivered yet. Another round trip through the room shows it is not on its way.
    quick.session.send('msg', ...lines('ping\n'));
    await until(sender.changes, () => sender.seen.length === 1);
    expect(sender.frames.some((frame) => frame.type === 'delivered')).toBe(false);
    const text = late.frames.find((frame) => frame.type === 'msg' && frame.meta?.from === 'sender') as { id: number };
    late.control({ type: 'ack', id: text.id });
    await until(sender.changes, () => sender.frames.some((frame) => frame.type === 'delivered'));
    expect(sender.frames.filter((frame) => frame.type === 'delivered' || frame.type === 'undelivered')).toEqual([
      { type: 'delivered', id: 1 },
    ]);
  });

  it('a member that leaves before acking: undelivered {nick, why} to the sender, then delivered', async () => {
    const host = hostRoom();
    const sender = rawMember(host, { nick: 'sender', features: ['room'] });
    const carol = rawMember(host, { nick: 'carol', features: ['room'] }); // never acks
    await until(sender.changes, () => sender.frames.some((frame) => frame.type === 'joined' && frame.nick === 'carol'));
    sender.send('msg', 1, 'one\n');
    sender.send('msg', 2, 'two\n');
    await until(carol.changes, () => carol.seen.length === 2);
    carol.end.destroy(); // gone without goodbye
    await until(sender.changes, () => sender.frames.some((frame) => frame.type === 'delivered' && frame.id === 2));
    // Told before any delivered covers a frame carol missed; delivered up to the last frame after it.
    const reports = sender.frames.filter((frame) => ['delivered', 'undelivered', 'left'].includes(frame.type));
    expect(reports.slice(0, 2)).toEqual([
      { type: 'left', nick: 'carol', why: 'lost' },
      { type: 'undelivered', id: 2, nick: 'carol', why: 'left (lost)' },
    ]);
    expect(reports.slice(2).every((frame) => frame.type === 'delivered')).toBe(true);
    expect(reports.at(-1)).toEqual({ type: 'delivered', id: 2 });
  });

  it('a piped lanchat member ends with every line confirmed once all present have them', async () => {
    const host = hostRoom();
    const bob = await lanchatMember(host, 'bob');
    const carol = await lanchatMember(host, 'carol');
    bob.session.send('msg', ...lines('a\nb\nc\n'));
    bob.session.finish();
    const end = await bob.session.done;
    expect(end).toMatchObject({ reason: 'finished', unconfirmed: 0 });
    expect(carol.seen).toEqual(['bob: a', 'bob: b', 'bob: c']);
    await until(carol.changes, () => carol.frames.some((frame) => frame.type === 'left'));
    expect(carol.frames).toContainEqual({ type: 'left', nick: 'bob', why: 'quit' });
  });
});

describe('Room: nobody stalls the room', () => {
  const BLOCK = `${'x'.repeat(1023)}\n`.repeat(63); // 63 KiB of lines, under one frame's limit

  it('a member that never reads is dropped once 1 MiB is queued for it, while the others keep receiving', async () => {
    const host = hostRoom();
    rawMember(host, { nick: 'stalled', features: ['room'] }, { read: false });
    const carol = await lanchatMember(host, 'carol');
    const bob = await lanchatMember(host, 'bob');
    await until(host.changes, () => host.room.names().includes('stalled'));
    const frames = 40; // 2.5 MiB in all
    let sent = 0;
    const pump = (): void => {
      let more = true;
      while (sent < frames && more) {
        more = bob.session.send('msg', ...lines(BLOCK));
        sent++;
      }
      if (sent < frames) bob.session.once('drain', pump);
      else bob.session.finish();
    };
    pump();
    await until(carol.changes, () => carol.frames.some((frame) => frame.type === 'left'));
    expect(carol.frames.find((frame) => frame.type === 'left')).toMatchObject({
      nick: 'stalled',
      why: expect.stringMatching(/^dropped: too slow/),
    });
    expect(host.events.find((event) => event.startsWith('left stalled'))).toMatch(/^left stalled \(dropped: too slow/);
    // Bob's input all arrives, and is confirmed (the dropped member reported as undelivered).
    const end = await bob.session.done;
    expect(end).toMatchObject({ reason: 'finished', unconfirmed: 0 });
    expect(carol.seen.length).toBe(frames * 63);
    expect(bob.frames).toContainEqual(
      expect.objectContaining({ type: 'undelivered', nick: 'stalled', why: expect.stringMatching(/^left \(dropped: too slow/) }),
    );
  });

  it('a member that reads slowly holds the sender back (its socket is paused) and is not dropped', async () => {
    const host = hostRoom();
    const slow = await lanchatMember(host, 'slow', true);
    const bob = await lanchatMember(host, 'bob');
    // Bob's link at the host: the room pauses it while slow has too much queued.
    const bobAtHost = streams[streams.length - 2];
    let paused = false;
    const frames = 48; // 3 MiB: more than the budget
    let sent = 0;
    const pump = (): void => {
      let more = true;
      while (sent < frames && more) {
        more = bob.session.send('msg', ...lines(BLOCK));
        sent++;
      }
      if (sent < frames) bob.session.once('drain', pump);
      else bob.session.finish();
    };
    pump();
    // Slow takes one text at a time, a little later each (a slow terminal), and looks at bob's link meanwhile.
    const releaser = setInterval(() => {
      paused ||= bobAtHost.isPaused();
      slow.held.shift()?.();
    }, 25);
    try {
      const end = await bob.session.done;
      expect(end).toMatchObject({ reason: 'finished', unconfirmed: 0 });
    } finally {
      clearInterval(releaser);
    }
    expect(paused).toBe(true);
    expect(host.events.filter((event) => event.startsWith('left'))).toEqual(['left bob (quit)']);
    expect(slow.seen.length).toBe(frames * 63);
    expect(slow.frames.filter((frame) => frame.type === 'left')).toEqual([{ type: 'left', nick: 'bob', why: 'quit' }]);
    expect(slow.ended).toBe(false);
    expect(bob.frames.some((frame) => frame.type === 'undelivered')).toBe(false);
  });
});

describe('Room: one turn of the event loop', () => {
  it('what one turn relays to a member reaches it at the end of the turn, in order (a busy room keeps its turns short)', async () => {
    const host = hostRoom();
    const carol = await plainMember(host);
    const members: PlainMember[] = [];
    for (let i = 0; i < 3; i++) members.push(await plainMember(host));
    const heard = carol.text().length;
    // Three members say two lines each in the same turn: carol's socket is written nothing until the turn ends.
    for (const [i, member] of members.entries()) member.end.write(`one ${i}\ntwo ${i}\n`);
    expect(carol.text().length).toBe(heard);
    await until(carol.changes, () => carol.text().includes('two 2'));
    expect(carol.text().slice(heard).split('\n').filter(Boolean)).toEqual(
      members.flatMap((_, i) => [`guest${i + 2}: one ${i}`, `guest${i + 2}: two ${i}`]),
    );
  });

  it('when members say more at once than one turn relays (4 MiB), it reads them no more until the next turn, then relays it all', async () => {
    const host = hostRoom();
    const members: PlainMember[] = [];
    for (let i = 0; i < 20; i++) members.push(await plainMember(host));
    const block = `${'y'.repeat(63)}\n`.repeat(512); // 32 KiB of lines from each: 608 KiB relayed, to 19 members
    const all = members.length * 512;
    const before = host.seen.length;
    // Queued before anything is said: it runs when the loop comes round (in a listener, to accept a newcomer).
    const relayedInFirstTurn = new Promise<number>((resolve) => setImmediate(() => resolve(host.seen.length - before)));
    for (const member of members) member.end.write(block);
    const inFirstTurn = await relayedInFirstTurn;
    expect(inFirstTurn).toBeGreaterThan(0);
    expect(inFirstTurn).toBeLessThan(all);
    await until(host.changes, () => host.seen.length - before === all);
    const heard = (member: PlainMember): number =>
      member
        .text()
        .split('\n')
        .filter((line) => line.endsWith('y'.repeat(63))).length;
    await Promise.all(members.map((member) => until(member.changes, () => heard(member) === all - 512)));
  });
});

describe('Room: a slow reader, on a fake clock', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  /** Lets the streams and sessions do what they can now (setImmediate stays real). */
  async function settle(turns = 20): Promise<void> {
    for (let i = 0; i < turns; i++) await new Promise((resolve) => setImmediate(resolve));
  }

  it('a member that takes a little every few hundred ms never stops holding the sender, however long it takes, and is never dropped', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
    const host = hostRoom();
    const slow = await lanchatMember(host, 'slow', true);
    const slowAtHost = streams[streams.length - 2];
    const bob = await lanchatMember(host, 'bob');
    const bobAtHost = streams[streams.length - 2];
    const BLOCK = `${'x'.repeat(1023)}\n`.repeat(63);
    const frames = 64; // 4 MiB
    let sent = 0;
    const pump = (): void => {
      let more = true;
      while (sent < frames && more) {
        more = bob.session.send('msg', ...lines(BLOCK));
        sent++;
      }
      if (sent < frames) bob.session.once('drain', pump);
      else bob.session.finish();
    };
    pump();
    await settle();
    expect(bobAtHost.isPaused()).toBe(true); // held: slow has more than the room lets wait for it
    let mostQueued = 0;
    // Slow takes one text every 300 ms (its socket is never idle for a second) until bob is done.
    for (let step = 0; step < 2000 && !bob.ended && !slow.ended; step++) {
      slow.held.shift()?.();
      await settle();
      mostQueued = Math.max(mostQueued, slowAtHost.writableLength);
      await vi.advanceTimersByTimeAsync(300);
    }
    expect(host.events.filter((event) => event.startsWith('left'))).toEqual(['left bob (quit)']);
    expect(await bob.session.done).toMatchObject({ reason: 'finished', unconfirmed: 0 });
    expect(slow.ended).toBe(false);
    expect(mostQueued).toBeLessThan(1024 * 1024);
    while (slow.held.length > 0) slow.held.shift()!();
    await until(slow.changes, () => slow.seen.length === frames * 63);
  });

  it('a member that reads nothing is dropped after 15 s even with less than 1 MiB queued for it', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
    const host = hostRoom();
    rawMember(host, { nick: 'stalled', features: ['room'] }, { read: false });
    const bob = await lanchatMember(host, 'bob');
    await settle();
    for (let i = 0; i < 6; i++) bob.session.send('msg', ...lines(`${'x'.repeat(1023)}\n`.repeat(63))); // 378 KiB
    await settle();
    await vi.advanceTimersByTimeAsync(10_000);
    await settle();
    expect(host.room.names()).toContain('stalled');
    await vi.advanceTimersByTimeAsync(10_000);
    await settle();
    expect(host.events.filter((event) => event.startsWith('left'))).toEqual(['left stalled (dropped: too slow: it read nothing for 15 s)']);
    expect(bob.frames).toContainEqual({ type: 'left', nick: 'stalled', why: 'dropped: too slow: it read nothing for 15 s' });
  });
});

describe('Room: kick and close', () => {
  it('kick drops a member with an error frame, and the others see why', async () => {
    const host = hostRoom();
    const bob = await lanchatMember(host, 'bob');
    const carol = await lanchatMember(host, 'carol');
    const plain = await plainMember(host);
    expect(host.room.kick('nobody', '')).toBe(false);
    expect(host.room.kick('BOB', 'spam')).toBe(true);
    const end = await bob.session.done;
    expect(end.error).toMatchObject({ code: 'ERR_PEER_ERROR', message: 'the peer reported an error: kicked by alice: spam' });
    await until(carol.changes, () => carol.frames.some((frame) => frame.type === 'left'));
    expect(carol.frames).toContainEqual({ type: 'left', nick: 'bob', why: 'kicked by alice: spam' });
    await until(plain.changes, () => plain.text().includes('left'));
    expect(plain.text()).toContain('* bob left (kicked by alice: spam)\n');
    expect(host.room.names()).toEqual(['alice', 'carol', 'guest1']);
  });

  it('close says goodbye to every member and resolves once they are gone', async () => {
    const host = hostRoom();
    const bob = await lanchatMember(host, 'bob');
    const plain = await plainMember(host);
    const plainEnded = once(plain.end, 'end');
    await host.room.close();
    expect(await bob.session.done).toMatchObject({ reason: 'peer-left', unconfirmed: 0 });
    await plainEnded;
  });
});

describe('Room: plain members', () => {
  it('reads nick: text lines, says lines under its guest nick, and can /nick, /me and /quit', async () => {
    const host = hostRoom();
    const bob = await lanchatMember(host, 'bob');
    const plain = await plainMember(host);
    expect(plain.text()).toBe('* welcome to dev: you are guest1; here: alice, bob (/help lists commands)\n');
    plain.end.write('hello there ✓\r\n/nick zed\n/me waves\n//slash\n');
    await until(bob.changes, () => bob.seen.length === 3);
    expect(bob.seen).toEqual(['guest1: hello there ✓', '* zed waves', 'zed: /slash']);
    expect(bob.frames).toContainEqual({ type: 'renamed', from: 'guest1', nick: 'zed' });
    expect(plain.text()).toContain('* you are now zed\n');
    plain.end.write('/quit\n');
    await until(bob.changes, () => bob.frames.some((frame) => frame.type === 'left'));
    expect(bob.frames).toContainEqual({ type: 'left', nick: 'zed', why: 'quit' });
  });

  it('says a Latin-1 line (bytes that are not UTF-8) with them escaped, to all, and stays', async () => {
    const host = hostRoom();
    const bob = await lanchatMember(host, 'bob');
    const plain = await plainMember(host);
    const other = await plainMember(host);
    plain.end.write(Buffer.from('caf\xe9 cr\xe8me\n', 'latin1'));
    await until(bob.changes, () => bob.seen.length === 1);
    expect(bob.seen).toEqual(['guest1: caf\\xe9 cr\\xe8me']);
    await until(other.changes, () => other.text().includes('guest1: caf'));
    expect(other.text()).toContain('guest1: caf\\xe9 cr\\xe8me\n');
    expect(host.seen).toEqual(['guest1: caf\\xe9 cr\\xe8me']);
    plain.end.write('and more\n');
    await until(bob.changes, () => bob.seen.length === 2);
    expect(host.events).not.toContainEqual(expect.stringMatching(/^left guest1/));
  });

  it('can /names and /msg (privately, to a member or nobody)', async () => {
    const host = hostRoom();
    const bob = await lanchatMember(host, 'bob');
    const plain = await plainMember(host);
    plain.end.write('/names\n/msg bob just you\n/msg nobody hi\n');
    await until(bob.changes, () => bob.seen.length === 1);
    expect(bob.seen).toEqual(['guest1 (private): just you']);
    await until(plain.changes, () => plain.text().includes('nobody else called'));
    expect(plain.text()).toContain('* here: alice, bob, guest1\n');
    expect(plain.text()).toContain('* nobody else called nobody is here\n');
  });
});
