// Files end to end, as a demanding user tries them: `lanchat send` and
// `listen --accept-files` (and /send, /accept in piped chats) as separate
// processes over 127.0.0.1, each with its own home; a 200 MB random file
// checked by SHA-256, kills mid-transfer and the resume that follows (bytes on
// the wire counted by a relay of the test's own), chat lines during a
// transfer, refusals, hostile names, an older peer; then a real terminal
// (tmux) with the progress line, the draft and /decline.
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import {
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { createServer, connect as dialTcp, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import stringWidth from 'string-width';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CLI, killAll, lanchat, listener, type Proc, type SpawnOptions } from './cli-helpers.js';
import { hasTmux, terminals } from './tmux.js';

const SIZE = 200_000_000;
/** The shared 200 MB random file and its SHA-256 (made once: writing it takes a while). */
let big: { dir: string; path: string; sha256: string };
const dirs: string[] = [];
const relays: Relay[] = [];

beforeAll(() => {
  const dir = mkdtempSync(join(tmpdir(), 'lanchat-files-source-')); // kept until afterAll
  const path = join(dir, 'big.bin');
  const hash = createHash('sha256');
  const fd = openSync(path, 'w');
  for (let at = 0; at < SIZE; at += 8 << 20) {
    const piece = randomBytes(Math.min(8 << 20, SIZE - at));
    hash.update(piece);
    writeSync(fd, piece);
  }
  closeSync(fd);
  big = { dir, path, sha256: hash.digest('hex') };
}, 60_000);

afterEach(async () => {
  killAll();
  await Promise.all(relays.splice(0).map((relay) => relay.close()));
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

afterAll(() => rmSync(big.dir, { recursive: true, force: true }));

/** A temporary directory, removed after the test (the source file's, after all of them). */
function tempDir(label: string): string {
  const dir = mkdtempSync(join(tmpdir(), `lanchat-files-${label}-`));
  dirs.push(dir);
  return dir;
}

function sha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/** A person: a home of their own (their key), a nick, and a working directory with an inbox `in`. */
function person(nick: string): { nick: string; home: string; cwd: string; inbox: string; env: Record<string, string> } {
  const cwd = tempDir(nick);
  const home = join(cwd, '.home');
  const inbox = join(cwd, 'in');
  mkdirSync(home);
  mkdirSync(inbox);
  return { nick, home, cwd, inbox, env: { LANCHAT_HOME: home } };
}

type Person = ReturnType<typeof person>;

/** `listen 0 --host 127.0.0.1 --nick NICK …` as `who`, in their directory. */
function listenAs(who: Person, args: string[], options: SpawnOptions = {}): Promise<Proc & { port: number }> {
  return listener(['--nick', who.nick, ...args], { cwd: who.cwd, env: who.env, stdin: 'ignore', ...options });
}

/** `lanchat send FILE... --to 127.0.0.1:PORT --nick NICK` as `who`. */
function sendAs(who: Person, files: string[], port: number, args: string[] = []): Proc {
  return lanchat(['send', ...files, '--to', `127.0.0.1:${port}`, '--nick', who.nick, ...args], {
    cwd: who.cwd,
    env: who.env,
    stdin: 'ignore',
  });
}

/** Partial files in `dir` (`.NAME.KEY.lanchat-part`). */
const partials = (dir: string): string[] => readdirSync(dir).filter((file) => file.endsWith('.lanchat-part'));

/** The size of the one partial of `name` in `dir` (0 while there is none). */
function partialSize(dir: string, name: string): number {
  const found = partials(dir).filter((file) => file.startsWith(`.${name}.`));
  if (found.length > 1) throw new Error(`more than one partial of ${name} in ${dir}: ${found.join(', ')}`);
  return found.length === 0 ? 0 : statSync(join(dir, found[0])).size;
}

/** Waits (bounded) until `ready()`; says what it waited for when it gives up. */
async function until(what: string, ready: () => boolean, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ready()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** The lines of `text` that say something went wrong. */
const problems = (text: string): string[] =>
  text.split('\n').filter((line) => line.startsWith('lanchat:') && !/WARNING: the peer calls itself/.test(line));

/** A sender's last word on a file it delivered: `bob received big.bin (200 MB, sha256 verified) in 3 s, 61 MB/s`. */
const deliveredLine = (peer: string, name: string, size: string): RegExp =>
  new RegExp(
    `^${peer} received ${escape(name)} \\(${escape(size)}, sha256 verified\\) in (?:<0\\.1|\\d+(?:\\.\\d)?) s(?:, \\d+(?:\\.\\d)? [kMG]?B/s)?$`,
    'm',
  );
const escape = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

interface Relay {
  port: number;
  /** Bytes relayed from the dialler to the target, and back. */
  up: () => number;
  down: () => number;
  /** Holds every byte where it is, both ways (as a stalled link does), until resume(). */
  pause: () => void;
  resume: () => void;
  close: () => Promise<void>;
}

/**
 * A TCP relay to 127.0.0.1:`target` that counts the bytes it carries and can
 * stall the link; `rate` (bytes per second, each way) slows it to a known pace.
 * A side that goes away takes the other with it, as a lost link does.
 */
async function relay(target: number, { rate }: { rate?: number } = {}): Promise<Relay> {
  const sockets = new Set<Socket>();
  let held = false;
  let up = 0;
  let down = 0;
  function carry(from: Socket, to: Socket, count: (bytes: number) => number): void {
    const startedAt = Date.now();
    let full = false;
    let resting = false;
    const flow = (): void => {
      if (!held && !full && !resting) from.resume();
    };
    from.on('data', (chunk: Buffer) => {
      const total = count(chunk.length);
      if (!to.write(chunk)) {
        full = true;
        from.pause();
      }
      if (rate === undefined) return;
      const due = startedAt + (total / rate) * 1000 - Date.now();
      if (due > 5) {
        resting = true;
        from.pause();
        setTimeout(() => {
          resting = false;
          flow();
        }, due);
      }
    });
    to.on('drain', () => {
      full = false;
      flow();
    });
    from.on('flow-check', flow);
    from.on('end', () => to.end());
    from.on('close', () => to.destroy());
    from.on('error', () => to.destroy());
  }
  const server: Server = createServer((client) => {
    const upstream = dialTcp(target, '127.0.0.1');
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      if (held) socket.pause();
    }
    carry(client, upstream, (bytes) => (up += bytes));
    carry(upstream, client, (bytes) => (down += bytes));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const made: Relay = {
    port: (server.address() as AddressInfo).port,
    up: () => up,
    down: () => down,
    pause: () => {
      held = true;
      for (const socket of sockets) socket.pause();
    },
    resume: () => {
      held = false;
      for (const socket of sockets) socket.emit('flow-check');
    },
    close: async () => {
      for (const socket of sockets) socket.destroy();
      server.close();
      await once(server, 'close').catch(() => {});
    },
  };
  relays.push(made);
  return made;
}

describe('lanchat send to listen --accept-files', () => {
  it('carries a 200 MB random file byte-identical over TLS; both exit 0 and say so in one line each', async () => {
    const [alice, bob] = [person('alice'), person('bob')];
    const listen = await listenAs(bob, ['--accept-files', 'in']);
    const send = sendAs(alice, [big.path], listen.port);
    expect((await send.exited).code).toBe(0);
    expect((await listen.exited).code).toBe(0); // once the sender has left
    expect(sha256(join(bob.inbox, 'big.bin'))).toBe(big.sha256);
    expect(readdirSync(bob.inbox)).toEqual(['big.bin']); // no partial left behind
    expect(send.stderr()).toMatch(/^offered big\.bin \(200 MB\) to bob$/m);
    expect(send.stderr()).toMatch(deliveredLine('bob', 'big.bin', '200 MB'));
    expect(listen.stderr()).toMatch(
      /^alice offers big\.bin \(200 MB\)\nreceived big\.bin \(200 MB, sha256 verified\) in \.\/in\nalice left\n$/m,
    );
    expect(problems(send.stderr())).toEqual([]);
    expect(problems(listen.stderr())).toEqual([]);
    expect(listen.stdout().length).toBe(0);
    expect(send.stdout().length).toBe(0);
  }, 120_000);

  it('the other way: a piped listener /sends the file, a piped connector /accepts it (a wrong directory first, then ~/in)', async () => {
    const [alice, bob] = [person('alice'), person('bob')];
    const listen = await listenAs(bob, ['--commands'], { stdin: 'pipe' });
    listen.child.stdin!.end(`/send ${big.path}\n`);
    const connect = lanchat(['connect', '127.0.0.1', String(listen.port), '--nick', 'alice', '--commands'], {
      cwd: alice.cwd,
      env: { ...alice.env, HOME: alice.cwd },
      stdin: 'pipe',
    });
    // A script answers the offer once it is made (an /accept before it has nothing to take).
    await connect.waitForStderr(/^bob offers big\.bin \(200 MB\) — \/accept \[DIR\] or \/decline$/m, 30_000);
    // A directory that is not there is said, and the offer waits for a better answer.
    connect.child.stdin!.write('/accept nowhere\n');
    await connect.waitForStderr(/^lanchat: .*\/nowhere: no such directory: the offer waits \(\/accept DIR or \/decline\)$/m);
    connect.child.stdin!.end('/accept ~/in\n');
    expect((await connect.exited).code).toBe(0);
    expect((await listen.exited).code).toBe(0);
    expect(sha256(join(alice.inbox, 'big.bin'))).toBe(big.sha256);
    expect(readdirSync(alice.inbox)).toEqual(['big.bin']);
    expect(connect.stderr()).toMatch(/^received big\.bin \(200 MB, sha256 verified\) in \.\/in$/m);
    expect(listen.stderr()).toMatch(/^offered big\.bin \(200 MB\) to alice$/m);
    expect(listen.stderr()).toMatch(deliveredLine('alice', 'big.bin', '200 MB'));
    expect(problems(connect.stderr())).toHaveLength(1); // the wrong directory
    expect(problems(listen.stderr())).toEqual([]);
  }, 120_000);
});

describe('a transfer cut halfway resumes', () => {
  /** `lanchat send` through a relay until the partial holds half the file, then SIGKILL `victim`. */
  async function cutAtHalf(alice: Person, bob: Person, listenPort: number, victim: 'sender' | 'listener', listen: Proc): Promise<Proc> {
    const link = await relay(listenPort);
    const send = sendAs(alice, [big.path], link.port);
    await until('half of big.bin in the partial', () => partialSize(bob.inbox, 'big.bin') >= SIZE / 2);
    (victim === 'sender' ? send : listen).child.kill('SIGKILL');
    return send;
  }

  it('when the sender is killed: sending the same file again sends only the rest, and the result is whole', async () => {
    const [alice, bob] = [person('alice'), person('bob')];
    const listen = await listenAs(bob, ['--accept-files', 'in', '--keep']);
    const first = await cutAtHalf(alice, bob, listen.port, 'sender', listen);
    expect((await first.exited).signal).toBe('SIGKILL');
    const lost = await listen.waitForStderr(
      /^lanchat: big\.bin from alice did not arrive: .*\((\d+) MB kept: the same file sent again resumes\)$/m,
      30_000,
    );
    expect(Number(lost[1])).toBeGreaterThanOrEqual(100);
    await listen.waitForStderr(/^listening on .*\n[^]*^listening on /m); // --keep: said again, waiting for the next peer

    const link = await relay(listen.port);
    const second = sendAs(alice, [big.path], link.port);
    expect((await second.exited).code).toBe(0);
    const [, resumed] = listen.stderr().match(/^resuming big\.bin: (\d+) MB of it came before$/m) ?? [];
    expect(Number(resumed)).toBeGreaterThanOrEqual(100);
    // Only the rest went over the wire (the TLS handshake and framing add little).
    expect(link.up()).toBeGreaterThan(SIZE - (Number(resumed) + 1) * 1e6);
    expect(link.up()).toBeLessThan(SIZE - (Number(resumed) - 1) * 1e6 + 1e6);
    expect(second.stderr()).toMatch(deliveredLine('bob', 'big.bin', '200 MB'));
    await listen.waitForStderr(/^received big\.bin \(200 MB, sha256 verified\) in \.\/in$/m);
    expect(sha256(join(bob.inbox, 'big.bin'))).toBe(big.sha256);
    expect(readdirSync(bob.inbox)).toEqual(['big.bin']);
  }, 180_000);

  it('when the receiver is killed: the sender says so and exits 1; a listener started again with the same home resumes', async () => {
    const [alice, bob] = [person('alice'), person('bob')];
    const listen = await listenAs(bob, ['--accept-files', 'in']);
    const first = await cutAtHalf(alice, bob, listen.port, 'listener', listen);
    expect((await first.exited).code).toBe(1);
    expect(first.stderr()).toMatch(/^lanchat: big\.bin was not delivered: .+$/m);
    expect(first.stderr()).not.toMatch(deliveredLine('bob', 'big.bin', '200 MB'));

    const again = await listenAs(bob, ['--accept-files', 'in']);
    const link = await relay(again.port);
    const second = sendAs(alice, [big.path], link.port);
    expect((await second.exited).code).toBe(0);
    expect((await again.exited).code).toBe(0);
    const [, resumed] = again.stderr().match(/^resuming big\.bin: (\d+) MB of it came before$/m) ?? [];
    expect(Number(resumed)).toBeGreaterThanOrEqual(100);
    expect(link.up()).toBeLessThan(SIZE - (Number(resumed) - 1) * 1e6 + 1e6);
    expect(sha256(join(bob.inbox, 'big.bin'))).toBe(big.sha256);
    expect(readdirSync(bob.inbox)).toEqual(['big.bin']);
  }, 180_000);
});

describe('chat during a transfer', () => {
  it('lines piped on either side arrive while the file is still on its way', async () => {
    const [alice, bob] = [person('alice'), person('bob')];
    const listen = await listenAs(bob, ['--accept-files', 'in'], { stdin: 'pipe' });
    // 40 MB/s: the file takes seconds, so "before its end" is not a race with a fast machine.
    const link = await relay(listen.port, { rate: 40e6 });
    const connect = lanchat(['connect', '127.0.0.1', String(link.port), '--nick', 'alice', '--commands'], {
      cwd: alice.cwd,
      env: alice.env,
      stdin: 'pipe',
    });
    connect.child.stdin!.write(`/send ${big.path}\n`);
    await until('a tenth of big.bin in the partial', () => partialSize(bob.inbox, 'big.bin') >= SIZE / 10);
    const sentAt = Date.now();
    connect.child.stdin!.write('alice: typed during the transfer\n');
    listen.child.stdin!.write('bob: and so was this\n');
    await listen.waitForStdout(Buffer.byteLength('alice: typed during the transfer\n'), 30_000);
    const aliceLineMs = Date.now() - sentAt;
    // It waited behind a window's worth of the file at most, not behind the rest of it (not a time: bytes in order).
    const writtenWhenItCame = partialSize(bob.inbox, 'big.bin');
    await connect.waitForStdout(Buffer.byteLength('bob: and so was this\n'), 30_000);
    const bobLineMs = Date.now() - sentAt;
    // Both lines are in, and the file is not.
    expect(listen.stderr()).not.toMatch(/received big\.bin/);
    expect(writtenWhenItCame).toBeLessThan(SIZE * 0.3);
    expect(listen.stdout().toString()).toBe('alice: typed during the transfer\n');
    expect(connect.stdout().toString()).toBe('bob: and so was this\n');
    connect.child.stdin!.end();
    listen.child.stdin!.end();
    expect((await connect.exited).code).toBe(0);
    expect((await listen.exited).code).toBe(0);
    expect(sha256(join(bob.inbox, 'big.bin'))).toBe(big.sha256);
    console.log(
      `a line during a 40 MB/s transfer: alice → bob ${aliceLineMs} ms, bob → alice ${bobLineMs} ms (polled every 10 ms);` +
        ` ${(writtenWhenItCame / 1e6).toFixed(1)} MB of the file written when alice's line came, ${SIZE / 10 / 1e6} MB when she sent it`,
    );
  }, 120_000);
});

describe('refused up front', () => {
  it('a file over --max-file-size: one line each side, the sender exits 1, nothing is left in the directory', async () => {
    const [alice, bob] = [person('alice'), person('bob')];
    writeFileSync(join(alice.cwd, 'three.bin'), randomBytes(3_000_000));
    const listen = await listenAs(bob, ['--accept-files', 'in', '--max-file-size', '2M']);
    const send = sendAs(alice, ['three.bin'], listen.port);
    expect((await send.exited).code).toBe(1);
    expect((await listen.exited).code).toBe(1); // a file offered did not arrive
    expect(problems(send.stderr())).toEqual([expect.stringMatching(/^lanchat: bob declined three\.bin: .*too big.*$/)]);
    expect(problems(listen.stderr())).toEqual([expect.stringMatching(/^lanchat: refused three\.bin: .*too big.*$/)]);
    expect(readdirSync(bob.inbox)).toEqual([]);
  }, 60_000);

  it('a directory that does not exist, or is a file: listen refuses at the start in one line', async () => {
    const bob = person('bob');
    writeFileSync(join(bob.cwd, 'afile'), '');
    for (const [dir, why] of [
      ['nope', /no such directory/],
      ['afile', /is not a directory/],
    ] as const) {
      const listen = lanchat(['listen', '0', '--host', '127.0.0.1', '--accept-files', dir], {
        cwd: bob.cwd,
        env: bob.env,
        stdin: 'ignore',
      });
      expect((await listen.exited).code).not.toBe(0);
      const lines = listen.stderr().trimEnd().split('\n');
      expect(lines).toEqual([expect.stringMatching(/^lanchat: /)]);
      expect(lines[0]).toMatch(why);
    }
  }, 30_000);
});

describe('names', () => {
  it('spaces, unicode, a leading dot, control characters and a name already taken: kept safe, shown inert, nothing overwritten', async () => {
    const [alice, bob] = [person('alice'), person('bob')];
    const files: Array<[string, string]> = [
      ['my report é 日本.txt', 'one'],
      ['.env', 'hidden'],
      ['x.tar.gz', 'new'],
      ['a\x1b[31mred\nb.txt', 'colour'],
    ];
    for (const [name, text] of files) writeFileSync(join(alice.cwd, name), text);
    writeFileSync(join(bob.inbox, 'x.tar.gz'), 'old');
    const listen = await listenAs(bob, ['--accept-files', 'in']);
    const send = sendAs(
      alice,
      files.map(([name]) => name),
      listen.port,
    );
    expect((await send.exited).code).toBe(0);
    expect((await listen.exited).code).toBe(0);
    expect(readdirSync(bob.inbox).sort()).toEqual(['a[31mredb.txt', 'env', 'my report é 日本.txt', 'x (1).tar.gz', 'x.tar.gz']);
    expect(readFileSync(join(bob.inbox, 'x.tar.gz'), 'utf8')).toBe('old');
    expect(readFileSync(join(bob.inbox, 'x (1).tar.gz'), 'utf8')).toBe('new');
    expect(readFileSync(join(bob.inbox, 'env'), 'utf8')).toBe('hidden');
    expect(readFileSync(join(bob.inbox, 'a[31mredb.txt'), 'utf8')).toBe('colour');
    expect(listen.stderr()).toMatch(/^received x\.tar\.gz as x \(1\)\.tar\.gz \(3 B, sha256 verified\) in \.\/in$/m);
    expect(listen.stderr()).toMatch(/^received \.env as env \(6 B, sha256 verified\) in \.\/in$/m);
    expect(listen.stderr()).toMatch(/^received my report é 日本\.txt \(3 B, sha256 verified\) in \.\/in$/m);
    expect(listen.stderr()).toMatch(/^received a\\x1b\[31mred\\x0ab\.txt as a\[31mredb\.txt \(6 B, sha256 verified\) in \.\/in$/m);
    for (const [name, text] of files)
      expect(send.stderr()).toMatch(deliveredLine('bob', name.replace('\x1b', '\\x1b').replace('\n', '\\x0a'), `${text.length} B`));
    // Nothing a peer named reaches the terminal as a control character.
    expect(listen.stderr().includes('\x1b')).toBe(false);
    expect(send.stderr().includes('\x1b')).toBe(false);
  }, 60_000);

  it('the same file twice in one send: it arrives once whole, the second offer is refused, no partial is shared', async () => {
    const [alice, bob] = [person('alice'), person('bob')];
    writeFileSync(join(alice.cwd, 'twice.bin'), randomBytes(20_000_000));
    const listen = await listenAs(bob, ['--accept-files', 'in']);
    const send = sendAs(alice, ['twice.bin', './twice.bin'], listen.port);
    await send.exited;
    await listen.exited;
    expect(send.stderr()).toMatch(deliveredLine('bob', 'twice.bin', '20 MB'));
    expect(readdirSync(bob.inbox)).toEqual(['twice.bin']);
    expect(sha256(join(bob.inbox, 'twice.bin'))).toBe(sha256(join(alice.cwd, 'twice.bin')));
    expect(problems(send.stderr())).toEqual([expect.stringMatching(/^lanchat: bob declined twice\.bin: .*on its way already/)]);
    expect(problems(listen.stderr())).toEqual([expect.stringMatching(/^lanchat: refused twice\.bin: .*on its way already/)]);
  }, 60_000);
});

describe('peers that take no files', () => {
  /** A plaintext lanchat listener of an older version: its hello lists no features; it keeps what it reads. */
  async function olderPeer(): Promise<{ port: number; read: () => string; close: () => void }> {
    let read = '';
    const sockets: Socket[] = [];
    const server = createServer((socket) => {
      sockets.push(socket);
      socket.setEncoding('utf8');
      socket.on('error', () => {});
      socket.once('data', () => socket.write('{"type":"hello","version":1,"nick":"old","maxLine":65536}\n'));
      socket.on('data', (chunk: string) => {
        read += chunk;
        if (/^\{"type":"bye"/m.test(read)) socket.end('{"type":"bye"}\n'); // as any lanchat answers a goodbye
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return {
      port: (server.address() as AddressInfo).port,
      read: () => read,
      close: () => {
        for (const socket of sockets) socket.destroy();
        server.close();
      },
    };
  }

  it('lanchat send to an older lanchat: "takes no files", exit 1, and no offer on the wire', async () => {
    const alice = person('alice');
    writeFileSync(join(alice.cwd, 'small.txt'), 'hi');
    const old = await olderPeer();
    try {
      const send = sendAs(alice, ['small.txt'], old.port, ['--insecure']);
      expect((await send.exited).code).toBe(1);
      expect(send.stderr()).toMatch(/^lanchat: old takes no files \(its lanchat is older: update it\)$/m);
      expect(old.read()).toMatch(/^\{"type":"hello"/);
      expect(old.read()).not.toMatch(/"type":"offer"/);
    } finally {
      old.close();
    }
  }, 30_000);

  it('/send in a chat with an older lanchat: said in one line, and the chat goes on', async () => {
    const alice = person('alice');
    writeFileSync(join(alice.cwd, 'small.txt'), 'hi');
    const old = await olderPeer();
    try {
      const connect = lanchat(['connect', '127.0.0.1', String(old.port), '--insecure', '--nick', 'alice', '--commands'], {
        cwd: alice.cwd,
        env: alice.env,
        stdin: 'pipe',
      });
      connect.child.stdin!.write('/send small.txt\n');
      await connect.waitForStderr(/^lanchat: old takes no files \(its lanchat is older, or it is netcat\)$/m);
      connect.child.stdin!.write('still talking\n');
      await until('the line after /send at the older peer', () => old.read().includes('still talking\n'), 10_000);
      expect(old.read()).not.toMatch(/"type":"offer"/);
    } finally {
      old.close();
    }
  }, 30_000);

  it('lanchat send to a room goes to its host, which declines at no keyboard without --accept-files; exit 1', async () => {
    const [alice, bob] = [person('alice'), person('bob')];
    writeFileSync(join(alice.cwd, 'small.txt'), 'hi');
    const host = lanchat(['listen', '0', '--host', '127.0.0.1', '--room', 'dev', '--nick', 'bob'], {
      cwd: bob.cwd,
      env: bob.env,
      stdin: 'ignore',
    });
    const [, port] = await host.waitForStderr(/^listening on 127\.0\.0\.1:(\d+) \(room dev\)$/m, 10_000);
    const send = sendAs(alice, ['small.txt'], Number(port));
    expect((await send.exited).code).toBe(1);
    expect(problems(send.stderr())).toEqual([
      'lanchat: small.txt was not sent to bob: they take no files here (lanchat listen --accept-files DIR would)',
    ]);
  }, 30_000);

  it('a listener at no keyboard and without --accept-files declines with a clear line; the sender exits 1', async () => {
    const [alice, bob] = [person('alice'), person('bob')];
    writeFileSync(join(alice.cwd, 'small.txt'), 'hi');
    const listen = await listenAs(bob, []);
    const send = sendAs(alice, ['small.txt'], listen.port);
    expect((await send.exited).code).toBe(1);
    await listen.exited;
    expect(problems(send.stderr())).toEqual([
      'lanchat: bob declined small.txt: they take no files here (lanchat listen --accept-files DIR would)',
    ]);
    expect(problems(listen.stderr())).toEqual(['lanchat: alice offers small.txt (2 B): declined (listen --accept-files DIR takes files)']);
    expect(readdirSync(bob.inbox)).toEqual([]);
  }, 30_000);
});

const { tmux, screen, history, waitForScreen, close: closeTerminals } = terminals('files');
afterAll(closeTerminals);

/** Runs lanchat in a new tmux session `width` columns wide; the screen shows EXIT=code when it ends. */
function startTerminal(name: string, args: string[], who: Person, width: number): void {
  const command = [process.execPath, CLI, ...args].map((word) => `'${word}'`).join(' ');
  tmux(
    'new-session',
    '-d',
    '-s',
    name,
    '-x',
    String(width),
    '-y',
    '24',
    '-c',
    who.cwd,
    '-e',
    `LANCHAT_HOME=${who.home}`,
    '-e',
    'LANCHAT_MDNS=off',
    `${command}; echo "EXIT=$?"; sleep 30`,
  );
}

/** The rows of a screen that show a progress line (↑ sending, ↓ receiving). */
const progressRows = (text: string): string[] => text.split('\n').filter((row) => /^[↑↓] /.test(row));

describe.skipIf(!hasTmux)('files at a terminal', () => {
  for (const { width, name } of [
    { width: 100, name: 'big.bin' },
    { width: 60, name: '日本語のファイル名がとても長いです日本語のファイル名.bin' },
  ]) {
    it(`${width} columns, ${name}: /accept, one progress line redrawn in place within the width, the draft kept, then received`, async () => {
      const [alice, bob] = [person('alice'), person('bob')];
      const source = join(alice.cwd, name);
      writeFileSync(source, readFileSync(big.path).subarray(0, 50_000_000));
      const session = `bob${width}`;
      startTerminal(session, ['listen', '0', '--host', '127.0.0.1', '--nick', 'bob'], bob, width);
      const [, port] = await waitForScreen(session, /listening on 127\.0\.0\.1:(\d+)/, 10_000);
      const link = await relay(Number(port), { rate: 20e6 });
      const connect = lanchat(['connect', '127.0.0.1', String(link.port), '--nick', 'alice', '--commands'], {
        cwd: alice.cwd,
        env: alice.env,
        stdin: 'pipe',
      });
      connect.child.stdin!.write(`/send ${name}\n`);
      // (history: the offer's line may wrap at this width)
      await waitForScreen(session, /^alice offers .* \(50 MB\) — \/accept \[DIR\] or \/decline$/m, 20_000, history);
      tmux('send-keys', '-t', session, '/accept in', 'Enter');
      const shown: string[] = [];
      for (const fraction of [0.2, 0.5]) {
        await until(`${fraction * 100}% of the file in the partial`, () => partialSize(bob.inbox, name) >= 50_000_000 * fraction, 30_000);
        link.pause();
        if (fraction === 0.2) tmux('send-keys', '-t', session, 'a draft, kept');
        // The screen settles on one progress row (redrawn at most every 200 ms), right above the prompt and the draft.
        await waitForScreen(session, /^[↓] .*\nbob> a draft, kept\s*$/m, 10_000);
        await new Promise((resolve) => setTimeout(resolve, 400)); // a redraw due now has happened
        const rows = screen(session);
        const progress = progressRows(rows);
        expect(progress).toHaveLength(1);
        expect(stringWidth(progress[0])).toBeLessThanOrEqual(width);
        expect(progress[0]).toMatch(/\d+%/);
        expect(progress[0]).toMatch(/ \d+%.* left$/); // the figures survive a narrow window
        if (width === 100) expect(progress[0]).toMatch(/^↓ big\.bin {2}\d+% \[[=> ]{20}\] /); // and the bar, when there is room
        shown.push(progress[0]);
        link.resume();
      }
      expect(shown[0]).not.toBe(shown[1]); // redrawn in place, not a new row each time
      await waitForScreen(session, /^received .* \(50 MB, sha256 verified\) in \.\/in$/m, 60_000, history);
      await waitForScreen(session, /^bob> a draft, kept\s*$/m);
      await new Promise((resolve) => setTimeout(resolve, 400));
      expect(progressRows(screen(session))).toEqual([]); // nothing left behind
      // The draft is whole: Enter sends it.
      tmux('send-keys', '-t', session, 'Enter');
      await connect.waitForStdout(Buffer.byteLength('a draft, kept\n'), 10_000);
      expect(connect.stdout().toString()).toBe('a draft, kept\n');
      expect(readFileSync(join(bob.inbox, name)).equals(readFileSync(source))).toBe(true);
      connect.child.stdin!.end();
      expect((await connect.exited).code).toBe(0);
      await waitForScreen(session, /^EXIT=0$/m, 10_000);
      tmux('kill-session', '-t', session);
    }, 120_000);
  }

  it('lanchat send at a 60-column terminal: its progress line on stderr stays one row, and is gone at the end', async () => {
    const [alice, bob] = [person('alice'), person('bob')];
    const name = '日本語のファイル名がとても長いです日本語のファイル名.bin';
    writeFileSync(join(alice.cwd, name), readFileSync(big.path).subarray(0, 50_000_000));
    const listen = await listenAs(bob, ['--accept-files', 'in']);
    const link = await relay(listen.port, { rate: 20e6 });
    startTerminal('sender', ['send', name, '--to', `127.0.0.1:${link.port}`, '--nick', 'alice'], alice, 60);
    await until('a fifth of the file in the partial', () => partialSize(bob.inbox, name) >= 10_000_000, 30_000);
    link.pause();
    await waitForScreen('sender', /^↑ .* left$/m, 10_000);
    await new Promise((resolve) => setTimeout(resolve, 400)); // a redraw due now has happened
    const progress = progressRows(screen('sender'));
    expect(progress).toHaveLength(1);
    expect(stringWidth(progress[0])).toBeLessThanOrEqual(60);
    link.resume();
    await waitForScreen('sender', /^EXIT=0$/m, 60_000);
    expect(progressRows(screen('sender'))).toEqual([]);
    expect(history('sender')).toMatch(/^bob received .* \(50 MB, sha256 verified\) in (?:<0\.1|[\d.]+) s, [\d.]+ MB\/s$/m);
    expect((await listen.exited).code).toBe(0);
    tmux('kill-session', '-t', 'sender');
  }, 120_000);

  it('/decline at the keyboard: the sender is told and exits 1; the person sees it was declined', async () => {
    const [alice, bob] = [person('alice'), person('bob')];
    writeFileSync(join(alice.cwd, 'nope.txt'), 'no thanks');
    startTerminal('decline', ['listen', '0', '--host', '127.0.0.1', '--nick', 'bob'], bob, 80);
    const [, port] = await waitForScreen('decline', /listening on 127\.0\.0\.1:(\d+)/, 10_000);
    const send = sendAs(alice, ['nope.txt'], Number(port));
    await waitForScreen('decline', /^alice offers nope\.txt \(9 B\) — \/accept \[DIR\] or \/decline$/m, 20_000);
    tmux('send-keys', '-t', 'decline', '/decline', 'Enter');
    expect((await send.exited).code).toBe(1);
    expect(problems(send.stderr())).toEqual([expect.stringMatching(/^lanchat: bob declined nope\.txt(: .*)?$/)]);
    expect(send.stderr()).not.toMatch(/alice declined/); // bob did
    await waitForScreen('decline', /^declined nope\.txt/m);
    expect(readdirSync(bob.inbox)).toEqual([]);
    tmux('kill-session', '-t', 'decline');
  }, 60_000);
});
