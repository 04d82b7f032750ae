// Heartbeats between lanchat peers (PROTOCOL.md, "A live link"), in-process
// over duplex pairs with fake clocks: pings when quiet, a lost peer noticed,
// and a side that does not read (its output is slow) neither lost nor losing.
import { once } from 'node:events';
import { Duplex } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { parseAlive } from '../src/options.js';
import { openSession, type Session, type Incoming, type SessionOptions } from '../src/session.js';
import { DEFAULT_MAX_LINE } from '../src/protocol.js';

const LIMIT = 3000;
const PING = '{"type":"ping"}\n';

/**
 * Two connected in-memory streams, as duplexPair, plus a silent cut: after
 * `cut()` nothing written on either side arrives, and nobody is told (no FIN,
 * no reset), as when a laptop sleeps or a cable is pulled. `wire` records what
 * each side wrote before the cut.
 */
function cuttablePair(): { a: Duplex; b: Duplex; cut: () => void; wire: { a: string[]; b: string[] } } {
  let up = true;
  const wire = { a: [] as string[], b: [] as string[] };
  const make = (name: 'a' | 'b', peer: () => Duplex): Duplex =>
    new Duplex({
      read() {},
      write(chunk: Buffer, _encoding, callback) {
        if (up) {
          wire[name].push(chunk.toString());
          peer().push(chunk);
        }
        callback();
      },
      final(callback) {
        if (up) peer().push(null);
        callback();
      },
    });
  const a: Duplex = make('a', () => b);
  const b: Duplex = make('b', () => a);
  for (const end of [a, b]) end.on('error', () => {});
  return { a, b, cut: () => (up = false), wire };
}

const sessions: Session[] = [];

interface Side {
  session: Session;
  received: Incoming[];
  /** Output writes held back (a slow stdout): each calls its `written` when released. */
  held: Array<() => void>;
  ended: boolean;
}

/** A session whose output is instant, or slow (`slow`: every write waits until the test releases it). */
function side(socket: Duplex, options: Partial<SessionOptions> & Pick<SessionOptions, 'role' | 'nick'>, slow = false): Side {
  const state: Side = { session: null as unknown as Session, received: [], held: [], ended: false };
  state.session = openSession(socket, {
    maxLine: DEFAULT_MAX_LINE,
    aliveMs: LIMIT,
    deliver: (text, written) => {
      state.received.push(text);
      if (slow) {
        state.held.push(written);
        return false;
      }
      setImmediate(written);
      return true;
    },
    ...options,
  });
  void state.session.done.then(() => (state.ended = true));
  sessions.push(state.session);
  return state;
}

function pair(aliceOptions: Partial<SessionOptions> = {}, bobOptions: Partial<SessionOptions> = {}, bobSlow = false) {
  const link = cuttablePair();
  const alice = side(link.a, { role: 'connect', nick: 'alice', ...aliceOptions });
  const bob = side(link.b, { role: 'listen', nick: 'bob', ...bobOptions }, bobSlow);
  return { alice, bob, ...link };
}

const pings = (written: string[]): number => written.join('').split(PING).length - 1;
const lines = (text: string): [Buffer, number] => [Buffer.from(text), text.split('\n').length - 1];

beforeEach(() => {
  // Only the clock is fake: streams, microtasks and setImmediate run as usual.
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
});

afterEach(async () => {
  for (const session of sessions.splice(0)) session.quit();
  await vi.runOnlyPendingTimersAsync();
  vi.useRealTimers();
});

describe('heartbeats between lanchat peers', () => {
  it('each hello offers ping with its limit, and each side learns what the other offers', async () => {
    const { alice, bob, wire } = pair({}, { aliveMs: 9000 });
    await Promise.all([once(alice.session, 'open'), once(bob.session, 'open')]);
    expect(wire.a[0]).toBe('{"type":"hello","version":1,"nick":"alice","maxLine":65536,"features":["ping","room"],"aliveMs":3000}\n');
    expect(wire.b[0]).toBe('{"type":"hello","version":1,"nick":"bob","maxLine":65536,"features":["ping"],"aliveMs":9000}\n');
    expect(alice.session.peerFeatures).toEqual(['ping']);
    expect(bob.session.peerFeatures).toEqual(['ping', 'room']);
  });

  it('a side that has sent nothing for a third of the peer limit pings; one that sends (text, acks) does not', async () => {
    const { alice, bob, wire } = pair({}, { aliveMs: 9000 });
    await Promise.all([once(alice.session, 'open'), once(bob.session, 'open')]);
    // Alice talks every half second for 6 s, bob acks each line: neither pings.
    for (let t = 0; t < 12; t++) {
      alice.session.send('msg', ...lines(`line ${t}\n`));
      await vi.advanceTimersByTimeAsync(500);
    }
    expect(pings(wire.a) + pings(wire.b)).toBe(0);
    // Both quiet from 5.5 s on: alice pings every 3 s (bob's limit / 3), bob every second (alice's).
    await vi.advanceTimersByTimeAsync(9500);
    expect(pings(wire.a)).toBe(3);
    expect(pings(wire.b)).toBe(10);
    expect(alice.ended || bob.ended).toBe(false);
  });

  it('an idle session lasts: neither side is lost while the other pings', async () => {
    const { alice, bob } = pair();
    await Promise.all([once(alice.session, 'open'), once(bob.session, 'open')]);
    await vi.advanceTimersByTimeAsync(20 * LIMIT);
    expect(alice.ended || bob.ended).toBe(false);
    expect(alice.session.isOpen && bob.session.isOpen).toBe(true);
  });

  it('when the link is cut silently, both sides of an idle session fail with "lost … no answer" after the limit', async () => {
    const { alice, bob, cut } = pair();
    await Promise.all([once(alice.session, 'open'), once(bob.session, 'open')]);
    await vi.advanceTimersByTimeAsync(5000);
    cut();
    await vi.advanceTimersByTimeAsync(LIMIT - 10);
    expect(alice.ended || bob.ended).toBe(false);
    await vi.advanceTimersByTimeAsync(20);
    const [aliceEnd, bobEnd] = await Promise.all([alice.session.done, bob.session.done]);
    expect(aliceEnd).toMatchObject({ reason: 'failed', error: { code: 'ERR_PEER_LOST', message: 'lost bob: no answer for 3 s' } });
    expect(bobEnd).toMatchObject({ reason: 'failed', error: { code: 'ERR_PEER_LOST', message: 'lost alice: no answer for 3 s' } });
  });

  it('a sender still streaming when the link is cut fails too, with its lines unconfirmed', async () => {
    const { alice, bob, cut } = pair();
    await Promise.all([once(alice.session, 'open'), once(bob.session, 'open')]);
    for (let t = 0; t < 10; t++) {
      alice.session.send('msg', ...lines(`line ${t}\n`));
      await vi.advanceTimersByTimeAsync(100);
    }
    cut();
    // Alice keeps sending into the void (TCP would be retransmitting); nothing comes back.
    for (let t = 0; t < 40 && !alice.ended; t++) {
      alice.session.send('msg', ...lines(`lost ${t}\n`));
      await vi.advanceTimersByTimeAsync(100);
    }
    const aliceEnd = await alice.session.done;
    expect(aliceEnd).toMatchObject({ error: { code: 'ERR_PEER_LOST' } });
    expect(aliceEnd.unconfirmed).toBeGreaterThan(0);
    expect((await bob.session.done).error?.code).toBe('ERR_PEER_LOST');
  });

  it('a side waiting for the goodbye after its own (closing) notices a lost peer too', async () => {
    const { alice, bob, cut } = pair({ waitMs: 60_000 }, { waitMs: 60_000 });
    await Promise.all([once(alice.session, 'open'), once(bob.session, 'open')]);
    alice.session.send('msg', ...lines('last words\n'));
    await vi.advanceTimersByTimeAsync(10);
    alice.session.finish(); // confirmed at once: her goodbye goes, and she waits for bob's
    await vi.advanceTimersByTimeAsync(10);
    cut();
    await vi.advanceTimersByTimeAsync(LIMIT + 10);
    expect((await alice.session.done).error?.code).toBe('ERR_PEER_LOST');
    expect((await bob.session.done).error?.code).toBe('ERR_PEER_LOST');
  });

  it('pings are no progress in the wait for a goodbye: a peer that only pings fails it after --wait', async () => {
    const { a, b } = cuttablePair();
    const alice = side(a, { role: 'connect', nick: 'alice', waitMs: 10_000 });
    b.write('{"type":"hello","version":1,"nick":"bob","maxLine":100,"features":["ping"],"aliveMs":3000}\n');
    await once(alice.session, 'open');
    alice.session.finish();
    const pinger = setInterval(() => b.write(PING), 500);
    await vi.advanceTimersByTimeAsync(10_010);
    clearInterval(pinger);
    expect((await alice.session.done).error).toMatchObject({ code: 'ERR_NO_GOODBYE' });
  });
});

describe('heartbeats and a side that does not read (backpressure)', () => {
  it('a receiver whose output is stalled far longer than the limit is not lost, and does not lose its peer', async () => {
    const { alice, bob, cut } = pair({}, {}, true);
    await Promise.all([once(alice.session, 'open'), once(bob.session, 'open')]);
    alice.session.send('msg', ...lines('fills bob\n')); // bob's output never says written: he pauses his socket
    await vi.advanceTimersByTimeAsync(10);
    expect(bob.held).toHaveLength(1);
    alice.session.send('msg', ...lines('more\n'));
    await vi.advanceTimersByTimeAsync(20 * LIMIT);
    // Bob reads nothing (so hears none of alice's pings) yet keeps pinging: both stay.
    expect(alice.ended || bob.ended).toBe(false);
    bob.held.shift()!(); // his output takes the text at last: he reads again, and acks
    await vi.advanceTimersByTimeAsync(10);
    expect(bob.received.map((r) => r.body.toString())).toEqual(['fills bob\n', 'more\n']);
    for (const written of bob.held.splice(0)) written();
    await vi.advanceTimersByTimeAsync(5 * LIMIT);
    expect(alice.ended || bob.ended).toBe(false);
    // The countdown runs again now that bob reads: a cut is noticed.
    cut();
    await vi.advanceTimersByTimeAsync(LIMIT + 10);
    expect((await bob.session.done).error?.code).toBe('ERR_PEER_LOST');
    expect((await alice.session.done).error?.code).toBe('ERR_PEER_LOST');
  });

  it('a receiver paused when the link is cut notices once it reads again', async () => {
    const { alice, bob, cut } = pair({}, {}, true);
    await Promise.all([once(alice.session, 'open'), once(bob.session, 'open')]);
    alice.session.send('msg', ...lines('fills bob\n'));
    await vi.advanceTimersByTimeAsync(10);
    cut();
    await vi.advanceTimersByTimeAsync(10 * LIMIT);
    expect(bob.ended).toBe(false); // it chose not to read
    expect((await alice.session.done).error?.code).toBe('ERR_PEER_LOST');
    bob.held.shift()!();
    await vi.advanceTimersByTimeAsync(LIMIT + 10);
    expect((await bob.session.done).error?.code).toBe('ERR_PEER_LOST');
  });
});

describe('heartbeats and peers without them', () => {
  it('sends no ping to a lanchat peer whose hello lists no features, and does not take its silence for loss', async () => {
    const { a, b, wire } = cuttablePair();
    const alice = side(a, { role: 'connect', nick: 'alice' });
    b.write('{"type":"hello","version":1,"nick":"old","maxLine":100}\n');
    await once(alice.session, 'open');
    expect(alice.session.peerFeatures).toEqual([]);
    await vi.advanceTimersByTimeAsync(20 * LIMIT);
    expect(wire.a).toHaveLength(1); // the hello, nothing since
    expect(alice.ended).toBe(false);
  });

  it('ignores features it does not know, and pings at a third of the limit the peer asked for', async () => {
    const { a, b, wire } = cuttablePair();
    const alice = side(a, { role: 'connect', nick: 'alice', aliveMs: 60_000 });
    b.write('{"type":"hello","version":1,"nick":"new","maxLine":100,"features":["rooms","ping","files"],"aliveMs":1500}\n');
    await once(alice.session, 'open');
    expect(alice.session.peerFeatures).toEqual(['rooms', 'ping', 'files']);
    await vi.advanceTimersByTimeAsync(5010);
    expect(pings(wire.a)).toBe(10);
  });

  it('with --alive 0 it offers no heartbeats, sends none, and never takes a quiet peer for lost', async () => {
    const { alice, bob, wire } = pair({ aliveMs: 0 });
    await Promise.all([once(alice.session, 'open'), once(bob.session, 'open')]);
    expect(wire.a[0]).toBe('{"type":"hello","version":1,"nick":"alice","maxLine":65536,"features":["room"]}\n');
    expect(bob.session.peerFeatures).toEqual(['room']);
    await vi.advanceTimersByTimeAsync(20 * LIMIT);
    expect(pings(wire.a) + pings(wire.b)).toBe(0);
    expect(alice.ended || bob.ended).toBe(false);
  });

  it('turns on TCP keepalive for a plain peer, timed to give up at about the limit', async () => {
    const { a } = cuttablePair();
    const calls: Array<[boolean, number]> = [];
    Object.assign(a, { setKeepAlive: (enable: boolean, delay: number) => calls.push([enable, delay]) });
    const alice = side(a, { role: 'connect', nick: 'alice', plain: true, aliveMs: 15_000 });
    await once(alice.session, 'open');
    expect(calls).toEqual([[true, 5000]]); // then 10 probes a second apart (libuv): lost after about 15 s
  });

  it('uses no TCP keepalive with a peer that pings', async () => {
    const { a, b } = cuttablePair();
    const calls: unknown[] = [];
    Object.assign(a, { setKeepAlive: (...args: unknown[]) => calls.push(args) });
    const alice = side(a, { role: 'connect', nick: 'alice' });
    side(b, { role: 'listen', nick: 'bob' });
    await once(alice.session, 'open');
    expect(calls).toEqual([]);
  });

  it('reports a connection that timed out (TCP keepalive gave up) as a lost peer', async () => {
    const { a } = cuttablePair();
    const alice = side(a, { role: 'connect', nick: 'alice', plain: true, plainNick: '10.0.0.2:5000' });
    await once(alice.session, 'open');
    a.destroy(Object.assign(new Error('read ETIMEDOUT'), { code: 'ETIMEDOUT' }));
    expect((await alice.session.done).error).toMatchObject({
      code: 'ERR_PEER_LOST',
      message: 'lost 10.0.0.2:5000: no answer (the connection timed out)',
    });
  });
});

describe('heartbeats and --idle-timeout', () => {
  it('pings are not traffic: an idle session still ends after --idle-timeout', async () => {
    const { alice, bob, wire } = pair({}, { idleMs: 10_000 });
    await Promise.all([once(alice.session, 'open'), once(bob.session, 'open')]);
    await vi.advanceTimersByTimeAsync(10_010);
    expect(pings(wire.a)).toBeGreaterThanOrEqual(9);
    expect((await bob.session.done).error?.code).toBe('ERR_IDLE');
  });

  it('a message is traffic: it starts the idle count again', async () => {
    const { alice, bob } = pair({}, { idleMs: 10_000 });
    await Promise.all([once(alice.session, 'open'), once(bob.session, 'open')]);
    await vi.advanceTimersByTimeAsync(8000);
    alice.session.send('msg', ...lines('still here\n'));
    await vi.advanceTimersByTimeAsync(8000);
    expect(bob.ended).toBe(false);
    await vi.advanceTimersByTimeAsync(2100);
    expect((await bob.session.done).error?.code).toBe('ERR_IDLE');
  });
});

describe('--alive', () => {
  it.each([
    ['0', 0],
    ['1', 1],
    ['2.5', 2.5],
    ['15', 15],
    ['86400', 86_400],
  ])('%j is %d seconds', (given, seconds) => {
    expect(parseAlive(given)).toBe(seconds);
  });

  it.each(['0.5', '-1', '86401', 'never', '', '1e3'])('%j is refused (0, or 1 to 86400)', (given) => {
    expect(() => parseAlive(given)).toThrow('seconds must be 0 (off) or a number from 1 to 86400.');
  });
});
