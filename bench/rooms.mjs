#!/usr/bin/env node
// `npm run bench`, rooms: `lanchat listen --room` against ncat's broker
// (`ncat -l --chat`) with the same plain TCP members, opened by this process,
// in the same run; then the room over TLS with `lanchat connect` members. Every
// row is measured in this run and printed as a Markdown table with ratios.
// Loopback only, ephemeral ports, every wait bounded, every child killed.
//
// What a member says: short ASCII lines `~b SENDER SEQ SENT_µs` padded to 64
// bytes, SENT_µs read from this process's clock just before the write, so a
// line's latency is its arrival at another member minus that (both clocks are
// ours). Whatever a broker puts before the `~` (ncat's `<userN> `, once per
// read; lanchat's `NICK: `) is skipped; lines starting `* ` (lanchat) or
// `<announce>` (ncat) are events. Every line must reach every other member
// once, in order: what does not is counted as lost.
//
// Two loads, each for BENCH_ROOM_SECONDS in the same room:
// - paced: the room says BENCH_ROOM_RATE lines a second in all (spread evenly
//   over the members, round robin): a busy room, below what either broker can
//   carry, so the latency is the broker's own and not a queue.
// - full speed: each member sends as fast as the room delivers, keeping at most
//   WINDOW of its lines in flight (not yet at every other member). Without such
//   a bound a sender would only fill queues (lanchat drops a member whose queue
//   passes its budget; ncat's grow in the kernel), so lines/s here is what the
//   broker carries, and the latency is mostly the time in those windows.
// At 50 members (BENCH_ROOM_STALL_SIZE's room) two more phases: the paced load
// beside one more member that floods (writes lines as fast as its socket takes
// them, for BENCH_ROOM_FLOOD_SECONDS), and full speed beside one that stalls.
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { HOST, freePort, sleep, waitListening } from './loopback.mjs';

const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
const SIZES = (process.env.BENCH_ROOM_SIZES ?? '10,50,200').split(',').map(Number);
const PHASE_SECONDS = Number(process.env.BENCH_ROOM_SECONDS ?? 2);
/**
 * The run beside a stalled member is longer: the broker's kernel send buffer
 * to it takes about 3 MiB on loopback (autotuned) before the broker itself
 * holds anything, some 12 s at 50 members; lanchat then drops the member at
 * 1 MiB more, or 15 s after it stopped draining.
 */
const STALL_SECONDS = Number(process.env.BENCH_ROOM_STALL_SECONDS ?? 20);
const PACED_RATE = Number(process.env.BENCH_ROOM_RATE ?? 200);
/** How long one member floods the room beside the paced load. */
const FLOOD_SECONDS = Number(process.env.BENCH_ROOM_FLOOD_SECONDS ?? 5);

const TLS_MEMBERS = Number(process.env.BENCH_ROOM_TLS ?? 10);
/** The room with a stalled member, and the largest the memory row is about. */
const STALL_SIZE = SIZES.includes(50) ? 50 : SIZES[Math.floor(SIZES.length / 2)];
/** Lines a member keeps in flight at full speed: 4 × 64 bytes stays within one read of ncat's (so its per-read prefix never cuts a line). */
const WINDOW = 4;
const LINE_BYTES = 64;
/** What a flooding member writes: lines without a `~` (members skip them natively), 1024 of them a write. */
const FLOOD_LINES_PER_WRITE = 1024;
const FLOOD_END = 'flood '.padEnd(LINE_BYTES - 1, '.').slice(-8);
const FLOOD_WRITE = Buffer.from(
  'flood '
    .padEnd(LINE_BYTES - 1, '.')
    .concat('\n')
    .repeat(FLOOD_LINES_PER_WRITE),
);
/** A line not at every member this long after it was sent is given up (counted lost) so that its sender's window moves on. */
const GIVE_UP_MS = 5000;
/** After a phase, how long lines still under way may take to arrive. */
const DRAIN_MS = 5000;
/** How long a room may take until every member hears every other. */
const JOIN_MS = 30_000;

for (const [tool, pkg] of [
  ['ncat', 'ncat'],
  ['socat', 'socat'],
]) {
  if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) {
    console.error(`bench: ${tool} is not installed (apt-get install ${pkg})`);
    process.exit(1);
  }
}
const listenHelp = spawnSync(CLI, ['listen', '--help'], { encoding: 'utf8' }).stdout ?? '';
const HAS_ROOM = listenHelp.includes('--room');
const HAS_MAX_PEERS = listenHelp.includes('--max-peers');
/** The brokers of the plain rooms, in this order (BENCH_ROOM_BROKERS=lanchat for a quick look at lanchat alone). */
const KINDS = (process.env.BENCH_ROOM_BROKERS ?? 'ncat,lanchat').split(',').filter((kind) => kind === 'ncat' || HAS_ROOM);

const work = mkdtempSync(join(tmpdir(), 'lanchat-bench-rooms-'));
process.on('exit', () => rmSync(work, { recursive: true, force: true }));
const children = new Set();
process.on('exit', () => children.forEach((child) => child.kill('SIGKILL')));

const fmt = (n, digits = 0) =>
  Number.isFinite(n) ? n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : '–';
const now = () => performance.now();

function track(child) {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** Ends a child: SIGTERM (lanchat says goodbye), SIGKILL after `ms`. */
async function stop(child, ms = 5000) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exit = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), ms);
  await exit;
  clearTimeout(timer);
}

/** Peak resident memory (MiB) of a process so far; its VmHWM is kept by the kernel. */
function peakMiB(pid) {
  try {
    return Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
  } catch {
    return NaN;
  }
}

/** CPU seconds a process has used so far (user and system), from /proc. */
function cpuSeconds(pid) {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ, 100 on Linux)
  } catch {
    return NaN;
  }
}

/** A broker: ncat's, or a lanchat room host (a headless relay: stdin /dev/null). */
async function startBroker(kind, size) {
  if (kind === 'ncat') {
    const port = await freePort();
    const child = track(
      spawn('ncat', ['-l', HOST, String(port), '--chat', '--max-conns', String(size + 10)], { stdio: ['ignore', 'ignore', 'pipe'] }),
    );
    let err = '';
    child.stderr.setEncoding('utf8').on('data', (chunk) => (err = (err + chunk).slice(-4000)));
    await waitListening(port);
    return { child, port, stderr: () => err };
  }
  const home = join(work, `host-${kind}-${size}`);
  mkdirSync(home, { recursive: true });
  const args = ['listen', '0', '--room', '--host', HOST, ...(HAS_MAX_PEERS ? ['--max-peers', String(size + 10)] : [])];
  const child = track(spawn(CLI, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, LANCHAT_HOME: home } }));
  let err = '';
  child.stderr.setEncoding('utf8').on('data', (chunk) => (err = (err + chunk).slice(-20_000)));
  const deadline = Date.now() + 10_000;
  while (!/listening on .*:(\d+)/.test(err)) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`lanchat listen --room did not start: ${err.trim()}`);
    await sleep(10);
  }
  return { child, port: Number(/listening on .*:(\d+)/.exec(err)[1]), stderr: () => err };
}

/** Splits a byte stream into lines for `onLine(line, arrivedAt)`. */
function lineSplitter(onLine) {
  let pending = '';
  return (chunk) => {
    const at = now();
    pending += chunk;
    let start = 0;
    let nl;
    while ((nl = pending.indexOf('\n', start)) >= 0) {
      onLine(pending.slice(start, nl), at);
      start = nl + 1;
    }
    pending = pending.slice(start);
  };
}

const NL = 0x0a;
const TILDE = 0x7e;
const EVENT_STARTS = [Buffer.from('\n* '), Buffer.from('<announce>')];

/**
 * Splits a member's byte stream into lines for `onLine(line, arrivedAt)`, as
 * lineSplitter; but while `room.flooding`, only the lines the bench reads (a
 * `~` in them, or an event) are decoded: a flood's lines are skipped by
 * Buffer.indexOf, so that one process can read what a broker sends 50 members.
 * `onSkipped(lines)` counts them when given (one member counts the flood).
 */
function memberReader(room, onLine, onSkipped) {
  let tail = null; // an unfinished last line
  return (chunk) => {
    const at = now();
    const firstNl = chunk.indexOf(NL);
    if (firstNl < 0) {
      tail = tail ? Buffer.concat([tail, chunk]) : Buffer.from(chunk);
      return;
    }
    const lastNl = chunk.lastIndexOf(NL);
    let start = 0;
    if (tail) {
      onLine(Buffer.concat([tail, chunk.subarray(0, firstNl)]).toString('utf8'), at);
      start = firstNl + 1;
    }
    tail = lastNl + 1 < chunk.length ? Buffer.from(chunk.subarray(lastNl + 1)) : null;
    if (!room.flooding) {
      for (let nl = chunk.indexOf(NL, start); nl >= 0 && nl <= lastNl; nl = chunk.indexOf(NL, start)) {
        onLine(chunk.toString('utf8', start, nl), at);
        start = nl + 1;
      }
      return;
    }
    const whole = chunk.subarray(0, lastNl + 1);
    let read = 0;
    const readLineAt = (i) => {
      const from = Math.max(start, whole.lastIndexOf(NL, i) + 1);
      onLine(whole.toString('utf8', from, whole.indexOf(NL, i)), at);
      read++;
    };
    for (let i = whole.indexOf(TILDE, start); i >= 0; i = whole.indexOf(TILDE, whole.indexOf(NL, i) + 1)) readLineAt(i);
    if (whole[start] === EVENT_STARTS[0][1] && whole[start + 1] === EVENT_STARTS[0][2]) readLineAt(start); // `* ` first
    for (const mark of EVENT_STARTS) {
      for (let i = whole.indexOf(mark, start); i >= 0; i = whole.indexOf(mark, i + mark.length)) readLineAt(mark[0] === NL ? i + 1 : i);
    }
    if (onSkipped) {
      let lines = 0;
      for (let nl = whole.indexOf(NL, start); nl >= 0; nl = whole.indexOf(NL, nl + 1)) lines++;
      onSkipped(lines - read);
    }
  };
}

/**
 * A plain TCP member. Each has its own source address in 127.0.0.0/8, as each
 * member of a LAN room has its own address (lanchat's door looks at no more
 * than 4 newcomers from one address at once). It says `~r ID` at once, so that
 * a broker that waits for a first word (lanchat tells netcat from lanchat so)
 * need not wait long.
 */
function tcpMember(id, port, room) {
  const member = { id, closed: false, retries: 0, write: null, close: null };
  const open = () => {
    const socket = connect({ port, host: HOST, localAddress: `127.1.${Math.floor(id / 250)}.${(id % 250) + 1}` });
    socket.setNoDelay(true);
    socket.on(
      'data',
      memberReader(room, (line, at) => room.arrive(member, line, at), id === 0 ? (lines) => (room.floodHeard += lines) : undefined),
    );
    socket.on('error', () => {}); // a reset shows as 'close'
    socket.once('connect', () => socket.write(`~r ${id}\n`));
    socket.once('close', () => {
      if (member.socket !== socket || room.closing) return;
      // Turned away while the room fills (lanchat's door: `busy: too many connections at once`): try again.
      if (!room.ready && member.retries < 50) {
        member.retries++;
        setTimeout(open, 100 + Math.random() * 200);
      } else room.lost(member);
    });
    member.socket = socket;
  };
  member.write = (text) => member.socket.write(text);
  member.close = () => member.socket.destroy();
  open();
  return member;
}

/**
 * A member that never reads: socat sends what we write to its stdin and never
 * reads the socket, whose receive buffer is 4 KiB (Node cannot set it): so
 * what is sent to it piles up at the broker within a second, not after the
 * megabytes that a default buffer on loopback takes first.
 */
function stalledMember(id, port) {
  const child = track(
    spawn('socat', ['-u', 'STDIN', `TCP:${HOST}:${port},bind=127.1.${Math.floor(id / 250)}.${(id % 250) + 1},rcvbuf=4096`], {
      stdio: ['pipe', 'ignore', 'ignore'],
    }),
  );
  child.stdin.on('error', () => {});
  child.stdin.write(`~r ${id}\n`);
  return { id, stalled: true, heard: new Set(), close: () => child.kill('SIGKILL') };
}

/**
 * A member that floods: it says `~r ID`, then, between start() and stop(),
 * writes lines as fast as its socket takes them (no window: a pipe of a large
 * file into the room). It reads what it is sent, and drops it.
 */
function floodingMember(id, port) {
  const socket = connect({ port, host: HOST, localAddress: `127.1.${Math.floor(id / 250)}.${(id % 250) + 1}` });
  socket.setNoDelay(true);
  socket.on('data', () => {});
  socket.on('error', () => {});
  socket.once('connect', () => socket.write(`~r ${id}\n`));
  const flooder = { id, sent: 0, stopped: false };
  const pump = () => {
    while (!flooder.stopped && !socket.destroyed) {
      flooder.sent += FLOOD_LINES_PER_WRITE;
      if (!socket.write(FLOOD_WRITE)) return void socket.once('drain', pump);
    }
  };
  flooder.start = pump;
  flooder.stop = () => (flooder.stopped = true);
  flooder.close = () => socket.destroy();
  return flooder;
}

/** A `lanchat connect` member over TLS: its stdin a pipe we write lines to, its stdout (plain format) read here. */
async function processMember(id, port, room) {
  const home = join(work, `member-${id}`);
  const member = { id, closed: false, retries: 0, stderr: '', exit: null };
  for (;;) {
    const child = track(
      spawn(CLI, ['connect', '--nick', `m${id}`, '--format', 'plain', HOST, String(port)], {
        stdio: ['pipe', 'pipe', 'pipe'],
        env: { ...process.env, LANCHAT_HOME: home },
      }),
    );
    member.stderr = '';
    child.stdin.on('error', () => {});
    child.stdout.setEncoding('utf8').on(
      'data',
      lineSplitter((line, at) => room.arrive(member, line, at)),
    );
    child.stderr.setEncoding('utf8').on('data', (chunk) => (member.stderr = (member.stderr + chunk).slice(-4000)));
    const exited = once(child, 'exit');
    const deadline = Date.now() + 10_000;
    while (!/connected|joined/.test(member.stderr) && child.exitCode === null && Date.now() < deadline) await sleep(10);
    if (child.exitCode === null && /connected|joined/.test(member.stderr)) {
      member.child = child;
      member.exit = exited.then(([code, signal]) => ({ code, signal }));
      void member.exit.then(() => room.closing || room.lost(member));
      break;
    }
    child.kill('SIGKILL');
    if (++member.retries > 5) throw new Error(`member ${id} could not join: ${member.stderr.trim()}`);
    await sleep(300);
  }
  member.write = (text) => member.child.stdin.write(text);
  member.close = () => member.child.stdin.end();
  return member;
}

/** One measured stretch: what was sent in it, what arrived, how late. */
function newPhase(name, brokerPid) {
  const start = now();
  const usage = process.cpuUsage();
  return {
    name,
    sent: 0,
    expected: 0,
    delivered: 0,
    deliveredInTime: 0,
    lastAt: start,
    longestPause: 0,
    latencies: [],
    start,
    end: NaN,
    givenUp: 0,
    brokerCpu: cpuSeconds(brokerPid),
    membersCpu: (usage.user + usage.system) / 1e6,
  };
}

function summary(phase) {
  const xs = Float64Array.from(phase.latencies).sort();
  const at = (q) => (xs.length ? xs[Math.min(xs.length - 1, Math.floor(q * xs.length))] : NaN);
  const seconds = (phase.end - phase.start) / 1000;
  return {
    // Lines that arrived while the phase ran: those still under way at its end count for loss, not for the rate.
    rate: phase.deliveredInTime / seconds,
    p50: at(0.5),
    p99: at(0.99),
    sent: phase.sent,
    lost: phase.expected - phase.delivered,
    // The longest time in which no member got anything (a broker that waits on a stalled member).
    longestPause: Math.max(phase.longestPause, phase.end - phase.lastAt) / 1000,
    expected: phase.expected,
    // Share of one core: the broker's, and this process's (all the members, and the bench's bookkeeping).
    brokerCpu: (phase.brokerCpu / seconds) * 100,
    membersCpu: (phase.membersCpu / seconds) * 100,
  };
}

/**
 * The room seen from its members: who has heard whom, the lines in flight,
 * and the phase they count for.
 */
class Room {
  constructor({ attributed }) {
    /** Members that talk and listen (not the stalled one). */
    this.members = [];
    this.ready = false;
    this.closing = false;
    /** lanchat: every line must carry its sender's name as the host knows it, the same for all of a sender's lines. */
    this.attributed = attributed;
    this.prefixOf = new Map();
    this.misattributed = 0;
    this.outOfOrder = 0;
    this.unparsed = [];
    this.events = [];
    this.dropped = [];
    this.phase = null;
  }

  add(member) {
    member.heard = new Set();
    member.last = new Map(); // sender id → last seq received
    member.inFlight = new Map(); // seq → { sentAt, waiting, phase }
    member.nextSeq = 1;
    this.members.push(member);
  }

  arrive(member, line, at) {
    const marker = line.indexOf('~');
    if (marker < 0 && line.endsWith(FLOOD_END)) {
      if (member.id === 0) this.floodHeard++;
      return;
    }
    if (marker < 0) {
      if (line.startsWith('* ') || line.startsWith('<announce>')) {
        if (member === this.members[0] && this.events.length < 2000) this.events.push({ at, line });
      } else if (line.length && this.unparsed.length < 10) this.unparsed.push(line);
      return;
    }
    const [kind, s, q, t] = line.slice(marker + 1).split(' ', 4);
    const senderId = Number(s);
    if (kind === 'r') {
      member.heard.add(senderId);
      return;
    }
    if (kind !== 'b' || member.stalled) return;
    const seq = Number(q);
    const prefix = line.slice(0, marker);
    if (prefix.endsWith(' (earlier): ')) return; // lanchat's history for a newcomer: said before it came
    if (this.attributed) {
      const known = this.prefixOf.get(senderId);
      if (known === undefined) this.prefixOf.set(senderId, prefix);
      else if (known !== prefix || prefix === '') this.misattributed++;
    }
    const last = member.last.get(senderId) ?? 0;
    if (seq <= last) return void this.outOfOrder++;
    member.last.set(senderId, seq);
    const sender = this.byId.get(senderId);
    const entry = sender?.inFlight.get(seq);
    if (!entry) return; // given up already
    entry.phase.delivered++;
    entry.phase.longestPause = Math.max(entry.phase.longestPause, at - entry.phase.lastAt);
    entry.phase.lastAt = Math.max(entry.phase.lastAt, at);
    if (!(at > entry.phase.end)) entry.phase.deliveredInTime++;
    entry.phase.latencies.push(at - Number(t) / 1000);
    if (--entry.waiting === 0) {
      sender.inFlight.delete(seq);
      if (this.racing) this.pump(sender);
    }
  }

  /** A member gone mid-run: the lines it had not received yet wait for it no more (they count as lost). */
  lost(member) {
    if (member.closed) return;
    member.closed = true;
    if (member.stalled) return;
    this.dropped.push(member.id);
    for (const sender of this.members) {
      if (sender === member) continue;
      const last = member.last?.get(sender.id) ?? 0;
      for (const [seq, entry] of sender.inFlight) {
        if (seq > last && --entry.waiting === 0) sender.inFlight.delete(seq);
      }
    }
  }

  send(member) {
    const seq = member.nextSeq++;
    const listeners = this.members.filter((m) => m !== member && !m.closed).length;
    const sentAt = now();
    member.inFlight.set(seq, { sentAt, waiting: listeners, phase: this.phase });
    this.phase.sent++;
    this.phase.expected += listeners;
    member.write(`~b ${member.id} ${seq} ${Math.round(sentAt * 1000)} `.padEnd(LINE_BYTES - 1, '.') + '\n');
  }

  pump(member) {
    while (this.racing && !member.closed && member.inFlight.size < WINDOW) this.send(member);
  }

  /**
   * Until every member has heard every other. Each says `~r ID` again every
   * second or so until everyone has heard it: a member that came late missed
   * the earlier ones. (Not every 300 ms from all: 200 members would then say
   * 130,000 lines a second between them, more than a room carries, and the
   * newcomers would wait behind that.)
   */
  async join() {
    const start = now();
    this.byId = new Map(this.members.map((m) => [m.id, m]));
    const unheard = (member) => this.members.some((other) => other !== member && !other.heard.has(member.id));
    const interval = Math.max(300, this.members.length * 5);
    for (;;) {
      const waiting = this.members.filter(unheard);
      if (!waiting.length) break;
      if (now() - start > JOIN_MS) {
        const deaf = this.members.filter((m) => m.heard.size < this.members.length - 1);
        throw new Error(
          `after ${JOIN_MS / 1000} s, ${deaf.length} of ${this.members.length} members had not heard everyone (${deaf.filter((m) => m.heard.size === 0).length} had heard nobody)`,
        );
      }
      await sleep(interval);
      for (const m of waiting) if (!m.closed) m.write(`~r ${m.id}\n`);
    }
    this.ready = true;
    return (now() - start) / 1000;
  }

  /** Waits for what is under way, gives up the rest (counted lost), and closes the phase. */
  async drain(phase) {
    const deadline = now() + DRAIN_MS;
    while (now() < deadline && this.members.some((m) => m.inFlight.size)) await sleep(20);
    for (const m of this.members) m.inFlight.clear();
    return summary(phase);
  }

  /** The paced load for `seconds`; `atEnd` is called as it ends, before what is under way is waited for. */
  async paced(seconds, atEnd = () => {}) {
    const phase = (this.phase = newPhase('paced', this.brokerPid));
    let turn = 0;
    while (now() - phase.start < seconds * 1000) {
      const due = Math.floor(((now() - phase.start) / 1000) * PACED_RATE) - phase.sent;
      for (let i = 0; i < due; i++) {
        const member = this.members[turn++ % this.members.length];
        if (!member.closed) this.send(member);
      }
      await sleep(2);
    }
    phase.end = now();
    atEnd();
    phase.brokerCpu = cpuSeconds(this.brokerPid) - phase.brokerCpu;
    phase.membersCpu = (process.cpuUsage().user + process.cpuUsage().system) / 1e6 - phase.membersCpu;
    return this.drain(phase);
  }

  /**
   * The paced load beside `flooder`, which writes as fast as its socket takes
   * lines for the same time: the others' lines (their latency, what is lost),
   * and how much of the flood the broker took and delivered (counted at
   * member 0, which waits for the rest of it for up to DRAIN_MS without
   * progress once the others' lines are in).
   */
  async flooded(seconds, flooder) {
    this.flooding = true;
    this.floodHeard = 0;
    const start = now();
    flooder.start();
    const flood = { heardInTime: 0, seconds: 0 };
    const paced = await this.paced(seconds, () => {
      flooder.stop();
      flood.heardInTime = this.floodHeard;
      flood.seconds = (now() - start) / 1000;
    });
    for (let heard = -1; heard !== this.floodHeard && this.floodHeard < flooder.sent && !this.members[0].closed;) {
      heard = this.floodHeard;
      const deadline = now() + DRAIN_MS;
      while (now() < deadline && this.floodHeard < flooder.sent && this.floodHeard - heard < FLOOD_LINES_PER_WRITE) await sleep(20);
    }
    this.flooding = false;
    return {
      ...paced,
      floodSent: flooder.sent / flood.seconds,
      floodDelivered: flood.heardInTime / flood.seconds,
      floodLost: flooder.sent - this.floodHeard,
      floodSentLines: flooder.sent,
    };
  }

  async fullSpeed(seconds) {
    const phase = (this.phase = newPhase('full', this.brokerPid));
    this.racing = true;
    this.members.forEach((m) => this.pump(m));
    while (now() - phase.start < seconds * 1000) {
      await sleep(50);
      // Lines that will not come (a garbled or dropped one) would hold their sender's window forever.
      const old = now() - GIVE_UP_MS;
      for (const m of this.members) {
        for (const [seq, entry] of m.inFlight) {
          if (entry.sentAt < old) {
            m.inFlight.delete(seq);
            phase.givenUp++;
          }
        }
        this.pump(m);
      }
    }
    this.racing = false;
    phase.end = now();
    phase.brokerCpu = cpuSeconds(this.brokerPid) - phase.brokerCpu;
    phase.membersCpu = (process.cpuUsage().user + process.cpuUsage().system) / 1e6 - phase.membersCpu;
    return this.drain(phase);
  }
}

/** A room of `size` plain TCP members on `kind`'s broker: join, paced, full speed (and, at STALL_SIZE, full speed beside a stalled member). */
async function plainRoom(kind, size) {
  const broker = await startBroker(kind, size);
  const room = new Room({ attributed: kind === 'lanchat' });
  room.brokerPid = broker.child.pid;
  const result = { kind, size };
  try {
    for (let id = 0; id < size; id++) room.add(tcpMember(id, broker.port, room));
    result.joinSeconds = await room.join();
    result.joinRetries = room.members.reduce((sum, m) => sum + m.retries, 0);
    result.joinMiB = peakMiB(broker.child.pid);
    result.paced = await room.paced(PHASE_SECONDS);
    result.full = await room.fullSpeed(PHASE_SECONDS);
    if (size === STALL_SIZE && FLOOD_SECONDS > 0) {
      const flooder = floodingMember(size + 1, broker.port);
      const deadline = now() + 10_000;
      while (!room.members.every((m) => m.heard.has(size + 1)) && now() < deadline) await sleep(20);
      room.events = [];
      const floodStart = now();
      result.flood = await room.flooded(FLOOD_SECONDS, flooder);
      result.floodEvents = room.events
        .filter(({ line }) => /drop|left|disconnect/.test(line))
        .map(({ at, line }) => `after ${fmt((at - floodStart) / 1000, 1)} s: ${line}`);
      flooder.close();
    }
    if (size === STALL_SIZE) {
      const stalled = stalledMember(size, broker.port);
      // It said `~r ID` on connecting: once all have heard it, it is in.
      const deadline = now() + 10_000;
      while (!room.members.every((m) => m.heard.has(size)) && now() < deadline) await sleep(20);
      result.stalledIn = room.members.every((m) => m.heard.has(size));
      room.events = [];
      const stallStart = now();
      result.stall = await room.fullSpeed(STALL_SECONDS);
      result.stallEvents = room.events
        .filter(({ line }) => /drop|left|disconnect/.test(line))
        .map(({ at, line }) => `after ${fmt((at - stallStart) / 1000, 1)} s: ${line}`);
      stalled.close();
    }
    result.peakMiB = peakMiB(broker.child.pid);
  } catch (error) {
    result.error = error.message;
  } finally {
    room.closing = true;
    room.members.forEach((m) => m.close());
    await stop(broker.child);
  }
  Object.assign(result, {
    misattributed: room.misattributed,
    outOfOrder: room.outOfOrder,
    unparsed: room.unparsed,
    dropped: room.dropped,
    stderr: broker.stderr(),
  });
  const line = (name, s) => (s ? `${name} ${fmt(s.rate)} lines/s p50 ${fmt(s.p50, 1)} p99 ${fmt(s.p99, 1)} ms lost ${s.lost}` : '');
  process.stderr.write(
    `  room ${kind} ×${size}: ${result.error ?? [line('paced', result.paced), line('full', result.full), line('flood', result.flood), line('stalled', result.stall)].filter(Boolean).join('; ')}\n`,
  );
  return result;
}

/** The same room over TLS: TLS_MEMBERS `lanchat connect` processes, each with its own key. */
async function tlsRoom() {
  const homes = Array.from({ length: TLS_MEMBERS }, (_, id) => join(work, `member-${id}`));
  // Keys made before the clock starts.
  await Promise.all(
    homes.map((home) => {
      const child = track(spawn(CLI, ['id'], { stdio: 'ignore', env: { ...process.env, LANCHAT_HOME: home } }));
      return once(child, 'exit');
    }),
  );
  const broker = await startBroker('lanchat', TLS_MEMBERS);
  const room = new Room({ attributed: false });
  room.brokerPid = broker.child.pid;
  const result = { kind: 'tls', size: TLS_MEMBERS };
  try {
    // One after another: lanchat's door looks at no more than 4 newcomers from one address at once.
    for (let id = 0; id < TLS_MEMBERS; id++) room.add(await processMember(id, broker.port, room));
    result.joinSeconds = await room.join();
    result.paced = await room.paced(PHASE_SECONDS);
    result.full = await room.fullSpeed(PHASE_SECONDS);
    result.peakMiB = peakMiB(broker.child.pid);
    // End of input: each member waits for the host to confirm every line, then exits (0: all confirmed).
    room.closing = true;
    room.members.forEach((m) => m.close());
    result.exits = await Promise.all(
      room.members.map((m) => Promise.race([m.exit, sleep(20_000).then(() => ({ code: 'timeout', signal: null }))])),
    );
  } catch (error) {
    result.error = error.message;
  } finally {
    room.closing = true;
    for (const m of room.members) await stop(m.child, 1000);
    await stop(broker.child);
  }
  result.dropped = room.dropped;
  result.memberErrors = room.members.map((m) => m.stderr.split('\n').filter((l) => /lanchat:|not delivered|error/i.test(l))).flat();
  result.unparsed = room.unparsed;
  const s = result.full;
  process.stderr.write(`  room over TLS ×${TLS_MEMBERS}: ${result.error ?? `full ${fmt(s.rate)} lines/s p99 ${fmt(s.p99, 1)} ms`}\n`);
  return result;
}

process.stderr.write(
  `lanchat bench, rooms: ${SIZES.join('/')} members, phases of ${PHASE_SECONDS} s (paced: ${PACED_RATE} lines/s said in all)\n`,
);
const results = [];
for (const size of SIZES) {
  for (const kind of KINDS) results.push(await plainRoom(kind, size));
}
const tls = HAS_ROOM && TLS_MEMBERS > 0 ? await tlsRoom() : null;

const out = [];
const find = (kind, size) => results.find((r) => r.kind === kind && r.size === size);
const lostCell = (s) => (s.lost === 0 ? '0' : `${fmt(s.lost)} of ${fmt(s.expected)}`);
out.push(`### Rooms: fan-out to plain TCP members (loopback, ${PHASE_SECONDS} s per load, one process for all members)`, '');
if (!HAS_ROOM) out.push('_lanchat rows skipped: this build has no `listen --room`._', '');
out.push(
  '| members | load | broker | lines delivered/s | × ncat | p50 ms | p99 ms | lines lost | broker CPU % | lines per broker CPU-ms | members’ CPU % |',
  '|---|---|---|---|---|---|---|---|---|---|---|',
);
for (const size of SIZES) {
  for (const load of ['paced', 'full']) {
    const loadName = load === 'paced' ? `paced, ${PACED_RATE} lines/s said` : `full speed, ${WINDOW} in flight each`;
    const base = find('ncat', size)?.[load];
    for (const kind of KINDS) {
      const r = find(kind, size);
      const s = r?.[load];
      const name = kind === 'ncat' ? '`ncat -l --chat`' : '`lanchat listen --room`';
      if (!s) out.push(`| ${size} | ${loadName} | ${name} | failed: ${r?.error ?? '?'} | | | | | | | |`);
      else
        out.push(
          `| ${size} | ${loadName} | ${name} | ${fmt(s.rate)} | ${base ? fmt(s.rate / base.rate, 2) : '–'} | ${fmt(s.p50, 1)} | ${fmt(s.p99, 1)} | ${lostCell(s)} | ${fmt(s.brokerCpu)} | ${fmt(s.rate / s.brokerCpu / 10)} | ${fmt(s.membersCpu)} |`,
        );
    }
  }
}
const largest = Math.max(...SIZES);
out.push('', `### A room of ${largest} members joined at once`, '');
out.push(
  '| broker | until all hear all (s) | connections turned away, retried | host peak RSS after joining (MiB) | after the runs (MiB) |',
);
out.push('|---|---|---|---|---|');
for (const kind of KINDS) {
  const r = find(kind, largest);
  out.push(`| ${kind} | ${fmt(r?.joinSeconds, 1)} | ${r?.joinRetries ?? '–'} | ${fmt(r?.joinMiB)} | ${fmt(r?.peakMiB)} |`);
}
if (SIZES.includes(STALL_SIZE) && FLOOD_SECONDS > 0) {
  out.push(
    '',
    `### One member floods (${STALL_SIZE} members say ${PACED_RATE} lines/s in all, for ${FLOOD_SECONDS} s beside one more that writes ${LINE_BYTES}-byte lines as fast as its socket takes them)`,
    '',
  );
  out.push(
    '| broker | others’ p50 / p99 ms, paced alone | beside the flood | others’ lines lost | longest pause (s) | flood lines/s written | delivered to each member /s | flood lines lost (at one member) | broker CPU % | what became of members |',
  );
  out.push('|---|---|---|---|---|---|---|---|---|---|');
  for (const kind of KINDS) {
    const r = find(kind, STALL_SIZE);
    const f = r?.flood;
    if (!f) {
      out.push(`| ${kind} | failed: ${r?.error ?? '?'} | | | | | | | | |`);
      continue;
    }
    const fate = r.floodEvents.length ? `${r.floodEvents.length} left: ${r.floodEvents.slice(0, 2).join('; ')}` : 'all stayed';
    out.push(
      `| ${kind} | ${fmt(r.paced.p50, 1)} / ${fmt(r.paced.p99, 1)} | ${fmt(f.p50, 1)} / ${fmt(f.p99, 1)} | ${lostCell(f)} | ${fmt(f.longestPause, 1)} | ${fmt(f.floodSent)} | ${fmt(f.floodDelivered)} | ${f.floodLost === 0 ? '0' : `${fmt(f.floodLost)} of ${fmt(f.floodSentLines)}`} | ${fmt(f.brokerCpu)} | ${fate.replaceAll('|', '\\|')} |`,
    );
  }
}
if (SIZES.includes(STALL_SIZE)) {
  out.push(
    '',
    `### One stalled member (${STALL_SIZE} members at full speed, then for ${STALL_SECONDS} s beside one more that never reads)`,
    '',
  );
  out.push(
    '| broker | others’ lines/s alone | beside the stalled one | ratio | p99 ms beside it | longest pause (s) | lines lost | what became of the stalled member |',
  );
  out.push('|---|---|---|---|---|---|---|---|');
  for (const kind of KINDS) {
    const r = find(kind, STALL_SIZE);
    if (!r?.stall) {
      out.push(`| ${kind} | failed: ${r?.error ?? '?'} | | | | | | |`);
      continue;
    }
    const fate = r.stallEvents.length ? r.stallEvents.slice(0, 2).join('; ') : r.stalledIn ? 'kept in the room' : 'never got in';
    out.push(
      `| ${kind} | ${fmt(r.full.rate)} | ${fmt(r.stall.rate)} | ${fmt(r.stall.rate / r.full.rate, 2)} | ${fmt(r.stall.p99, 1)} | ${fmt(r.stall.longestPause, 1)} | ${lostCell(r.stall)} | ${fate.replaceAll('|', '\\|')} |`,
    );
  }
}
if (tls) {
  out.push('', `### The room over TLS: ${TLS_MEMBERS} \`lanchat connect\` members (processes, stdin a pipe, stdout read here)`, '');
  out.push('| load | lines delivered/s | × plain TCP members (same host) | p50 ms | p99 ms | lines lost |', '|---|---|---|---|---|---|');
  const plainSame = find('lanchat', TLS_MEMBERS);
  for (const load of ['paced', 'full']) {
    const s = tls[load];
    const loadName = load === 'paced' ? `paced, ${PACED_RATE} lines/s said` : `full speed, ${WINDOW} in flight each`;
    if (!s) out.push(`| ${loadName} | failed: ${tls.error} | | | | |`);
    else
      out.push(
        `| ${loadName} | ${fmt(s.rate)} | ${plainSame?.[load] ? fmt(s.rate / plainSame[load].rate, 2) : '–'} | ${fmt(s.p50, 1)} | ${fmt(s.p99, 1)} | ${lostCell(s)} |`,
      );
  }
  if (tls.exits) {
    const clean = tls.exits.filter((e) => e.code === 0).length;
    out.push(
      '',
      `Members at the end of their input: ${clean} of ${TLS_MEMBERS} exited 0 (every line confirmed); host peak RSS ${fmt(tls.peakMiB)} MiB.`,
    );
  }
}
// What a reader of the table should know: anything off about attribution, order, or the members.
const notes = [];
for (const r of [...results, ...(tls ? [tls] : [])]) {
  const where = `${r.kind} ×${r.size}`;
  if (r.misattributed) notes.push(`${where}: ${r.misattributed} lines under a name other than their sender's first one`);
  if (r.outOfOrder) notes.push(`${where}: ${r.outOfOrder} lines out of order or twice`);
  if (r.dropped?.length) notes.push(`${where}: members gone during the run: ${r.dropped.join(', ')}`);
  if (r.unparsed?.length) notes.push(`${where}: unexpected lines, e.g. ${JSON.stringify(r.unparsed.slice(0, 3))}`);
  if (r.memberErrors?.length) notes.push(`${where}: members said ${JSON.stringify([...new Set(r.memberErrors)].slice(0, 3))}`);
  if (r.error) notes.push(`${where}: ${r.error}`);
}
if (notes.length) out.push('', ...notes.map((n) => `- ${n}`));
console.log(out.join('\n'));
