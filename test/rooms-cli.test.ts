// Rooms end to end: a headless host (`listen --room`, a pure relay) and its
// members as separate processes over 127.0.0.1 — lanchat connectors with
// their own keys, `nc`, raw sockets — asserting bytes: the host's plain
// output, what nc members read, frames on the wire, exit codes.
import { once } from 'node:events';
import { mkdtempSync, openSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { fileInput, killAll, lanchat, spawnProc, type Proc, type SpawnOptions } from './cli-helpers.js';

const sockets: Socket[] = [];
afterEach(() => {
  killAll();
  for (const socket of sockets.splice(0)) socket.destroy();
});

/** `listen 0 --room dev` on 127.0.0.1 with no input (a pure relay), and its port. */
async function roomHost(args: string[] = [], options: SpawnOptions = {}): Promise<Proc & { port: number }> {
  const proc = lanchat(['listen', '0', '--host', '127.0.0.1', '--room', 'dev', '--nick', 'host', ...args], { stdin: 'ignore', ...options });
  const match = await proc.waitForStderr(/^listening on 127\.0\.0\.1:(\d+) \(room dev\)$/m, 10_000);
  return Object.assign(proc, { port: Number(match[1]) });
}

/** A lanchat member with its own home (its own key) and nick, its input piped by the test. */
function member(port: number, nick: string, args: string[] = [], options: SpawnOptions = {}): Proc {
  const home = mkdtempSync(join(tmpdir(), `lanchat-${nick}-`));
  return lanchat(['connect', '127.0.0.1', String(port), ...args], {
    stdin: 'pipe',
    ...options,
    env: { LANCHAT_HOME: home, LANCHAT_NICK: nick },
  });
}

/** `nc` into the room: it reads plain lines; what it types is said under the nick the host gives it. */
async function ncMember(port: number): Promise<Proc & { text: () => string; waitFor: (text: string, ms?: number) => Promise<void> }> {
  const proc = spawnProc('nc', ['127.0.0.1', String(port)]);
  const text = (): string => proc.stdout().toString('utf8');
  const waitFor = async (wanted: string, ms = 10_000): Promise<void> => {
    const deadline = Date.now() + ms;
    while (!text().includes(wanted)) {
      if (Date.now() > deadline) throw new Error(`nc did not read ${JSON.stringify(wanted)} within ${ms} ms; it read:\n${text()}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  };
  // Silent for 2 s, it is taken for netcat and welcomed.
  await waitFor('* welcome to dev: you are ');
  return Object.assign(proc, { text, waitFor });
}

/** A TCP client of the room played by the test (plain lines, or frames by hand). */
async function rawSocket(
  port: number,
): Promise<Socket & { received: () => string; waitFor: (text: string, ms?: number) => Promise<void> }> {
  const socket = connect(port, '127.0.0.1');
  sockets.push(socket);
  socket.on('error', () => {});
  let received = '';
  socket.setEncoding('utf8').on('data', (chunk: string) => (received += chunk));
  await once(socket, 'connect');
  const waitFor = async (wanted: string, ms = 10_000): Promise<void> => {
    const deadline = Date.now() + ms;
    while (!received.includes(wanted)) {
      if (Date.now() > deadline)
        throw new Error(`the socket did not read ${JSON.stringify(wanted)} within ${ms} ms; it read:\n${received}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  };
  return Object.assign(socket, { received: () => received, waitFor });
}

const devNull = (): number => openSync('/dev/null', 'w');

describe('a room over 127.0.0.1', () => {
  it('three lanchat members and nc: public lines reach everyone, nc reads nick: text, UTF-8 intact, a clash gets a suffix, leaves are told', async () => {
    const host = await roomHost();
    const nc = await ncMember(host.port);
    expect(nc.text()).toBe('* welcome to dev: you are guest1; here: host (/help lists commands)\n');
    const bob = member(host.port, 'bob');
    await nc.waitFor('* bob joined\n');
    const carol = member(host.port, 'carol');
    await nc.waitFor('* carol joined\n');
    const dave = member(host.port, 'dave');
    await nc.waitFor('* dave joined\n');

    bob.child.stdin!.write('héllo from bob ✓ 日本語 😀\n');
    await nc.waitFor('bob: héllo from bob ✓ 日本語 😀\n');
    carol.child.stdin!.write('carol here\n');
    await nc.waitFor('carol: carol here\n');
    nc.child.stdin!.write('from nc\n');
    // Each has other lines on stdout already: wait for this one itself (a byte count alone raced on a loaded machine).
    for (const reader of [bob, carol, dave]) {
      const deadline = Date.now() + 10_000;
      while (!reader.stdout().toString('utf8').includes('from nc\n') && Date.now() < deadline)
        await new Promise((resolve) => setTimeout(resolve, 10));
    }
    // The host's plain output: the exact bytes of every public line, in the order relayed.
    await host.waitForStdout(Buffer.byteLength('héllo from bob ✓ 日本語 😀\ncarol here\nfrom nc\n'), 10_000);
    expect(host.stdout().toString('utf8')).toBe('héllo from bob ✓ 日本語 😀\ncarol here\nfrom nc\n');
    // Each member read the others' lines, never its own.
    expect(dave.stdout().toString('utf8')).toContain('héllo from bob ✓ 日本語 😀\n');
    expect(dave.stdout().toString('utf8')).toContain('carol here\n');
    expect(dave.stdout().toString('utf8')).toContain('from nc\n');
    expect(bob.stdout().toString('utf8')).not.toContain('héllo from bob');

    // A second bob joins as bob2.
    const bob2 = member(host.port, 'bob');
    await nc.waitFor('* bob2 joined\n');

    // A piped member whose input ends leaves with 0 once its lines are delivered; the others see it quit.
    bob.child.stdin!.end('last words\n');
    expect((await bob.exited).code).toBe(0);
    await nc.waitFor('bob: last words\n* bob left (quit)\n');
    carol.child.stdin!.end();
    expect((await carol.exited).code).toBe(0);
    await nc.waitFor('* carol left (quit)\n');
    void bob2;
  }, 60_000);

  it('a plain member that types /quit leaves, and the others read why', async () => {
    const host = await roomHost();
    const nc = await ncMember(host.port);
    const quitter = await rawSocket(host.port);
    quitter.write('hi, I am leaving\n'); // speaks at once: plain, no grace to wait for
    await nc.waitFor('guest2: hi, I am leaving\n');
    quitter.write('/quit\n');
    await nc.waitFor('* guest2 left (quit)\n');
    if (!quitter.readableEnded) await once(quitter, 'end');
    expect(host.stdout().toString('utf8')).toBe('hi, I am leaving\n');
  }, 30_000);

  it('a member that never reads is dropped while the others keep receiving, and the sender still exits 0', async () => {
    const host = await roomHost([], { stdout: devNull() });
    const nc = await ncMember(host.port);
    // Joins as plain by speaking, then never reads: the kernel's buffers fill, then the host's queue for it.
    const stalled = await rawSocket(host.port);
    stalled.write('stalling now\n');
    await nc.waitFor('guest2: stalling now\n');
    stalled.pause();
    const line = `${'x'.repeat(199)}\n`;
    const count = 80_000; // 16 MB
    const sender = member(host.port, 'bob', [], { stdin: fileInput(line.repeat(count)), stdout: devNull() });
    await nc.waitFor('* guest2 left (dropped: too slow', 30_000);
    expect((await sender.exited).code).toBe(0);
    // nc read every line.
    await nc.waitFor(`* bob left (quit)\n`, 30_000);
    const text = nc.text();
    expect(text.split('\n').filter((read) => read === `bob: ${'x'.repeat(199)}`)).toHaveLength(count);
  }, 90_000);

  it.each([
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const)(
    'on %s the host exits %i and says goodbye to every member',
    async (signal, code) => {
      const host = await roomHost(['--insecure']);
      const nc = await ncMember(host.port);
      const bob = member(host.port, 'bob');
      await nc.waitFor('* bob joined\n');
      const framed = await rawSocket(host.port); // a lanchat connector played by hand, in the clear
      framed.write('{"type":"hello","version":1,"nick":"framed","maxLine":65536,"features":["room"]}\n');
      await nc.waitFor('* framed joined\n');
      host.child.kill(signal);
      expect((await host.exited).code).toBe(code);
      // On the wire: a goodbye, then the end of the stream.
      if (!framed.readableEnded) await once(framed, 'end');
      expect(framed.received().trimEnd().split('\n').at(-1)).toBe('{"type":"bye"}');
      // A lanchat member got its goodbye: once its input ends it leaves with 0 (a room lost without one would be 1).
      bob.child.stdin!.end();
      expect(await bob.exited).toEqual({ code: 0, signal: null });
      // nc read the end of the stream (OpenBSD nc leaves once its input ends too).
      nc.child.stdin!.end();
      expect((await nc.exited).code).toBe(0);
      expect(nc.text()).not.toMatch(/left \(lost\)/);
    },
    30_000,
  );

  it('a member cannot speak as another: a frame with from: "host" or "carol" is relayed under its own nick', async () => {
    const host = await roomHost(['--insecure']);
    const nc = await ncMember(host.port);
    const carol = member(host.port, 'carol');
    await nc.waitFor('* carol joined\n');
    const mallory = await rawSocket(host.port);
    mallory.write('{"type":"hello","version":1,"nick":"mallory","maxLine":65536,"features":["room"]}\n');
    await mallory.waitFor('"you":"mallory"');
    const header = (from: string, id: number, text: string): string =>
      `${JSON.stringify({ type: 'msg', id, size: Buffer.byteLength(text), from })}\n${text}`;
    mallory.write(header('carol', 1, 'I am carol\n') + header('host', 2, 'I am the host\n'));
    await nc.waitFor('mallory: I am carol\nmallory: I am the host\n');
    expect(nc.text()).not.toMatch(/^(carol|host): I am/m);
    await mallory.waitFor('{"type":"delivered","id":2}');
    await host.waitForStdout(Buffer.byteLength('I am carol\nI am the host\n'));
    expect(host.stdout().toString('utf8')).toBe('I am carol\nI am the host\n');
    carol.child.stdin!.end();
    expect((await carol.exited).code).toBe(0);
    expect(carol.stdout().toString('utf8')).toContain('I am carol\nI am the host\n');
  }, 30_000);

  // /kick needs the host's keyboard: the tmux room test drives it; the Room's kick is in room.test.ts.
});

describe('the room for each member: --max-peers, --idle-timeout, and options that do not fit a room', () => {
  it('a full room turns the next one away with one line, and takes it once someone left', async () => {
    const host = await roomHost(['--max-peers', '1']);
    const first = await rawSocket(host.port);
    first.write('first here\n');
    await host.waitForStderr(/^guest1 joined/m, 10_000);
    const second = await rawSocket(host.port);
    second.write('me too\n');
    await second.waitFor('lanchat: busy: the room is full, try again later\n');
    await host.waitForStderr(/^refused 127\.0\.0\.1:\d+: the room is full$/m);
    first.end('/quit\n');
    await host.waitForStderr(/^guest1 left/m, 10_000);
    const third = await rawSocket(host.port);
    third.write('now me\n');
    await third.waitFor('* welcome to dev: you are ');
  }, 40_000);

  it('--idle-timeout drops a member that says nothing for that long (acks are not saying), and the others are told', async () => {
    // A long limit, so that on a loaded machine the talker is in before the quiet ones go; the talker keeps talking.
    const host = await roomHost(['--idle-timeout', '4']);
    const talker = await rawSocket(host.port);
    talker.write('hi\n');
    await host.waitForStderr(/^guest1 joined/m, 10_000);
    const timer = setInterval(() => talker.write('still here\n'), 300);
    try {
      const quiet = await rawSocket(host.port);
      quiet.write('hello\n');
      await host.waitForStderr(/^guest2 joined/m, 10_000);
      const listening = member(host.port, 'listening'); // a lanchat member that only reads (and acks)
      await host.waitForStderr(/^guest2 left \(dropped: it said nothing for 4 s \(--idle-timeout\)\)$/m, 15_000);
      await talker.waitFor('* guest2 left (dropped: it said nothing for 4 s (--idle-timeout))\n');
      await host.waitForStderr(/^listening left \(dropped: it said nothing for 4 s \(--idle-timeout\)\)$/m, 15_000);
      expect((await listening.exited).code).toBe(1);
      expect(listening.stderr()).toMatch(/it said nothing for 4 s/);
      expect(host.stderr()).not.toMatch(/guest1 left/);
    } finally {
      clearInterval(timer);
    }
  }, 40_000);

  it('refuses --max-peers without --room and --keep with it, with one line and exit 2', async () => {
    const lone = lanchat(['listen', '0', '--host', '127.0.0.1', '--max-peers', '3'], { stdin: 'ignore' });
    expect((await lone.exited).code).toBe(2);
    expect(lone.stderr()).toMatch(/^lanchat: --max-peers is for a room \(--room\)\n/);
    const keep = lanchat(['listen', '0', '--host', '127.0.0.1', '--room', '--keep'], { stdin: 'ignore' });
    expect((await keep.exited).code).toBe(2);
    expect(keep.stderr()).toMatch(/^lanchat: --keep is for one peer at a time; a room takes everyone \(--room\)\n/);
  }, 20_000);
});
