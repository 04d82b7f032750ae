// Discovery over a real network that this test makes: two network namespaces
// joined by a veth pair (multicast on), a listener announcing in one, discover
// and chat in the other, and Python's zeroconf (an implementation nobody here
// wrote) on either side. Multicast DNS stays inside these namespaces
// (10.198.0.0/24 exists only there); every other test runs with LANCHAT_MDNS=off.
// Needs root and `ip`: skipped, saying why, where namespaces cannot be made.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { CLI, killAll, spawnProc, type Proc } from './cli-helpers.js';

const A_IP = '10.198.0.1';
const B_IP = '10.198.0.2';
/** Generous: a loaded 2-core CI box; the speed goals are measured in bench/discovery.mjs, not asserted here. */
const WAIT_MS = 15_000;
const ZEROCONF_PEER = new URL('./zeroconf-peer.py', import.meta.url).pathname;

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: 'ignore', timeout: 10_000 });
}

/** Why namespaces cannot be made here, or null when they can. */
function whyNoNamespaces(): string | null {
  if (process.getuid?.() !== 0) return 'network namespaces need root';
  if (spawnSync('sh', ['-c', 'command -v ip']).status !== 0) return 'no `ip` command (iproute2)';
  const probe = `lanchat-dprobe-${process.pid}`;
  try {
    ip('netns', 'add', probe);
    ip('netns', 'del', probe);
    return null;
  } catch (error) {
    return `cannot make a network namespace: ${(error as Error).message.split('\n')[0]}`;
  }
}

/** The Python with zeroconf (Debian's python3-zeroconf), or null. */
function findZeroconfPython(): string | null {
  for (const python of ['/usr/bin/python3', 'python3']) {
    if (spawnSync(python, ['-c', 'import zeroconf'], { stdio: 'ignore', timeout: 10_000 }).status === 0) return python;
  }
  return null;
}

const unavailable = whyNoNamespaces();
if (unavailable) console.warn(`discovery namespace tests skipped: ${unavailable}`);
const python = unavailable ? null : findZeroconfPython();
if (!unavailable && !python)
  console.warn('zeroconf interoperability tests skipped: no python3 with zeroconf (apt-get install python3-zeroconf)');

let made = 0;
const namespaces: string[] = [];

/** Two namespaces joined by a veth pair, multicast on, each end with its address, once both ends are running. */
async function makeLink(): Promise<{ a: string; b: string; aDev: string }> {
  const id = `${process.pid}x${++made}`;
  const a = `lanchat-d${id}-a`;
  const b = `lanchat-d${id}-b`;
  for (const ns of [a, b]) {
    ip('netns', 'add', ns);
    namespaces.push(ns);
  }
  ip('link', 'add', `ld${id}a`, 'netns', a, 'type', 'veth', 'peer', 'name', `ld${id}b`, 'netns', b);
  ip('-n', a, 'addr', 'add', `${A_IP}/24`, 'dev', `ld${id}a`);
  ip('-n', b, 'addr', 'add', `${B_IP}/24`, 'dev', `ld${id}b`);
  for (const [ns, dev] of [
    [a, `ld${id}a`],
    [b, `ld${id}b`],
  ]) {
    ip('-n', ns, 'link', 'set', dev, 'multicast', 'on', 'up');
    ip('-n', ns, 'link', 'set', 'lo', 'up');
  }
  await linkUp(a, `ld${id}a`);
  await linkUp(b, `ld${id}b`);
  return { a, b, aDev: `ld${id}a` };
}

/** Until the carrier is up, an interface is not RUNNING, and Node does not list it. */
async function linkUp(ns: string, dev: string): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!execFileSync('ip', ['-n', ns, '-o', 'link', 'show', 'dev', dev], { timeout: 10_000 }).toString().includes('LOWER_UP')) {
    if (Date.now() > deadline) throw new Error(`${dev} in ${ns} did not come up`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function removeNamespaces(): void {
  for (const ns of namespaces.splice(0)) {
    try {
      ip('netns', 'del', ns); // its end of the veth pair goes with it
    } catch {
      // already gone
    }
  }
}

const home = (): string => mkdtempSync(join(tmpdir(), 'lanchat-disco-'));

/** lanchat inside `ns`, with multicast DNS on (the default for tests is off). */
function lanchatIn(ns: string, args: string[], lanchatHome: string, stdin: 'pipe' | 'ignore' = 'pipe'): Proc {
  return spawnProc('ip', ['netns', 'exec', ns, process.execPath, CLI, ...args], {
    stdin,
    env: { LANCHAT_HOME: lanchatHome, LANCHAT_MDNS: 'on' },
  });
}

/** Runs a short lanchat command in `ns` to its end (bounded by WAIT_MS). */
async function runIn(ns: string, args: string[], lanchatHome: string, input?: string): Promise<Proc & { code: number | null }> {
  const proc = lanchatIn(ns, args, lanchatHome, 'pipe');
  if (input !== undefined) proc.child.stdin!.end(input);
  else proc.child.stdin!.end();
  const timer = setTimeout(() => proc.child.kill('SIGKILL'), WAIT_MS);
  const { code } = await proc.exited;
  clearTimeout(timer);
  return Object.assign(proc, { code });
}

/** This install's key, as `lanchat id` prints it. */
function keyOf(lanchatHome: string): string {
  return execFileSync(process.execPath, [CLI, 'id'], { env: { ...process.env, LANCHAT_HOME: lanchatHome }, timeout: 10_000 })
    .toString()
    .split('\n')[0];
}

/** `lanchat listen 0 --host A_IP --announce …` in `ns`, and its port. */
async function announcedListener(ns: string, args: string[], lanchatHome: string): Promise<Proc & { port: number }> {
  const proc = lanchatIn(ns, ['listen', '0', '--host', A_IP, '--announce', ...args], lanchatHome);
  const match = await proc.waitForStderr(/^listening on 10\.198\.0\.1:(\d+) \(.*announced as \S+\)$/m, WAIT_MS);
  return Object.assign(proc, { port: Number(match[1]) });
}

afterEach(() => {
  killAll();
  removeNamespaces();
});
afterAll(removeNamespaces);

describe.skipIf(unavailable !== null)(`discovery between two network namespaces${unavailable ? ` — skipped: ${unavailable}` : ''}`, () => {
  it('discover in one namespace finds the listener announced in the other: pipe lines, JSON, and a table at a terminal', async () => {
    const { a, b } = await makeLink();
    const aliceHome = home();
    const bobHome = home();
    const aliceKey = keyOf(aliceHome);
    const alice = await announcedListener(a, ['--nick', 'alice'], aliceHome);

    const piped = await runIn(b, ['discover'], bobHome);
    expect(piped.code).toBe(0);
    expect(piped.stdout().toString()).toBe(`alice\t${A_IP}\t${alice.port}\t${aliceKey}\n`);

    // Once bob has alice as a contact with her key, discover says so.
    expect((await runIn(b, ['contacts', 'add', 'al', A_IP, String(alice.port), '--fingerprint', aliceKey], bobHome)).code).toBe(0);
    const json = await runIn(b, ['discover', '--json', '--timeout', '3'], bobHome);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout().toString())).toEqual([
      {
        nick: 'alice',
        fingerprint: aliceKey,
        version: 1,
        instance: expect.stringMatching(/^alice \(lanchat \d+ [0-9A-F]{8}\)$/),
        host: A_IP,
        port: alice.port,
        key: 'contact al',
      },
    ]);

    // At a terminal (script(1) gives it one): a table.
    const table = spawnProc('ip', ['netns', 'exec', b, 'script', '-qec', `'${process.execPath}' '${CLI}' discover`, '/dev/null'], {
      stdin: 'ignore',
      env: { LANCHAT_HOME: bobHome, LANCHAT_MDNS: 'on' },
    });
    expect((await table.exited).code).toBe(0);
    expect(table.stdout().toString()).toMatch(new RegExp(`^alice +${A_IP.replace(/\./g, '\\.')} +${alice.port} +contact al\\r?$`, 'm'));
  }, 60_000);

  it('a room is announced with its name and size; a nick taken with /nick is announced again', async () => {
    const { a, b } = await makeLink();
    const room = await announcedListener(a, ['--nick', 'carol', '--room', 'dev-room', '--commands'], home());
    const json = await runIn(b, ['discover', '--json'], home());
    expect(JSON.parse(json.stdout().toString())).toMatchObject([{ nick: 'carol', room: { name: 'dev-room', size: 1 } }]);
    expect(json.stdout().toString()).not.toMatch(/zoe/);

    room.child.stdin!.write('/nick zoe\n');
    await room.waitForStderr(/you are now zoe/, WAIT_MS);
    const after = await runIn(b, ['discover', '--json'], home());
    expect(JSON.parse(after.stdout().toString())).toMatchObject([{ nick: 'zoe', room: { name: 'dev-room' } }]);
  }, 60_000);

  it('chat NAME reaches the listener nearby that announces NAME (no contact of that name), and the first chat pins its key', async () => {
    const { a, b } = await makeLink();
    const aliceHome = home();
    const bobHome = home();
    const alice = await announcedListener(a, ['--nick', 'alice'], aliceHome);
    const chat = await runIn(b, ['chat', 'alice', '--nick', 'bob'], bobHome, 'hello alice\n');
    expect(chat.code).toBe(0);
    expect(chat.stderr()).toMatch(new RegExp(`^found alice nearby at ${A_IP.replace(/\./g, '\\.')} port ${alice.port}$`, 'm'));
    expect(chat.stderr()).toMatch(/^connected to alice/m);
    expect((await alice.exited).code).toBe(0);
    expect(alice.stdout().toString()).toBe('hello alice\n');
    // Pinning works as for any connect: the key is now pinned for the address dialled.
    const pins = JSON.parse(readFileSync(join(bobHome, 'known-peers.json'), 'utf8'));
    expect(pins.peers).toEqual({ [`${A_IP}:${alice.port}`]: keyOf(aliceHome) });
  }, 60_000);

  it('a spoofed announcement (a key the listener does not present) is refused with a warning, and nothing is sent', async () => {
    const { a, b } = await makeLink();
    const realHome = home();
    const otherKey = keyOf(home()); // someone else's key, announced for the real listener's port
    const real = lanchatIn(a, ['listen', '0', '--host', A_IP, '--nick', 'mallory-target'], realHome);
    const port = Number((await real.waitForStderr(/^listening on 10\.198\.0\.1:(\d+)$/m, WAIT_MS))[1]);
    const spoofer = spawnProc(
      'ip',
      [
        'netns',
        'exec',
        a,
        process.execPath,
        '--input-type=module',
        '-e',
        `const { announce } = await import(${JSON.stringify(new URL('../dist/discovery.js', import.meta.url).href)});
           const a = await announce({ port: ${port}, address: '${A_IP}', nick: 'alice', fingerprint: '${otherKey}', version: 1 });
           console.log('announced');
           process.stdin.resume();
           process.stdin.on('end', () => void a.stop());`,
      ],
      { stdin: 'pipe' },
    );
    await spoofer.waitForStdout(1, WAIT_MS);

    const chat = await runIn(b, ['chat', 'alice', '--nick', 'bob'], home(), 'the secret\n');
    expect(chat.code).toBe(1);
    expect(chat.stderr()).toContain(`lanchat: WARNING: ${A_IP}:${port} presented another key than the one announced for it`);
    expect(chat.stderr()).toContain(`  announced ${otherKey}\n  presented ${keyOf(realHome)}\nnothing was sent`);
    real.child.kill('SIGTERM');
    await real.exited;
    expect(real.stdout().toString()).toBe('');
    spoofer.child.stdin!.end();
  }, 60_000);

  it('several listeners announcing one nick: chat NAME lists them and exits 2', async () => {
    const { a, b } = await makeLink();
    await announcedListener(a, ['--nick', 'twin'], home());
    await announcedListener(a, ['--nick', 'twin'], home());
    const chat = await runIn(b, ['chat', 'twin'], home(), 'hi\n');
    expect(chat.code).toBe(2);
    expect(chat.stderr()).toMatch(/^lanchat: 2 listeners nearby answer to "twin":$/m);
    expect(chat.stderr().match(/^ {2}twin +10\.198\.0\.1 +\d+ +a new key$/gm)).toHaveLength(2);
  }, 60_000);

  it('nobody announcing NAME: chat says so, exit 1; contacts add --nearby saves a listener with its address and key', async () => {
    const { a, b } = await makeLink();
    const aliceHome = home();
    const bobHome = home();
    const nobody = await runIn(b, ['chat', 'alice'], bobHome, 'hi\n');
    expect(nobody.code).toBe(1);
    expect(nobody.stderr()).toBe(
      'lanchat: no contact named "alice", and nobody nearby announces it (lanchat contacts list shows them all)\n',
    );

    const alice = await announcedListener(a, ['--nick', 'alice'], aliceHome);
    const added = await runIn(b, ['contacts', 'add', 'ally', '--nearby', 'alice'], bobHome);
    expect(added.code).toBe(0);
    expect(added.stderr()).toContain(`added ally (${A_IP}:${alice.port}) with the key it announced:\n  ${keyOf(aliceHome)}\n`);
    const shown = await runIn(b, ['contacts', 'show', 'ally', '--json'], bobHome);
    expect(JSON.parse(shown.stdout().toString())).toEqual({ name: 'ally', host: A_IP, port: alice.port, fingerprint: keyOf(aliceHome) });
    const chat = await runIn(b, ['chat', 'ally', '--nick', 'bob'], bobHome, 'hi ally\n');
    expect(chat.code).toBe(0);
    expect(alice.stdout().toString()).toBe('hi ally\n');
  }, 60_000);

  it('without --announce (and with --no-announce over config announce on) a listener is not found', async () => {
    const { a, b } = await makeLink();
    const quietHome = home();
    writeFileSync(join(quietHome, 'config.json'), '{"announce": true}\n', { mode: 0o600 });
    const quiet = lanchatIn(a, ['listen', '0', '--host', A_IP, '--no-announce'], quietHome);
    await quiet.waitForStderr(/^listening on 10\.198\.0\.1:\d+$/m, WAIT_MS);
    const plain = lanchatIn(a, ['listen', '0', '--host', A_IP], home());
    await plain.waitForStderr(/^listening on 10\.198\.0\.1:\d+$/m, WAIT_MS);
    const configured = lanchatIn(a, ['listen', '0', '--host', A_IP, '--nick', 'configured'], quietHome);
    await configured.waitForStderr(/^listening on 10\.198\.0\.1:\d+ \(announced as configured\)$/m, WAIT_MS);
    const found = await runIn(b, ['discover'], home());
    expect(found.stdout().toString()).toMatch(/^configured\t/);
    expect(found.stdout().toString().trim().split('\n')).toHaveLength(1);
  }, 60_000);

  it('--announce with nothing to announce on fails (exit 1); config announce on is then a note, and the listener listens', async () => {
    const lonely = `lanchat-d${process.pid}x${++made}-lonely`; // loopback only
    ip('netns', 'add', lonely);
    namespaces.push(lonely);
    ip('-n', lonely, 'link', 'set', 'lo', 'up');
    const refused = await runIn(lonely, ['listen', '0', '--announce'], home());
    expect(refused.code).toBe(1);
    expect(refused.stderr()).toBe('lanchat: nothing to announce on: no network interface has an address\n');

    const configured = home();
    writeFileSync(join(configured, 'config.json'), '{"announce": true}\n', { mode: 0o600 });
    const listen = lanchatIn(lonely, ['listen', '0', '--host', '127.0.0.1'], configured);
    await listen.waitForStderr(
      /^listening on 127\.0\.0\.1:\d+\nlanchat: not announced \(lanchat config announce is on\): nothing to announce on: 127\.0\.0\.1 is not the address of a network interface \(loopback is not announced\)\n/,
      WAIT_MS,
    );
  }, 60_000);

  it('an interface that comes up after the listener started is announced on (within its 5 s rescan)', async () => {
    const { a, b, aDev } = await makeLink();
    ip('-n', a, 'link', 'set', aDev, 'down'); // the link to b: not yet
    // Another network meanwhile: a veth pair both of whose ends are in a.
    ip('-n', a, 'link', 'add', 'lother1', 'type', 'veth', 'peer', 'name', 'lother2');
    ip('-n', a, 'addr', 'add', '10.196.0.1/24', 'dev', 'lother1');
    ip('-n', a, 'link', 'set', 'lother1', 'multicast', 'on', 'up');
    ip('-n', a, 'link', 'set', 'lother2', 'up');
    await linkUp(a, 'lother1');
    const late = lanchatIn(a, ['listen', '0', '--announce', '--nick', 'late'], home());
    await late.waitForStderr(/^listening on .*:\d+ \(announced as late\)$/m, WAIT_MS);
    expect((await runIn(b, ['discover'], home())).stdout().toString()).toBe('');

    ip('-n', a, 'link', 'set', aDev, 'up');
    await linkUp(a, aDev);
    const found = await runIn(b, ['discover', '--timeout', '8'], home());
    expect(found.stdout().toString()).toMatch(/^late\t10\.198\.0\.1\t\d+\t/);
  }, 60_000);

  describe.skipIf(!python)('with Python zeroconf', () => {
    it('zeroconf sees the lanchat listener with its TXT values, and its goodbye when it stops; a new discover finds nobody', async () => {
      const { a, b } = await makeLink();
      const aliceHome = home();
      const browser = spawnProc('ip', ['netns', 'exec', b, python!, ZEROCONF_PEER, 'browse'], { stdin: 'pipe' });
      await browser.waitForStdout(9, WAIT_MS); // "browsing\n"
      const alice = await announcedListener(a, ['--nick', 'alice'], aliceHome);
      const hex = keyOf(aliceHome).replace(/:/g, '');
      const seen = () => browser.stdout().toString();
      await waitFor(() => /^added alice /m.test(seen()), 'zeroconf to see alice', seen);
      expect(seen()).toMatch(
        new RegExp(
          `^added alice \\(lanchat ${alice.port} ${hex.slice(0, 8)}\\)\\._lanchat\\._tcp\\.local\\. 10\\.198\\.0\\.1 ${alice.port} fp=${hex} nick=alice v=1$`,
          'm',
        ),
      );

      alice.child.kill('SIGTERM');
      expect((await alice.exited).code).toBe(143);
      // The goodbye (TTL 0): without it zeroconf would keep alice for 2 minutes and more.
      await waitFor(() => /^removed alice /m.test(seen()), "zeroconf to hear alice's goodbye", seen);
      const after = await runIn(b, ['discover'], home());
      expect(after.stdout().toString()).toBe('');
      expect(after.stderr()).toBe('nobody nearby announces lanchat (listened for 2 s)\n');
      browser.child.stdin!.end();
    }, 60_000);

    it('lanchat finds a listener that zeroconf publishes, beside a lanchat listener on the same host (both hold port 5353)', async () => {
      const { a, b } = await makeLink();
      const key = keyOf(home());
      const publisher = spawnProc(
        'ip',
        [
          'netns',
          'exec',
          a,
          python!,
          ZEROCONF_PEER,
          'publish',
          'zed-service',
          A_IP,
          '6000',
          'v=1',
          'nick=zed',
          `fp=${key}`,
          'room=zroom',
          'size=3',
        ],
        { stdin: 'pipe' },
      );
      await publisher.waitForStdout(10, WAIT_MS); // "published\n"
      const alice = await announcedListener(a, ['--nick', 'alice'], home());
      const json = await runIn(b, ['discover', '--json'], home());
      const found = JSON.parse(json.stdout().toString()) as Array<{ nick: string }>;
      expect(found.map((n) => n.nick).sort()).toEqual(['alice', 'zed']);
      expect(found.find((n) => n.nick === 'zed')).toEqual({
        nick: 'zed',
        fingerprint: key,
        version: 1,
        room: { name: 'zroom', size: 3 },
        instance: 'zed-service',
        host: A_IP,
        port: 6000,
        key: 'a new key',
      });
      expect(found.find((n) => n.nick === 'alice')).toMatchObject({ host: A_IP, port: alice.port });
      publisher.child.stdin!.end();
    }, 60_000);
  });
});

/** Polls `ready` (every 50 ms, at most WAIT_MS): the zeroconf peer prints as it hears. */
async function waitFor(ready: () => boolean, what: string, output: () => string): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!ready()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; output so far:\n${output()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
