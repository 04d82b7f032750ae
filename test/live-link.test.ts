// A live link over a real network: two network namespaces joined by a veth
// pair, a lanchat (or netcat) peer in each, and the link cut silently (the
// interface set down: no FIN, no reset reaches either side). Both sides must
// notice and exit 1 with a "lost" line. Traffic stays inside the namespaces
// this test makes (10.199.0.0/30 exists only there); they are removed after
// each test. Needs root and `ip`: skipped, saying why, where they cannot be made.
// And over loopback: a reader that stalls is alive, not lost.
import { execFileSync } from 'node:child_process';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { setTimeout as sleep } from 'node:timers/promises';
import { CLI, fileInput, killAll, lanchat, listener, spawnProc, type Proc } from './cli-helpers.js';

const LISTENER_IP = '10.199.0.1';
const CONNECTOR_IP = '10.199.0.2';
/** The issue's promise: both sides notice a silent cut within this. */
const NOTICE_MS = 20_000;

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: 'ignore', timeout: 10_000 });
}

function hasCommand(command: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Why namespaces cannot be made here, or null when they can. */
function whyNoNamespaces(): string | null {
  if (process.getuid?.() !== 0) return 'network namespaces need root';
  if (!hasCommand('ip')) return 'no `ip` command (iproute2)';
  const probe = `lanchat-probe-${process.pid}`;
  try {
    ip('netns', 'add', probe);
    ip('netns', 'del', probe);
    return null;
  } catch (error) {
    return `cannot make a network namespace: ${(error as Error).message.split('\n')[0]}`;
  }
}

const unavailable = whyNoNamespaces();
if (unavailable) console.warn(`live-link tests skipped: ${unavailable}`);

let made = 0;
const namespaces: string[] = [];

/** Two namespaces joined by a veth pair, each end up with its address; `cut()` sets one end down. */
function makeLink(): { listenerNs: string; connectorNs: string; cut: () => void } {
  const id = `${process.pid}x${++made}`;
  const listenerNs = `lanchat-${id}-l`;
  const connectorNs = `lanchat-${id}-c`;
  const listenerDev = `lc${id}l`; // interface names: at most 15 characters
  const connectorDev = `lc${id}c`;
  for (const ns of [listenerNs, connectorNs]) {
    ip('netns', 'add', ns);
    namespaces.push(ns);
  }
  ip('link', 'add', listenerDev, 'netns', listenerNs, 'type', 'veth', 'peer', 'name', connectorDev, 'netns', connectorNs);
  ip('-n', listenerNs, 'addr', 'add', `${LISTENER_IP}/30`, 'dev', listenerDev);
  ip('-n', connectorNs, 'addr', 'add', `${CONNECTOR_IP}/30`, 'dev', connectorDev);
  ip('-n', listenerNs, 'link', 'set', listenerDev, 'up');
  ip('-n', connectorNs, 'link', 'set', connectorDev, 'up');
  return { listenerNs, connectorNs, cut: () => ip('-n', listenerNs, 'link', 'set', listenerDev, 'down') };
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

function lanchatIn(ns: string, args: string[]): Proc {
  return spawnProc('ip', ['netns', 'exec', ns, process.execPath, CLI, ...args]);
}

async function listenerIn(ns: string, args: string[]): Promise<Proc & { port: number }> {
  const proc = lanchatIn(ns, ['listen', '0', '--host', LISTENER_IP, '--nick', 'bob', ...args]);
  const match = await proc.waitForStderr(/^listening on 10\.199\.0\.1:(\d+)$/m, 15_000);
  return Object.assign(proc, { port: Number(match[1]) });
}

/** Resolves to the exit code and how long after `since` the process ended; rejects after NOTICE_MS + 10 s. */
async function exitAfter(proc: Proc, since: number, who: string): Promise<{ code: number | null; ms: number }> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${who} had not exited ${NOTICE_MS + 10_000} ms after the cut; stderr:\n${proc.stderr()}`)),
      NOTICE_MS + 10_000,
    );
  });
  try {
    const { code } = await Promise.race([proc.exited, deadline]);
    return { code, ms: Date.now() - since };
  } finally {
    clearTimeout(timer);
  }
}

/** Keeps writing numbered lines (about 3 MB/s) into `proc`'s stdin until it exits: a piped sender mid-stream. */
function stream(proc: Proc): void {
  const stdin = proc.child.stdin!;
  stdin.on('error', () => {}); // EPIPE once it has gone
  let n = 0;
  const timer = setInterval(() => {
    if (stdin.writableLength > 1024 * 1024) return; // it stopped reading: so does TCP
    const lines: string[] = [];
    for (let i = 0; i < 640; i++) lines.push(`${n++} ${'y'.repeat(90)}\n`);
    stdin.write(lines.join(''));
  }, 20);
  void proc.exited.then(() => clearInterval(timer));
}

afterEach(() => {
  killAll();
  removeNamespaces();
});
afterAll(removeNamespaces);

describe.skipIf(unavailable !== null)(
  `a silent cut of a real link (veth between two network namespaces)${unavailable ? ` — skipped: ${unavailable}` : ''}`,
  () => {
    it.each([
      ['an idle session', ['--alive', '3'], false],
      ['a piped sender streaming when the link goes', ['--alive', '3'], true],
      ['an idle session at the default limit (15 s)', [], false],
    ])(
      '%s: both sides exit 1 with "lost … no answer" within 20 s',
      async (_name, alive: string[], piped: boolean) => {
        const { listenerNs, connectorNs, cut } = makeLink();
        const listener = await listenerIn(listenerNs, alive);
        const connector = lanchatIn(connectorNs, ['connect', LISTENER_IP, String(listener.port), '--nick', 'alice', ...alive]);
        await Promise.all([connector.waitForStderr(/^connected to bob/m, 15_000), listener.waitForStderr(/^connected to alice/m, 15_000)]);
        if (piped) {
          stream(connector);
          await listener.waitForStdout(1024 * 1024, 15_000); // lines are flowing
        }

        const cutAt = Date.now();
        cut();
        const [listenerExit, connectorExit] = await Promise.all([
          exitAfter(listener, cutAt, 'the listener'),
          exitAfter(connector, cutAt, 'the connector'),
        ]);
        const limit = alive.length > 0 ? alive[1] : '15';
        console.log(`${_name}: listener noticed after ${listenerExit.ms} ms, connector after ${connectorExit.ms} ms`);
        expect(listener.stderr()).toMatch(new RegExp(`^lanchat: lost alice: no answer for ${limit} s$`, 'm'));
        expect(connector.stderr()).toMatch(new RegExp(`^lanchat: lost bob: no answer for ${limit} s$`, 'm'));
        expect([listenerExit.code, connectorExit.code]).toEqual([1, 1]);
        expect(Math.max(listenerExit.ms, connectorExit.ms)).toBeLessThan(NOTICE_MS);
        if (piped) expect(connector.stderr()).toMatch(/^lanchat: \d+ lines? not confirmed by bob$/m);
      },
      90_000,
    );

    it.skipIf(!hasCommand('nc'))(
      'a netcat peer that vanishes is noticed by TCP keepalive within 20 s (--alive 3: about 11 s)',
      async () => {
        const { listenerNs, connectorNs, cut } = makeLink();
        const listener = await listenerIn(listenerNs, ['--alive', '3']);
        const nc = spawnProc('ip', ['netns', 'exec', connectorNs, 'nc', LISTENER_IP, String(listener.port)]);
        nc.child.stdin!.write('hi from nc\n'); // and stays open, saying nothing more
        await listener.waitForStderr(/^connected to 10\.199\.0\.2:\d+ \(plain text/m, 15_000);
        await listener.waitForStdout(3, 15_000);

        const cutAt = Date.now();
        cut();
        const { code, ms } = await exitAfter(listener, cutAt, 'the listener');
        console.log(`netcat peer: listener noticed after ${ms} ms`);
        expect(listener.stderr()).toMatch(/^lanchat: lost 10\.199\.0\.2:\d+: no answer \(the connection timed out\)$/m);
        expect(code).toBe(1);
        expect(ms).toBeLessThan(NOTICE_MS);
      },
      90_000,
    );
  },
);

describe('a live but stalled reader (loopback)', () => {
  it('a listener whose output stalls for 5 times --alive is not lost, nor loses its peer: every byte arrives, both exit 0', async () => {
    const text = `${'z'.repeat(99)}\n`.repeat(200_000); // 20 MB: far more than the pipes and sockets between them hold
    const listen = await listener(['--alive', '1']);
    const connect = lanchat(['connect', '127.0.0.1', String(listen.port), '--alive', '1', '--wait', '60'], { stdin: fileInput(text) });
    await listen.waitForStdout(1, 15_000);
    const stdout = listen.child.stdout!;
    stdout.pause(); // the listener's output is stuck: it stops reading its socket, and the sender stalls
    await sleep(5000); // the stall under test, not a wait for an event
    stdout.resume();
    expect((await connect.exited).code).toBe(0);
    expect((await listen.exited).code).toBe(0);
    expect(listen.stdout().length).toBe(text.length);
    expect(listen.stderr() + connect.stderr()).not.toMatch(/lost/);
  }, 60_000);
});
