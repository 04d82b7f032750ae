// Chat over in-memory streams: a keyboard (stdin that is not a terminal, so
// readline reads plain lines) and a peer Session on the other end of a duplex pair.
import { randomBytes } from 'node:crypto';
import { EventEmitter, once } from 'node:events';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, type Duplex } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { openSession, type Incoming } from '../src/session.js';
import { DEFAULT_MAX_LINE } from '../src/protocol.js';
import { Chat, type ChatOptions } from '../src/chat.js';
import { exitCode } from '../src/errors.js';
import { duplexPair } from './duplex-pair.js';
import { Screen } from './screen.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function keyboardChat(options: Partial<ChatOptions> & Pick<ChatOptions, 'role' | 'nick'>, { home }: { home?: string } = {}) {
  const stdin = new PassThrough();
  const stdout = new Screen();
  const stderr = new Screen();
  const chat = new Chat(
    { stdin, stdout, stderr, cwd: process.cwd(), home, signal: new AbortController().signal },
    { maxLine: DEFAULT_MAX_LINE, format: 'plain', interactive: true, commands: true, waitMs: 2000, ...options },
  );
  cleanups.push(() => chat.close());
  return { chat, stdin, stdout, stderr, type: (line: string) => stdin.write(`${line}\n`) };
}

/** A lanchat peer on the other end; it confirms the lines `acks` says (all by default), never the others. */
function peer(socket: Duplex, role: 'connect' | 'listen', nick: string, { acks = (_text: Incoming): boolean => true } = {}) {
  const received: Incoming[] = [];
  const arrivals = new EventEmitter();
  const session = openSession(socket, {
    role,
    nick,
    maxLine: DEFAULT_MAX_LINE,
    waitMs: 2000,
    deliver: (text, written) => {
      received.push(text);
      arrivals.emit('text', text);
      if (acks(text)) setImmediate(written);
      return true;
    },
  });
  session.on('peer-done', () => session.finish());
  cleanups.push(() => session.quit());
  return { session, received, next: async (): Promise<Incoming> => (await once(arrivals, 'text'))[0] as Incoming };
}

function quietPair(): [Duplex, Duplex] {
  const pair = duplexPair();
  for (const end of pair) end.on('error', () => {});
  return pair;
}

describe('a listener with nobody connected yet, at the keyboard', () => {
  it('answers /help, /who and /nick, refuses text, and the next peer sees the new nick', async () => {
    const { chat, stderr, type } = keyboardChat({ role: 'listen', nick: 'bob' });
    let quits = 0;
    chat.idle({ listening: '127.0.0.1:5000', onQuit: () => quits++ });

    type('hello?');
    await stderr.waitFor(/^lanchat: nobody is connected yet; that was not sent$/m);
    type('/who');
    await stderr.waitFor(/^nobody is connected yet; listening on 127\.0\.0\.1:5000 as bob$/m);
    type('/help');
    await stderr.waitFor(/^ {2}\/quit {17}say goodbye and leave/m);
    type('/nick bad nick');
    await stderr.waitFor(/^lanchat: a nick is 1 to 32 characters/m);
    type('/nick zed');
    await stderr.waitFor(/^you are now zed$/m);
    type('/save');
    await stderr.waitFor(/^lanchat: \/save needs a peer: nobody is connected yet$/m);
    expect(quits).toBe(0);

    const [ours, theirs] = quietPair();
    const alice = peer(theirs, 'connect', 'alice');
    const ran = chat.run(ours, { host: '127.0.0.1', port: 40000 });
    await once(alice.session, 'open');
    expect(alice.session.peerNick).toBe('zed');
    expect(alice.received).toEqual([]); // what was typed before is never sent
    alice.session.finish();
    expect(exitCode(await ran)).toBe(0);
  });

  it('/quit stops listening, as Ctrl-D does', async () => {
    const { chat, stdin, type } = keyboardChat({ role: 'listen', nick: 'bob' });
    const quit = new Promise<string>((resolve) => chat.idle({ listening: '127.0.0.1:5000', onQuit: () => resolve('quit') }));
    type('/quit');
    expect(await quit).toBe('quit');

    const ended = new Promise<string>((resolve) => chat.idle({ listening: '127.0.0.1:5000', onQuit: () => resolve('end') }));
    stdin.end();
    expect(await ended).toBe('end');
  });
});

describe('delivery, as the person at the keyboard sees it', () => {
  it('names a typed line that stays unconfirmed, once, and /who counts what is unconfirmed', async () => {
    const { chat, stderr, type } = keyboardChat({ role: 'connect', nick: 'alice', lateMs: 150 });
    const [ours, theirs] = quietPair();
    const bob = peer(theirs, 'listen', 'bob', { acks: () => false });
    const ran = chat.run(ours, { host: '127.0.0.1', port: 5000 });
    await once(bob.session, 'open');

    const long = `\x1b[31mred${'x'.repeat(60)}`;
    type(long);
    // Quoted up to 40 characters, made inert.
    await stderr.waitFor(/^not delivered yet: "\\x1b\[31mredx{32}…" \(\d+ s\)$/m);
    type('second');
    type('third');
    await stderr.waitFor(/^not delivered yet: "second" and 1 more line \(\d+ s\)$/m);
    // By now the first line had more than its wait again: it is not named twice.
    expect(stderr.count('not delivered yet: "\\x1b[31mred')).toBe(1);
    expect(stderr.text).not.toContain('\x1b');

    type('/who');
    await stderr.waitFor(/^messages: 3 sent, 0 received\n.*\n3 lines you sent not confirmed yet$/m);
    expect(bob.received.map((text) => text.body.toString())).toEqual([`${long}\n`, 'second\n', 'third\n']);
    bob.session.quit();
    await ran;
  });

  it('says nothing of lines the peer confirms in time, and names a later line only when it is due', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] }); // streams keep their real turns
    cleanups.push(() => vi.useRealTimers());
    const { chat, stdout, stderr, type } = keyboardChat({ role: 'connect', nick: 'alice', lateMs: 1000 });
    const [ours, theirs] = quietPair();
    const bob = peer(theirs, 'listen', 'bob', { acks: (text) => text.body.toString() === 'hello\n' });
    const ran = chat.run(ours, { host: '127.0.0.1', port: 5000 });
    await once(bob.session, 'open');
    const arrived = bob.next();
    type('hello');
    await arrived;
    await new Promise((resolve) => setImmediate(resolve)); // bob's ack is on its way
    bob.session.send('msg', Buffer.from('ok\n'), 1); // behind the ack: once alice shows it, she has the ack
    await stdout.waitFor(/^ok$/m);
    type('/who');
    await stderr.waitFor(/^messages: 1 sent, 1 received\n.*\nevery line you sent is confirmed$/m);

    vi.advanceTimersByTime(600);
    const stuck = bob.next();
    type('stuck');
    await stuck;
    vi.advanceTimersByTime(500); // hello is due, and was confirmed; stuck is not due yet
    type('/who');
    await stderr.waitFor(/^1 line you sent not confirmed yet$/m);
    expect(stderr.text).not.toContain('not delivered yet');
    vi.advanceTimersByTime(500);
    await stderr.waitFor(/^not delivered yet: "stuck" \(1 s\)$/m);
    expect(stderr.count('not delivered yet')).toBe(1);
    bob.session.quit();
    await ran;
  });

  it('in json, the join event carries the peer key and how it is known', async () => {
    const { chat, stdout } = keyboardChat({ role: 'connect', nick: 'alice', format: 'json' });
    const [ours, theirs] = quietPair();
    const bob = peer(theirs, 'listen', 'bob');
    const key = { fingerprint: 'AB:CD', note: 'pinned in contact bob' };
    const ran = chat.run(ours, { host: '127.0.0.1', port: 5000 }, { key });
    const [line] = await stdout.waitFor(/^\{"type":"join".*\n/m);
    expect(JSON.parse(line)).toMatchObject({ type: 'join', nick: 'bob', plain: false, key });
    bob.session.quit();
    await ran;
  });
});

/** A Chat reading piped input (stdin not a terminal), writing plain text. */
function pipedChat(options: Partial<ChatOptions> & Pick<ChatOptions, 'role' | 'nick'>, signal = new AbortController().signal) {
  const stdin = new PassThrough();
  const stdout = new Screen();
  const stderr = new Screen();
  const chat = new Chat(
    { stdin, stdout, stderr, cwd: process.cwd(), signal },
    { maxLine: DEFAULT_MAX_LINE, format: 'plain', interactive: false, commands: false, waitMs: 2000, ...options },
  );
  cleanups.push(() => chat.close());
  return { chat, stdin, stdout, stderr };
}

describe('typing in a session', () => {
  it('/nick alone says the nick; empty and blank lines are not sent; /save expands ~ as a shell does', async () => {
    const home = mkdtempSync(join(tmpdir(), 'lanchat-home-'));
    const { chat, stderr, type } = keyboardChat({ role: 'connect', nick: 'alice' }, { home });
    const [ours, theirs] = quietPair();
    const bob = peer(theirs, 'listen', 'bob');
    const ran = chat.run(ours, { host: '127.0.0.1', port: 5000 });
    await once(bob.session, 'open');

    type('/nick');
    await stderr.waitFor(/^you are alice$/m);
    type('');
    type('   \t ');
    type('real');
    await bob.next();
    type('/save ~/x.txt');
    const [, path] = await stderr.waitFor(/^saved \d+ lines? to (.*)$/m);
    expect(path).toBe(join(home, 'x.txt'));
    expect(readFileSync(join(home, 'x.txt'), 'utf8')).toMatch(/alice: real\n$/);
    expect(bob.received.map((text) => text.body.toString())).toEqual(['real\n']);
    bob.session.quit();
    await ran;
  });

  it('/who names a plain-text peer by its address once', async () => {
    const { chat, stderr, type } = keyboardChat({ role: 'listen', nick: 'bob' });
    const [ours, theirs] = quietPair();
    const ran = chat.run(ours, { host: '127.0.0.1', port: 43816 }, { plain: true });
    theirs.write('hi from nc\n');
    await stderr.waitFor(/^connected to 127\.0\.0\.1:43816/m);
    type('/who');
    await stderr.waitFor(/^talking to 127\.0\.0\.1:43816 \(plain text, no confirmations\)$/m);
    theirs.end();
    await ran;
  });
});

describe('piped input', () => {
  it('sends every line, ends at the end of input once all is confirmed: a clean outcome', async () => {
    const { chat, stdin } = pipedChat({ role: 'connect', nick: 'alice' });
    const [ours, theirs] = quietPair();
    const bob = peer(theirs, 'listen', 'bob');
    const ran = chat.run(ours, { host: '127.0.0.1', port: 5000 });
    stdin.write('one\ntw');
    stdin.end('o\nthree');
    expect(await ran).toEqual({ failed: false });
    expect(Buffer.concat(bob.received.map((text) => text.body)).toString()).toBe('one\ntwo\nthree\n');
  });

  it('when the peer finishes first, sends what its input still gives, then ends', async () => {
    const { chat, stdin, stdout } = pipedChat({ role: 'listen', nick: 'bob' });
    const [ours, theirs] = quietPair();
    const alice = peer(theirs, 'connect', 'alice');
    const ran = chat.run(ours, { host: '127.0.0.1', port: 40000 });
    await once(alice.session, 'open');
    alice.session.send('msg', Buffer.from('bye from alice\n'), 1);
    alice.session.finish(); // alice is done; bob lingers over his input
    await stdout.waitFor(/bye from alice/);
    const next = alice.next(); // a write to a flowing stream may be delivered before it returns
    stdin.write('still coming\n');
    await next;
    stdin.end('and the last\n');
    expect(await ran).toEqual({ failed: false });
    expect(Buffer.concat(alice.received.map((text) => text.body)).toString()).toBe('still coming\nand the last\n');
  });

  it('a listener whose input ends with nothing after the peer finished ends then, not a pause later', async () => {
    const { chat, stdin, stdout } = pipedChat({ role: 'listen', nick: 'bob' });
    const [ours, theirs] = quietPair();
    const alice = peer(theirs, 'connect', 'alice');
    const ran = chat.run(ours, { host: '127.0.0.1', port: 40000 });
    await once(alice.session, 'open');
    const realTimeout = setTimeout;
    vi.useFakeTimers({ toFake: ['setTimeout'] }); // the pause bob's input may take never runs out here
    try {
      alice.session.send('msg', Buffer.from('all from alice\n'), 1);
      alice.session.finish(); // bob lingers over his input, still open
      await stdout.waitFor(/all from alice/);
      stdin.end(); // and it ends, having given nothing
      const stalled = new Promise((resolve) => realTimeout(() => resolve('still lingering'), 2000));
      expect(await Promise.race([ran, stalled])).toEqual({ failed: false });
    } finally {
      vi.useRealTimers();
    }
  });

  it('a line over the limit stops the input: the lines before it are sent, the outcome is a failure', async () => {
    const { chat, stdin, stderr } = pipedChat({ role: 'connect', nick: 'alice', maxLine: 8 });
    const [ours, theirs] = quietPair();
    const bob = peer(theirs, 'listen', 'bob');
    const ran = chat.run(ours, { host: '127.0.0.1', port: 5000 });
    stdin.end('short\nfar too long for it\nafter\n');
    expect(await ran).toEqual({ failed: true });
    expect(stderr.text).toMatch(/^lanchat: a line of input is longer than 8 bytes \(--max-line\)/m);
    expect(bob.received.map((text) => text.body.toString())).toEqual(['short\n']);
  });

  it('a signal is the outcome, whatever the session came to', async () => {
    const stop = new AbortController();
    const { chat } = pipedChat({ role: 'connect', nick: 'alice' }, stop.signal);
    const [ours, theirs] = quietPair();
    const bob = peer(theirs, 'listen', 'bob');
    const ran = chat.run(ours, { host: '127.0.0.1', port: 5000 });
    await once(bob.session, 'open');
    stop.abort('SIGTERM');
    const outcome = await ran;
    expect(outcome).toEqual({ signal: 'SIGTERM' });
    expect(exitCode(outcome)).toBe(143);
  });
});

describe('plain peers: bytes, not only text', () => {
  /** stdout as bytes (a Screen decodes UTF-8, which would hide what was written). */
  function byteSink(): { stdout: PassThrough; written: () => Buffer } {
    const stdout = new PassThrough();
    const chunks: Buffer[] = [];
    stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
    return { stdout, written: () => Buffer.concat(chunks) };
  }

  it('connect --raw sends piped bytes as they are and writes the peer’s as they are: NUL, not UTF-8, past --max-line, no final newline', async () => {
    const stdin = new PassThrough();
    const { stdout, written } = byteSink();
    const stderr = new Screen();
    const chat = new Chat(
      { stdin, stdout, stderr, cwd: process.cwd(), signal: new AbortController().signal },
      { role: 'connect', nick: 'alice', plain: true, maxLine: 16, format: 'plain', interactive: false, commands: false, waitMs: 2000 },
    );
    cleanups.push(() => chat.close());
    const [ours, theirs] = quietPair();
    const got: Buffer[] = [];
    theirs.on('data', (chunk: Buffer) => got.push(chunk));
    const ran = chat.run(ours, { host: '127.0.0.1', port: 6000 });
    const input = Buffer.concat([Buffer.from([0, 0xff, 0xfe, 0x0a]), randomBytes(100_000), Buffer.from('\x00the end, no newline')]);
    const answer = Buffer.concat([randomBytes(50_000), Buffer.from('caf\xe9, no newline', 'latin1')]);
    theirs.write(answer);
    stdin.end(input);
    await once(theirs, 'end'); // our half-close, at the end of our input
    theirs.end();
    expect(await ran).toEqual({ failed: false });
    expect(Buffer.concat(got).equals(input)).toBe(true);
    expect(written().equals(answer)).toBe(true);
    expect(stderr.text).not.toMatch(/not UTF-8|longer than/);
  });

  it('connect --raw counts the input it could not send in bytes, not lines', async () => {
    const stdin = new PassThrough();
    const stderr = new Screen();
    const chat = new Chat(
      { stdin, stdout: byteSink().stdout, stderr, cwd: process.cwd(), signal: new AbortController().signal },
      {
        role: 'connect',
        nick: 'alice',
        plain: true,
        maxLine: DEFAULT_MAX_LINE,
        format: 'plain',
        interactive: false,
        commands: false,
        waitMs: 2000,
      },
    );
    cleanups.push(() => chat.close());
    const [ours, theirs] = quietPair();
    const ran = chat.run(ours, { host: '127.0.0.1', port: 6000 });
    stdin.write('sent\n');
    await once(theirs, 'data');
    theirs.destroy(); // the peer vanishes
    await stderr.waitFor(/left without saying goodbye/);
    stdin.end('abc\ndefgh');
    expect(await ran).toEqual({ failed: true });
    expect(stderr.text).toMatch(/^lanchat: 9 bytes of input not sent: /m);
  });

  it.each([
    ['pretty', /^\[\d\d:\d\d\] 127\.0\.0\.1:40000: caf\\xe9$/m],
    ['json', /^\{"type":"message","nick":"127\.0\.0\.1:40000","text":"caf\ufffd","base64":"Y2Fm6Q==",/m],
  ] as const)('a listener shows a Latin-1 netcat peer’s line in %s, and goes on', async (format, shown) => {
    const { chat, stdin, stdout, stderr } = pipedChat({ role: 'listen', nick: 'bob', format });
    stdin.end(); // a pure receiver
    const [ours, theirs] = quietPair();
    const ran = chat.run(ours, { host: '127.0.0.1', port: 40000 }, { plain: true });
    theirs.write(Buffer.from('caf\xe9\n', 'latin1'));
    await stdout.waitFor(shown);
    theirs.end('still here\n');
    await stdout.waitFor(/still here/);
    expect(await ran).toEqual({ failed: false });
    expect(stderr.text).not.toMatch(/dropped|UTF-8/);
  });
});
