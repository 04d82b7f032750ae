// A Chat that joins a room as a member, over a duplex pair whose other end is
// a FAKE host: frames written by hand (hello with room and you, here, text
// from members, joined/left/renamed, delivered/undelivered, notice), and the
// member's frames decoded as they come.
import { EventEmitter, once } from 'node:events';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, type Duplex } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import {
  DEFAULT_MAX_LINE,
  FrameDecoder,
  encodeControl,
  encodeTextHeader,
  type ControlFrame,
  type TextKind,
  type TextMeta,
} from '../src/protocol.js';
import { Chat, type ChatOptions } from '../src/chat.js';
import type { Format } from '../src/terminal.js';
import { duplexPair } from './duplex-pair.js';
import { Screen } from './screen.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A frame the member sent, text frames with their whole body. */
type Sent = (ControlFrame & { body?: undefined }) | { type: TextKind; id: number; meta?: TextMeta; body: string };

/**
 * The host's end, by hand. It answers the member's hello with a room hello
 * (`you`: the nick it gives), then sends whatever the test writes.
 */
function fakeHost(socket: Duplex, { room = 'lab', nick = 'alice', you = 'bob', features = [] as string[] } = {}) {
  const sent: Sent[] = [];
  const arrivals = new EventEmitter();
  const decoder = new FrameDecoder(DEFAULT_MAX_LINE);
  let text: { type: TextKind; id: number; meta?: TextMeta; parts: Buffer[] } | null = null;
  let nextId = 1;
  const take = (frame: Sent): void => {
    sent.push(frame);
    arrivals.emit('frame', frame);
  };
  socket.on('data', (chunk: Buffer) =>
    decoder.push(chunk, (frame) => {
      if (frame.type === 'hello') {
        expect(frame.features).toContain('room');
        socket.write(
          encodeControl({
            type: 'hello',
            version: 1,
            nick,
            maxLine: DEFAULT_MAX_LINE,
            room,
            you,
            ...(features.length > 0 && { features }),
          }),
        );
      }
      if (frame.type !== 'msg' && frame.type !== 'me') return take(frame as ControlFrame);
      text ??= { type: frame.type, id: frame.id, ...(frame.meta && { meta: frame.meta }), parts: [] };
      text.parts.push(...frame.parts.map((part) => Buffer.from(part)));
      if (!frame.last) return;
      const { parts, ...header } = text;
      text = null;
      take({ ...header, body: Buffer.concat(parts).toString() });
    }),
  );
  socket.on('error', () => {});
  cleanups.push(() => socket.destroy());
  return {
    sent,
    tell(frame: ControlFrame): void {
      socket.write(encodeControl(frame));
    },
    /** Says that every text frame the member sent so far reached the room. */
    deliverAll(): void {
      const ids = sent.flatMap((frame) => (frame.body === undefined ? [] : [frame.id]));
      if (ids.length > 0) socket.write(encodeControl({ type: 'delivered', id: Math.max(...ids) }));
    },
    /** Text from a member (as the host relays it); returns its id. */
    say(from: string, body: string, meta: Omit<TextMeta, 'from'> = {}, kind: TextKind = 'msg'): number {
      const id = nextId++;
      const bytes = Buffer.from(body);
      socket.write(encodeTextHeader(kind, id, bytes.length, { from, ...meta }));
      socket.write(bytes);
      return id;
    },
    /** The first frame the member sent that `match`es, once there is one (several frames may come in one chunk). */
    async next(match: (frame: Sent) => boolean, ms = 5000): Promise<Sent> {
      const signal = AbortSignal.timeout(ms);
      for (;;) {
        const found = sent.find(match);
        if (found) return found;
        try {
          await once(arrivals, 'frame', { signal });
        } catch {
          throw new Error(`timed out waiting for a frame; the member sent: ${JSON.stringify(sent)}`);
        }
      }
    },
  };
}

function memberChat(options: Partial<ChatOptions> & { format: Format; interactive: boolean }) {
  const stdin = new PassThrough();
  const stdout = new Screen();
  const stderr = new Screen();
  const cwd = mkdtempSync(join(tmpdir(), 'lanchat-member-'));
  cleanups.push(() => rmSync(cwd, { recursive: true, force: true }));
  const chat = new Chat(
    { stdin, stdout, stderr, cwd, signal: new AbortController().signal },
    { role: 'connect', nick: 'bob', maxLine: DEFAULT_MAX_LINE, commands: options.interactive, waitMs: 2000, ...options },
  );
  cleanups.push(() => chat.close());
  const [ours, theirs] = duplexPair();
  ours.on('error', () => {});
  return { chat, stdin, stdout, stderr, cwd, ours, theirs, type: (line: string) => stdin.write(`${line}\n`) };
}

const isAck = (id: number) => (frame: Sent) => frame.type === 'ack' && frame.id >= id;

describe('a member and files', () => {
  it('/send NICK PATH offers to that member alone; an offer names the member who makes it; /accept takes it', async () => {
    const member = memberChat({ format: 'pretty', interactive: true });
    const host = fakeHost(member.theirs, { features: ['file'] });
    void member.chat.run(member.ours, { host: '127.0.0.1', port: 5000 });
    await host.next((frame) => frame.type === 'hello');
    host.tell({ type: 'here', nicks: ['alice', 'carol'] });
    await member.stderr.waitFor(/^joined alice's room/m);
    writeFileSync(join(member.cwd, 'notes.txt'), 'hello carol\n');

    member.type('/send Carol notes.txt');
    const offer = await host.next((frame) => frame.type === 'offer');
    expect(offer).toMatchObject({ type: 'offer', file: 1, name: 'notes.txt', bytes: 12, to: 'carol' });
    await member.stderr.waitFor(/^offered notes\.txt \(12 B\) to carol$/m);
    member.type('/send zed notes.txt');
    await member.stderr.waitFor(/^nobody called zed is in the room \(\/names lists who is\)$/m);
    member.type('/send bob notes.txt');
    await member.stderr.waitFor(/^that is you$/m);
    member.type('/send carol');
    await member.stderr.waitFor(/^usage: \/send NICK PATH\.\.\.$/m);
    host.tell({ type: 'decline', file: 1, why: 'carol takes no files (an older lanchat, or netcat)' });
    await member.stderr.waitFor(/^lanchat: notes\.txt was not sent to carol: carol takes no files \(an older lanchat, or netcat\)$/m);

    const data = Buffer.from('from carol, through alice\n');
    host.tell({ type: 'offer', file: 7, from: 'carol', name: 'report.pdf', bytes: data.length, key: '0123456789abcdef' });
    await member.stderr.waitFor(/^carol offers report\.pdf \(26 B\) — \/accept \[DIR\] or \/decline$/m);
    mkdirSync(join(member.cwd, 'in'));
    member.type('/accept in');
    expect(await host.next((frame) => frame.type === 'accept')).toEqual({ type: 'accept', file: 7, offset: 0 });
    host.tell({ type: 'start', file: 7, offset: 0 });
    member.theirs.write(Buffer.concat([Buffer.from(`{"type":"chunk","file":7,"size":${data.length}}\n`), data]));
    host.tell({ type: 'sent', file: 7, sha256: createHash('sha256').update(data).digest('hex') });
    expect(await host.next((frame) => frame.type === 'received')).toEqual({ type: 'received', file: 7 });
    await member.stderr.waitFor(/^received report\.pdf \(26 B, sha256 verified\) in \.\/in$/m);
    expect(readFileSync(join(member.cwd, 'in', 'report.pdf'))).toEqual(data);

    // A decline says who declined: the member, not the host that passed the offer on.
    host.tell({ type: 'offer', file: 8, from: 'carol', name: 'more.pdf', bytes: 5, key: '0123456789abcdef' });
    await member.stderr.waitFor(/^carol offers more\.pdf \(5 B\)/m);
    member.type('/decline');
    expect(await host.next((frame) => frame.type === 'decline')).toEqual({ type: 'decline', file: 8, why: '' });
  });

  it('a host that relays no files (its hello lacks `file`) is said so at /send', async () => {
    const member = memberChat({ format: 'pretty', interactive: true });
    const host = fakeHost(member.theirs);
    void member.chat.run(member.ours, { host: '127.0.0.1', port: 5000 });
    await host.next((frame) => frame.type === 'hello');
    host.tell({ type: 'here', nicks: ['alice', 'carol'] });
    await member.stderr.waitFor(/^joined alice's room/m);
    member.type('/send carol notes.txt');
    await member.stderr.waitFor(/^lanchat: alice's room relays no files \(its lanchat is older\)$/m);
    expect(host.sent.some((frame) => frame.type === 'offer')).toBe(false);
  });
});

describe('a member at the keyboard', () => {
  it('says the room it joined in one line, shows who said what, private and earlier lines marked, and the room events', async () => {
    const member = memberChat({ format: 'pretty', interactive: true });
    const host = fakeHost(member.theirs);
    const ran = member.chat.run(member.ours, { host: '127.0.0.1', port: 5000 });

    await host.next((frame) => frame.type === 'hello');
    host.tell({ type: 'here', nicks: ['alice', 'carol'] });
    await member.stderr.waitFor(/^joined alice's room "lab" at 127\.0\.0\.1:5000 — here: alice, carol \(you are bob\)$/m);
    expect(member.stderr.text).not.toMatch(/connected to/);
    host.tell({ type: 'here', nicks: ['dave'] });
    await member.stderr.waitFor(/^also here: dave$/m);

    host.say('carol', 'before you came\n', { earlier: true });
    host.say('carol', 'psst\n', { private: true });
    host.say('alice', 'waves\n', {}, 'me');
    const last = host.say('dave', 'hello all\n');
    await host.next(isAck(last)); // every text frame is acked once written
    expect(member.stdout.text).toMatch(
      /^\[\d\d:\d\d\] \(earlier\) carol: before you came\n\[\d\d:\d\d\] carol \(private\): psst\n\[\d\d:\d\d\] \* alice waves\n\[\d\d:\d\d\] dave: hello all\n$/,
    );

    host.tell({ type: 'joined', nick: 'erin' });
    host.tell({ type: 'left', nick: 'carol', why: 'lost' });
    host.tell({ type: 'left', nick: 'erin', why: 'quit' });
    host.tell({ type: 'renamed', from: 'dave', nick: 'dv' });
    host.tell({ type: 'undelivered', id: 1, nick: 'carol', why: 'left (lost)' });
    host.tell({ type: 'notice', message: 'the nick \x1b[2Jcarol is taken' });
    await member.stderr.waitFor(/^erin joined\ncarol left \(lost\)\nerin left\ndave is now dv\nnot delivered to carol: left \(lost\)\n/m);
    await member.stderr.waitFor(/^notice from alice: the nick \\x1b\[2Jcarol is taken$/m);
    expect(member.stderr.count('not delivered to carol')).toBe(1);

    member.type('/names');
    await member.stderr.waitFor(/^3 members in alice's room "lab": alice \(host\), dv, bob \(you\)$/m);
    member.type('/who DV');
    await member.stderr.waitFor(/^dv is in alice's room "lab" \(where from, and with which key, only the host knows\)$/m);
    member.type('/who');
    await member.stderr.waitFor(/^in alice's room "lab" at 127\.0\.0\.1:5000, as bob\n3 members in/m);
    member.type('/kick dv');
    await member.stderr.waitFor(/^only the room's host can kick$/m);
    member.type('/help');
    await member.stderr.waitFor(/^ {2}\/msg NICK TEXT {6}say TEXT to NICK alone$/m);
    expect(member.stderr.text).toMatch(/^ {2}\/send NICK PATH\.\.\. {2}offer files to NICK alone/m);
    expect(member.stderr.text).not.toMatch(/^ {2}\/kick/m);

    member.type('/msg carol are you there?');
    await member.stderr.waitFor(/^nobody called carol is in the room \(\/names lists who is\)$/m);
    member.type('/msg Dv just for you');
    const whisper = await host.next((frame) => frame.body === 'just for you\n');
    expect(whisper).toMatchObject({ type: 'msg', meta: { to: 'dv' } });
    member.type('for everyone');
    const said = await host.next((frame) => frame.body === 'for everyone\n');
    expect(said).not.toHaveProperty('meta');
    expect(host.sent.filter((frame) => frame.body !== undefined)).toHaveLength(2); // the refused /msg sent nothing

    host.deliverAll();
    host.tell({ type: 'bye' });
    expect(await ran).toEqual({ failed: false });
    expect(member.stderr.text).toMatch(/^alice closed the room$/m);
  });

  it('/nick only asks the host: a taken nick is its notice, a granted one is "you are now"', async () => {
    const member = memberChat({ format: 'pretty', interactive: true });
    const host = fakeHost(member.theirs);
    const ran = member.chat.run(member.ours, { host: '127.0.0.1', port: 5000 });
    await host.next((frame) => frame.type === 'hello');
    host.tell({ type: 'here', nicks: ['alice', 'carol'] });
    await member.stderr.waitFor(/^joined alice's room/m);

    member.type('/nick carol');
    await host.next((frame) => frame.type === 'nick' && frame.nick === 'carol');
    host.tell({ type: 'notice', message: 'the nick carol is taken' });
    await member.stderr.waitFor(/^notice from alice: the nick carol is taken$/m);
    expect(member.stderr.text).not.toMatch(/you are now/);

    member.type('/nick robert');
    await host.next((frame) => frame.type === 'nick' && frame.nick === 'robert');
    host.tell({ type: 'renamed', from: 'bob', nick: 'robert' });
    await member.stderr.waitFor(/^you are now robert$/m);
    expect(member.stderr.text).not.toMatch(/bob is now robert/);
    member.type('/names');
    await member.stderr.waitFor(/^3 members in alice's room "lab": alice \(host\), carol, robert \(you\)$/m);
    member.type('/msg robert hi me');
    await member.stderr.waitFor(/^that is you$/m);

    // The host renames itself: the room's line follows.
    host.tell({ type: 'renamed', from: 'alice', nick: 'al' });
    await member.stderr.waitFor(/^alice is now al$/m);
    member.type('/who al');
    await member.stderr.waitFor(/^al hosts the room, at 127\.0\.0\.1:5000; not encrypted/m);
    member.stdin.end();
    expect(await ran).toEqual({ failed: false });
  });

  it('takes the nick the host gives when the one asked for is taken (the hello says "you")', async () => {
    const member = memberChat({ format: 'pretty', interactive: true });
    const host = fakeHost(member.theirs, { you: 'bob2' });
    const ran = member.chat.run(member.ours, { host: '127.0.0.1', port: 5000 });
    await host.next((frame) => frame.type === 'hello');
    host.tell({ type: 'here', nicks: ['alice', 'bob'] });
    await member.stderr.waitFor(/^joined alice's room "lab" at 127\.0\.0\.1:5000 — here: alice, bob \(you are bob2: bob was taken\)$/m);
    member.type('mine');
    await host.next((frame) => frame.body === 'mine\n');
    // The chat took the nick: its own lines are kept under it.
    member.type('/save room.txt');
    await member.stderr.waitFor(/^saved \d+ lines? to /m);
    const saved = readFileSync(join(member.cwd, 'room.txt'), 'utf8');
    expect(saved).toMatch(/\] bob2: mine$/m);
    expect(saved).not.toMatch(/\] bob: mine$/m);
    member.type('/msg bob hello other bob');
    const whisper = await host.next((frame) => frame.body === 'hello other bob\n');
    expect(whisper).toMatchObject({ meta: { to: 'bob' } });
    host.deliverAll();
    member.type('/who');
    await member.stderr.waitFor(/^every line you sent reached everyone in the room$/m);
    member.stdin.end();
    expect(await ran).toEqual({ failed: false });
  });
});

describe('a member in a pipe', () => {
  it('plain output is the bytes of the public lines of now: no history, no private lines', async () => {
    const member = memberChat({ format: 'plain', interactive: false });
    const host = fakeHost(member.theirs);
    const ran = member.chat.run(member.ours, { host: '127.0.0.1', port: 5000 });
    await host.next((frame) => frame.type === 'hello');
    host.tell({ type: 'here', nicks: ['alice', 'carol'] });
    host.say('carol', 'old news\n', { earlier: true });
    host.say('carol', 'secret\n', { private: true });
    host.say('carol', 'line one\nline two\r\n');
    const last = host.say('alice', 'hosts\n');
    await host.next(isAck(last));
    expect(member.stdout.text).toBe('line one\nline two\r\nhosts\n');
    host.tell({ type: 'bye' });
    member.stdin.end();
    expect(await ran).toEqual({ failed: false });
  });

  it('json names the room in every message and event, and marks private and earlier lines', async () => {
    const member = memberChat({ format: 'json', interactive: false });
    const host = fakeHost(member.theirs);
    const ran = member.chat.run(member.ours, { host: '127.0.0.1', port: 5000 });
    await host.next((frame) => frame.type === 'hello');
    host.tell({ type: 'here', nicks: ['alice'] });
    host.say('carol', 'old\n', { earlier: true });
    host.say('carol', 'psst\n', { private: true });
    host.say('carol', 'hi\n');
    host.tell({ type: 'left', nick: 'carol', why: 'dropped: too slow' });
    const last = host.say('alice', 'bye all\n');
    await host.next(isAck(last));
    await member.stdout.waitFor(/"bye all"/);
    const events = member.stdout.text
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .map(({ time: _time, ...event }) => event);
    expect(events).toEqual([
      { type: 'room', room: 'lab', host: 'alice', address: '127.0.0.1:5000', here: ['alice'], you: 'bob' },
      { type: 'message', nick: 'carol', text: 'old', room: 'lab', earlier: true },
      { type: 'message', nick: 'carol', text: 'psst', room: 'lab', private: true },
      { type: 'message', nick: 'carol', text: 'hi', room: 'lab' },
      { type: 'left', nick: 'carol', why: 'dropped: too slow', room: 'lab' },
      { type: 'message', nick: 'alice', text: 'bye all', room: 'lab' },
    ]);
    host.tell({ type: 'bye' });
    member.stdin.end();
    expect(await ran).toEqual({ failed: false });
  });

  it('says goodbye (and ends well) only once "delivered" covers its lines, an undelivered one reported', async () => {
    const member = memberChat({ format: 'plain', interactive: false });
    const host = fakeHost(member.theirs);
    const ran = member.chat.run(member.ours, { host: '127.0.0.1', port: 5000 });
    await host.next((frame) => frame.type === 'hello');
    host.tell({ type: 'here', nicks: ['alice', 'carol'] });
    member.stdin.end('one\ntwo\n');
    const sent = await host.next((frame) => frame.body !== undefined);
    expect(sent.body).toBe('one\ntwo\n');
    const id = (sent as { id: number }).id;

    // The host's ack is one hop: the member waits on.
    host.tell({ type: 'ack', id });
    const marker = host.say('alice', 'still here\n');
    await host.next(isAck(marker)); // the member has read the ack before this
    expect(host.sent.some((frame) => frame.type === 'bye')).toBe(false);

    host.tell({ type: 'undelivered', id, nick: 'carol', why: 'left (quit)' });
    host.tell({ type: 'delivered', id });
    await host.next((frame) => frame.type === 'bye');
    host.tell({ type: 'bye' });
    expect(await ran).toEqual({ failed: false });
    expect(member.stderr.count('not delivered to carol: left (quit)')).toBe(1);
  });

  it('fails when its lines are never delivered to the room, and says so', async () => {
    const member = memberChat({ format: 'plain', interactive: false, waitMs: 300 });
    const host = fakeHost(member.theirs);
    const ran = member.chat.run(member.ours, { host: '127.0.0.1', port: 5000 });
    await host.next((frame) => frame.type === 'hello');
    host.tell({ type: 'here', nicks: ['alice'] });
    member.stdin.end('lost line\n');
    const sent = await host.next((frame) => frame.body !== undefined);
    host.tell({ type: 'ack', id: (sent as { id: number }).id });
    await host.next((frame) => frame.type === 'bye'); // the wait ran out
    host.tell({ type: 'bye' });
    expect(await ran).toEqual({ failed: true });
    expect(member.stderr.text).toMatch(/^lanchat: 1 line not delivered to everyone in alice's room "lab"$/m);
  });
});
