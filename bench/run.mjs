#!/usr/bin/env node
// `npm run bench`: lanchat against the peers written in C on loopback — OpenBSD
// netcat and socat in plaintext, `ncat --ssl` and `socat OPENSSL` over TLS —
// every row measured in this run, in interleaved rounds (a busy moment on the
// shared cores hits every row alike), printed as Markdown tables with ratios
// against the right peer. Loopback only, ephemeral ports, bounded waits; about
// 4 minutes on 2 cores.
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { connect } from 'node:net';
import { finished } from 'node:stream/promises';
import * as tls from 'node:tls';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HOST, freePort, sleep, waitListening } from './loopback.mjs';

const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
/** An earlier build's dist/ (BENCH_BEFORE=DIR): its lanchat rows run interleaved with this build's, for a same-run before/after. */
const CLI_BEFORE = process.env.BENCH_BEFORE ? resolve(process.env.BENCH_BEFORE, 'cli.js') : null;
const BARE = fileURLToPath(new URL('./bare.mjs', import.meta.url));
const REAP = fileURLToPath(new URL('./reap.py', import.meta.url));
const MIB = 1024 * 1024;
const SIZE_MIB = Number(process.env.BENCH_MIB ?? 256);
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
/** Sections to run (BENCH_ONLY=throughput,sessions …); all by default. */
const ONLY = process.env.BENCH_ONLY?.split(',') ?? null;
const LONG_LINES_MIB = Number(process.env.BENCH_LONG_MIB ?? 64);
/** The TLS rows again with this much input (BENCH_LARGE_MIB), in fewer rounds (BENCH_LARGE_RUNS). */
const LARGE_MIB = Number(process.env.BENCH_LARGE_MIB ?? 1024);
const LARGE_RUNS = Number(process.env.BENCH_LARGE_RUNS ?? 3);
const LATENCY_MESSAGES = 10_000;
/**
 * Sent first and timed apart: until V8 has compiled the hot paths (of the
 * listener, and of this client) round trips are slower, on 2 cores mostly
 * because the compiler threads take turns with the peers.
 */
const WARM_UP_MESSAGES = 3000;
/** Chat-like traffic: separate 20-byte lines, each sent once the one before came out at the other end. */
const CHAT_MESSAGES = Number(process.env.BENCH_CHAT_MESSAGES ?? 10_000);
const CHAT_WARM_UP = 2000;
const SESSION_SECONDS = Number(process.env.BENCH_SESSION_SECONDS ?? 3);
/** TLS sessions opened at once by the client: the listener's door looks at up to 4 from one address. */
const SESSIONS_IN_FLIGHT = 4;
const SLOW_READER_SECONDS = Number(process.env.BENCH_SLOW_SECONDS ?? 20);
const STARTUP_RUNS = 20;

for (const [tool, pkg] of [
  ['nc', 'netcat-openbsd'],
  ['socat', 'socat'],
  ['ncat', 'ncat'],
  ['python3', 'python3'],
]) {
  if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) {
    console.error(`bench: ${tool} is not installed (apt-get install ${pkg})`);
    process.exit(1);
  }
}

const work = mkdtempSync(join(tmpdir(), 'lanchat-bench-'));
process.on('exit', () => rmSync(work, { recursive: true, force: true }));
const input = join(work, 'lines.txt');
// lanchat's identity and pinned keys go to the scratch directory, not the user's config.
process.env.LANCHAT_HOME = work;
/** The TLS peers' certificate: lanchat's throwaway identity in the scratch directory (self-signed, ECDSA P-256). */
const KEY = join(work, 'key.pem');
const CERT = join(work, 'cert.pem');
/**
 * No TLS 1.3 session tickets from ncat's listener: `ncat --send-only` closes
 * without reading them, and a listener whose tickets meet a closed socket
 * gets a reset and loses the tail of the transfer.
 */
const NO_TICKETS = join(work, 'openssl.cnf');

/** Whole lines of `length` bytes (the LF included), about `mib` MiB of them, in `path`; returns the size. */
function writeLines(path, mib, length) {
  const text = ('x'.repeat(60) + ' lanchat bench line 0123456789 abcdefghij ').repeat(Math.ceil(length / 100));
  const line = `${text.slice(0, length - 1)}\n`;
  const block = Buffer.from(line.repeat(Math.max(1, Math.floor(MIB / length))));
  const size = Math.floor((mib * MIB) / length) * length;
  const fd = openSync(path, 'w');
  for (let left = size; left > 0;) left -= writeSync(fd, block, 0, Math.min(block.length, left));
  closeSync(fd);
  return size;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (n, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const load = () =>
  loadavg()
    .map((n) => n.toFixed(2))
    .join(' ');

/** Peak resident memory (VmHWM) of the processes, sampled until they exit. */
function watchMemory(children) {
  const peak = new Map(children.map((c) => [c.pid, 0]));
  const sample = () => {
    for (const child of children) {
      try {
        const kb = Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1] ?? 0);
        peak.set(child.pid, Math.max(peak.get(child.pid), kb));
      } catch {
        // gone already
      }
    }
  };
  const timer = setInterval(sample, 20);
  return () => {
    clearInterval(timer);
    sample();
    return children.map((c) => peak.get(c.pid) / 1024);
  };
}

/** CPU seconds a running process has used so far (all its threads). */
function cpuSeconds(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in USER_HZ
}

function exited(child, what, ms = 120_000) {
  return Promise.race([
    once(child, 'exit').then(([code, signal]) => ({ code, signal })),
    sleep(ms).then(() => {
      child.kill('SIGKILL');
      throw new Error(`${what} did not finish within ${ms / 1000} s`);
    }),
  ]);
}

let reports = 0;
/** Spawns a command under reap.py: `measured()`, once it exited, says its CPU seconds, peak RSS and bytes written. */
function spawnMeasured(command, args, options) {
  const report = join(work, `reap-${++reports}.json`);
  const child = spawn('python3', [REAP, report, command, ...args], options);
  child.measured = () => JSON.parse(readFileSync(report, 'utf8'));
  /** The CPU seconds the command has used so far. */
  child.cpuSoFar = () => cpuSeconds(Number(readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim()));
  return child;
}

/** What a stream says from now on, as a function that returns it so far. */
function collect(stream) {
  let text = '';
  stream.setEncoding('utf8').on('data', (chunk) => (text += chunk));
  return () => text.trim();
}

/** A receiver that reports its port on stderr: lanchat listen, or the bare Node pipe. */
async function portFromStderr(child, what) {
  let err = '';
  child.stderr.setEncoding('utf8').on('data', (chunk) => (err += chunk));
  const deadline = Date.now() + 10_000;
  while (!/listening on .*:(\d+)/.test(err)) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`${what} did not start: ${err}`);
    await sleep(5);
  }
  return Number(/listening on .*:(\d+)/.exec(err)[1]);
}

async function lanchatListener(args, stdout, cli = CLI) {
  const child = spawn(cli, ['listen', '0', '--host', HOST, ...args], { stdio: ['ignore', stdout, 'pipe'] });
  return { child, port: await portFromStderr(child, 'lanchat listen') };
}

const node = (...args) => [process.execPath, args];
/** lanchat as installed: the file itself, whose first line names node and the flags it runs with. */
const lanchat = (cli, ...args) => [cli, args];
const lanchatCli = (cli) => ({
  plain: {
    receive: () => lanchat(cli, 'listen', '0', '--host', HOST, '--insecure'),
    send: (port) => lanchat(cli, 'connect', '--insecure', HOST, String(port)),
  },
  tls: {
    receive: () => lanchat(cli, 'listen', '0', '--host', HOST),
    send: (port) => lanchat(cli, 'connect', HOST, String(port)),
  },
});
const ncListen = (port) => ['nc', ['-l', HOST, String(port)]];
const bareListen =
  (...mode) =>
  () =>
    node(BARE, 'receive', ...mode);

/**
 * The rows of a throughput run: how to start the receiver (`receive`: given a
 * free port, or reporting its own on stderr when it takes none) and the
 * sender, whether it is TLS (compared with the TLS peers, else with nc), and
 * its name in the table.
 */
function allKinds() {
  const current = lanchatCli(CLI);
  const kinds = {
    nc: { name: 'nc → nc -l', receive: ncListen, send: (port) => ['nc', ['-N', HOST, String(port)]] },
    bare: {
      name: 'bare Node pipe → nc -l (no protocol: the platform’s ceiling)',
      receive: ncListen,
      send: (port) => node(BARE, 'send', String(port)),
    },
    'bare-bare': {
      name: 'bare Node pipe → bare Node pipe (no protocol)',
      receive: bareListen(),
      send: (port) => node(BARE, 'send', String(port)),
    },
    lanchat: {
      name: 'lanchat connect → lanchat listen, both --insecure (plaintext, every line confirmed)',
      lanchat: true,
      ...current.plain,
    },
    raw: { name: 'lanchat connect --raw → nc -l', receive: ncListen, send: (port) => lanchat(CLI, 'connect', '--raw', HOST, String(port)) },
    ncat: {
      name: 'ncat --ssl --send-only → ncat --ssl -l --recv-only',
      tls: true,
      receive: (port) => [
        'ncat',
        ['--ssl', '--ssl-cert', CERT, '--ssl-key', KEY, '-l', HOST, String(port), '--recv-only'],
        { OPENSSL_CONF: NO_TICKETS },
      ],
      send: (port) => ['ncat', ['--ssl', '--send-only', HOST, String(port)]],
    },
    socat: {
      name: 'socat STDIN OPENSSL → socat OPENSSL-LISTEN STDOUT',
      tls: true,
      receive: (port) => ['socat', ['-u', `OPENSSL-LISTEN:${port},bind=${HOST},reuseaddr,cert=${CERT},key=${KEY},verify=0`, 'STDOUT']],
      send: (port) => ['socat', ['-u', 'STDIN', `OPENSSL:${HOST}:${port},verify=0`]],
    },
    'bare-tls': {
      name: 'bare Node TLS 1.3 pipe → bare Node TLS 1.3 pipe (no protocol)',
      tls: true,
      receive: bareListen('tls'),
      send: (port) => node(BARE, 'send', String(port), 'tls'),
    },
    secure: {
      name: 'lanchat connect → lanchat listen (the default: TLS 1.3, every line confirmed)',
      tls: true,
      lanchat: true,
      ...current.tls,
    },
  };
  if (CLI_BEFORE) {
    const before = lanchatCli(CLI_BEFORE);
    kinds['lanchat-before'] = { ...kinds.lanchat, name: `${kinds.lanchat.name}, BENCH_BEFORE build`, ...before.plain };
    kinds['secure-before'] = { ...kinds.secure, name: `${kinds.secure.name}, BENCH_BEFORE build`, ...before.tls };
  }
  return kinds;
}

/** The rows to run: all, or those BENCH_KINDS names (BENCH_KINDS=ncat,socat,secure …). */
function transferKinds() {
  const wanted = process.env.BENCH_KINDS?.split(',');
  return Object.fromEntries(Object.entries(allKinds()).filter(([id]) => !wanted || wanted.includes(id)));
}

/**
 * One transfer of `file` (`bytes` long) from the kind's sender to its
 * receiver, whose stdout is /dev/null or a pipe drained by dd. Returns the
 * seconds from the sender's start to both ends, each side's CPU seconds (the
 * receiver's once it listens; the sender's with its start-up) and peak RSS. Throws unless both exit 0 and every byte came out: counted by dd
 * on a pipe; on /dev/null, what the receiver wrote (its wchar, which also
 * counts the little it writes to its socket) must be at least that.
 */
async function transfer(kind, sinkKind, file, bytes) {
  const stdout = sinkKind === 'null' ? openSync('/dev/null', 'w') : 'pipe';
  let port = null;
  const [receiveCommand, receiveArgs, receiveEnv] = kind.receive(await freePort().then((p) => (port = p)));
  const reportsPort = [process.execPath, CLI, CLI_BEFORE].includes(receiveCommand); // bare Node, lanchat listen: port 0, told on stderr
  const receiver = spawnMeasured(receiveCommand, receiveArgs, {
    stdio: ['ignore', stdout, 'pipe'],
    env: { ...process.env, ...receiveEnv },
  });
  if (typeof stdout === 'number') closeSync(stdout);
  let counted = Promise.resolve(null);
  if (sinkKind === 'pipe') {
    const dd = spawn('dd', ['of=/dev/null', 'bs=1M'], { stdio: [receiver.stdout, 'ignore', 'pipe'], env: { ...process.env, LC_ALL: 'C' } });
    let report = '';
    dd.stderr.setEncoding('utf8').on('data', (chunk) => (report += chunk));
    // Its count is on stderr, which may still be unread when it exits.
    counted = Promise.all([exited(dd, 'dd'), finished(dd.stderr)]).then(() => Number(/^(\d+) bytes/m.exec(report)?.[1]));
  }
  if (reportsPort) port = await portFromStderr(receiver, kind.name);
  else await waitListening(port);
  const said = { receiver: collect(receiver.stderr) };
  const idleCpu = receiver.cpuSoFar(); // its start-up: not part of moving the bytes
  const fd = openSync(file, 'r');
  const [sendCommand, sendArgs] = kind.send(port);
  const sender = spawnMeasured(sendCommand, sendArgs, { stdio: [fd, 'ignore', 'pipe'] });
  said.sender = collect(sender.stderr);
  closeSync(fd);
  const [sent, received, dd] = await Promise.all([
    exited(sender, `${kind.name}: sender`),
    exited(receiver, `${kind.name}: receiver`),
    counted,
  ]);
  if (sent.code !== 0 || received.code !== 0)
    throw new Error(
      `${kind.name}: exit codes ${sent.code}/${received.code}; sender said: ${said.sender()}; receiver said: ${said.receiver()}`,
    );
  const [out, inn] = [sender.measured(), receiver.measured()];
  // From the sender's start (its start-up counts: a user waits for it too) to both ends.
  const seconds = Math.max(out.ended, inn.ended) - out.started;
  const arrived = dd ?? inn.wchar;
  if (dd === null ? arrived < bytes : arrived !== bytes) throw new Error(`${kind.name} → ${sinkKind}: ${arrived} bytes out of ${bytes}`);
  return {
    seconds,
    senderCpu: out.cpu,
    receiverCpu: inn.cpu - idleCpu,
    senderMiB: out.maxRssKiB / 1024,
    receiverMiB: inn.maxRssKiB / 1024,
  };
}

/** Medians (and min–max of the rate) of a row's runs. */
function summarize(runs, bytes) {
  const rates = runs.map((r) => bytes / 1e6 / r.seconds);
  return {
    median: median(rates),
    min: Math.min(...rates),
    max: Math.max(...rates),
    receiverCpuPerGB: median(runs.map((r) => r.receiverCpu / (bytes / 1e9))),
    senderCpuPerGB: median(runs.map((r) => r.senderCpu / (bytes / 1e9))),
    receiverMiB: Math.max(...runs.map((r) => r.receiverMiB)),
    senderMiB: Math.max(...runs.map((r) => r.senderMiB)),
  };
}

/**
 * Every row once per round, rounds one after the other: the medians compare
 * rows measured side by side. With `empty`, each round also runs every
 * session with no input: what it pays before its first byte.
 */
async function throughput({ kinds, file, bytes, rounds, empty: withEmpty, label }) {
  const runs = new Map();
  const empty = new Map(); // what a session costs with nothing to move: start-up, handshake, goodbye
  for (let round = 1; round <= rounds; round++) {
    for (const sinkKind of ['null', 'pipe']) {
      for (const id of Object.keys(kinds)) {
        const key = `${id}|${sinkKind}`;
        if (!runs.has(key)) runs.set(key, []);
        runs.get(key).push(await transfer(kinds[id], sinkKind, file, bytes));
      }
    }
    for (const id of withEmpty ? Object.keys(kinds) : []) {
      if (!empty.has(id)) empty.set(id, []);
      empty.get(id).push(await transfer(kinds[id], 'null', '/dev/null', 0));
    }
    process.stderr.write(`  ${label} round ${round}/${rounds} done (load ${load()})\n`);
  }
  const rows = [...runs].map(([key, list]) => {
    const [id, sinkKind] = key.split('|');
    return { id, kind: kinds[id], sinkKind, ...summarize(list, bytes) };
  });
  const fixed = [...empty].map(([id, list]) => ({
    id,
    kind: kinds[id],
    ms: median(list.map((r) => r.seconds * 1000)),
    receiverMs: median(list.map((r) => r.receiverCpu * 1000)),
    senderMs: median(list.map((r) => r.senderCpu * 1000)),
  }));
  return { rows, fixed };
}

/** A throughput table: each row against the right peers of the same run (TLS rows: ncat --ssl and socat; plaintext: nc). */
function throughputTable(title, rows) {
  const rate = (id, sinkKind) => rows.find((r) => r.id === id && r.sinkKind === sinkKind)?.median;
  const ratios = (r) => {
    const peers = r.kind.tls ? ['ncat', 'socat'] : ['nc'];
    const names = { nc: 'nc', ncat: 'ncat --ssl', socat: 'socat' };
    return peers
      .filter((peer) => rate(peer, r.sinkKind) && peer !== r.id)
      .map((peer) => `${fmt(r.median / rate(peer, r.sinkKind), 2)}× ${names[peer]}`)
      .join(', ');
  };
  const lines = [title, ''];
  lines.push('TLS rows are compared with the TLS peers, plaintext rows with `nc`; CPU is per GB moved.', '');
  lines.push(
    '| sender → receiver | receiver stdout | MB/s (min–max) | against | CPU s/GB receiver / sender | peak RSS receiver / sender (MiB) |',
  );
  lines.push('|---|---|---|---|---|---|');
  for (const r of rows) {
    lines.push(
      `| ${r.kind.name} | ${r.sinkKind === 'null' ? '/dev/null' : 'pipe'} | ${fmt(r.median)} (${fmt(r.min)}–${fmt(r.max)}) | ${ratios(r) || '–'} | ${fmt(r.receiverCpuPerGB, 2)} / ${fmt(r.senderCpuPerGB, 2)} | ${mem(r.receiverMiB)} / ${mem(r.senderMiB)} |`,
    );
  }
  return lines;
}

/** Long lines over TLS (the default): rate and each side's peak RSS, rounds interleaved. */
async function longLines() {
  const { secure } = allKinds();
  const sizes = [16 * 1024, 60 * 1024];
  const files = sizes.map((length) => {
    const path = join(work, `long-${length}.txt`);
    return { path, bytes: writeLines(path, LONG_LINES_MIB, length) };
  });
  const runs = sizes.map(() => []);
  for (let round = 1; round <= RUNS; round++) {
    for (const [i, { path, bytes }] of files.entries()) runs[i].push(await transfer(secure, 'null', path, bytes));
  }
  process.stderr.write(`  long lines done (load ${load()})\n`);
  return sizes.map((length, i) => ({ length, ...summarize(runs[i], files[i].bytes) }));
}

/** The listener's stdout read at 10 MB/s by a slow reader, for SLOW_READER_SECONDS; `args` for both sides. */
async function slowReader(args) {
  const listener = await lanchatListener(args, 'pipe');
  const reader = spawn(
    process.execPath,
    [
      '-e',
      `
    let total = 0; const start = Date.now(); const rate = 10e6;
    process.stdin.on('data', (chunk) => {
      total += chunk.length;
      const ahead = total / rate * 1000 - (Date.now() - start);
      if (ahead > 0) { process.stdin.pause(); setTimeout(() => process.stdin.resume(), ahead); }
    });
  `,
    ],
    { stdio: [listener.child.stdout, 'ignore', 'inherit'] },
  );
  const fd = openSync(input, 'r');
  const sender = spawn(CLI, ['connect', ...args, HOST, String(listener.port)], { stdio: [fd, 'ignore', 'ignore'] });
  closeSync(fd);
  const memory = watchMemory([listener.child, sender]);
  await sleep(SLOW_READER_SECONDS * 1000);
  const [listenerMiB, connectorMiB] = memory();
  for (const child of [sender, listener.child, reader]) child.kill('SIGKILL');
  process.stderr.write(`  slow reader ${args.join(' ') || 'TLS'}: listener ${fmt(listenerMiB)} MiB, connector ${fmt(connectorMiB)} MiB\n`);
  return { listenerMiB, connectorMiB };
}

/** The bench's TLS client options: lanchat's identity (mutual TLS), no pinning here. */
async function clientIdentity() {
  const { loadIdentity } = await import('../dist/identity.js');
  const { key, cert } = await loadIdentity(process.env);
  // One context for every connection: building one from PEM text costs more than a handshake.
  return { key, cert, secureContext: tls.createSecureContext({ key, cert }), minVersion: 'TLSv1.3', rejectUnauthorized: false };
}

/**
 * Round trips of one-line messages from an in-bench client: to `lanchat listen`
 * (a msg frame, then its ack, sent once the line is written to stdout) and to a
 * socat echo (a line, then the line back).
 */
async function roundTrips(port, lanchat, tlsOptions = null) {
  const plain = connect(port, HOST);
  plain.setNoDelay(true);
  await once(plain, 'connect');
  const socket = tlsOptions ? tls.connect({ socket: plain, ...tlsOptions }) : plain;
  if (tlsOptions) await once(socket, 'secureConnect');
  let pending = '';
  let waiter = null;
  socket.setEncoding('utf8').on('data', (chunk) => {
    pending += chunk;
    let nl;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      waiter?.(line);
    }
  });
  const next = () => new Promise((resolve) => (waiter = resolve));
  if (lanchat) {
    const hello = next();
    socket.write('{"type":"hello","version":1,"nick":"bench","maxLine":65536}\n');
    await hello;
  }
  const [cold, times] = [[], []];
  for (let id = 1; id <= WARM_UP_MESSAGES + LATENCY_MESSAGES; id++) {
    const reply = next();
    const start = process.hrtime.bigint();
    socket.write(lanchat ? `{"type":"msg","id":${id},"size":20}\nlatency probe 12345\n` : 'latency probe 12345\n');
    await reply;
    (id > WARM_UP_MESSAGES ? times : cold).push(Number(process.hrtime.bigint() - start) / 1000);
  }
  if (lanchat) socket.write('{"type":"bye"}\n');
  socket.end();
  socket.destroy();
  const at = (xs, q) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))];
  return { p50: at(times, 0.5), p99: at(times, 0.99), p999: at(times, 0.999), coldP99: at(cold, 0.99), coldP999: at(cold, 0.999) };
}

/** Rounds of the latency rows, interleaved: one busy moment (p99.9 is the 10 slowest of 10,000) hits all three alike. */
const LATENCY_ROUNDS = Number(process.env.BENCH_LATENCY_ROUNDS ?? 3);

async function latency() {
  const lanchatRoundTrips = async (args, tlsOptions) => {
    const listener = await lanchatListener(args, 'ignore');
    const times = await roundTrips(listener.port, true, tlsOptions);
    await exited(listener.child, 'lanchat listener', 15_000).catch(() => listener.child.kill('SIGKILL'));
    return times;
  };
  const socatRoundTrips = async () => {
    const port = await freePort();
    const socat = spawn('socat', [`TCP-LISTEN:${port},bind=${HOST},reuseaddr`, 'PIPE'], { stdio: 'ignore' });
    await waitListening(port);
    const times = await roundTrips(port, false);
    socat.kill('SIGKILL');
    return times;
  };
  const bareRoundTrips = async (tlsOptions) => {
    const child = spawn(process.execPath, [BARE, 'echo', ...(tlsOptions ? ['tls'] : [])], { stdio: ['ignore', 'ignore', 'pipe'] });
    const times = await roundTrips(await portFromStderr(child, 'bare Node echo'), false, tlsOptions);
    child.kill('SIGKILL');
    return times;
  };
  const runs = { secure: [], lanchat: [], echo: [], bare: [], bareTls: [] };
  const clientTls = await clientIdentity();
  for (let round = 1; round <= LATENCY_ROUNDS; round++) {
    runs.secure.push(await lanchatRoundTrips([], clientTls));
    runs.lanchat.push(await lanchatRoundTrips(['--insecure']));
    runs.echo.push(await socatRoundTrips());
    runs.bare.push(await bareRoundTrips(null));
    runs.bareTls.push(await bareRoundTrips(clientTls));
  }
  // Each figure: the median of the rounds' figures.
  const medians = (list) => Object.fromEntries(Object.keys(list[0]).map((key) => [key, median(list.map((r) => r[key]))]));
  const result = Object.fromEntries(Object.entries(runs).map(([id, list]) => [id, medians(list)]));
  const { lanchat, secure, echo } = result;
  process.stderr.write(
    `  latency p99.9: lanchat ${fmt(lanchat.p999)} µs, over TLS ${fmt(secure.p999)} µs, socat ${fmt(echo.p999)} µs (load ${load()})\n`,
  );
  return result;
}

/**
 * Chat-like traffic: CHAT_MESSAGES separate 20-byte lines into the sender's
 * stdin, each written once the one before came out of the receiver's stdout
 * (so each is its own read, frame and write on both sides). CPU per message
 * of each side, from /proc, after CHAT_WARM_UP messages.
 */
async function chatTraffic(kind) {
  let receiver;
  let port;
  if (kind === 'nc') {
    port = await freePort();
    receiver = spawn('nc', ['-l', HOST, String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
    await waitListening(port);
  } else if (kind === 'bare-tls') {
    receiver = spawn(process.execPath, [BARE, 'receive', 'tls'], { stdio: ['ignore', 'pipe', 'pipe'] });
    port = await portFromStderr(receiver, 'bare Node TLS receiver');
  } else {
    ({ child: receiver, port } = await lanchatListener(kind === 'lanchat' ? ['--insecure'] : [], 'pipe'));
  }
  const senderArgs = {
    nc: ['nc', ['-N', HOST, String(port)]],
    'bare-tls': node(BARE, 'send', String(port), 'tls'),
    lanchat: lanchat(CLI, 'connect', '--insecure', HOST, String(port)),
    secure: lanchat(CLI, 'connect', HOST, String(port)),
  }[kind];
  const sender = spawn(senderArgs[0], senderArgs[1], { stdio: ['pipe', 'ignore', 'inherit'] });
  let seen = 0;
  let arrived = null;
  receiver.stdout.on('data', (chunk) => {
    for (let i = chunk.indexOf(10); i >= 0; i = chunk.indexOf(10, i + 1)) seen++;
    arrived?.();
  });
  const total = CHAT_WARM_UP + CHAT_MESSAGES;
  let startCpu = null;
  let start = 0n;
  for (let i = 1; i <= total; i++) {
    if (i === CHAT_WARM_UP + 1) {
      startCpu = [cpuSeconds(sender.pid), cpuSeconds(receiver.pid)];
      start = process.hrtime.bigint();
    }
    const came = new Promise((resolve) => (arrived = () => seen >= i && resolve()));
    sender.stdin.write(`chat line ${String(i).padStart(9, '0')}\n`);
    await Promise.race([came, sleep(10_000).then(() => Promise.reject(new Error(`${kind}: line ${i} never came out`)))]);
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const [senderCpu, receiverCpu] = [cpuSeconds(sender.pid) - startCpu[0], cpuSeconds(receiver.pid) - startCpu[1]];
  sender.stdin.end();
  await Promise.all([exited(sender, `${kind} chat sender`, 15_000), exited(receiver, `${kind} chat receiver`, 15_000)]).catch(() => {
    sender.kill('SIGKILL');
    receiver.kill('SIGKILL');
  });
  const result = {
    rate: CHAT_MESSAGES / seconds,
    senderUs: (senderCpu / CHAT_MESSAGES) * 1e6,
    receiverUs: (receiverCpu / CHAT_MESSAGES) * 1e6,
  };
  process.stderr.write(
    `  chat ${kind}: ${fmt(result.rate)} lines/s, CPU µs per line: sender ${fmt(result.senderUs, 1)}, receiver ${fmt(result.receiverUs, 1)} (load ${load()})\n`,
  );
  return result;
}

/**
 * TLS sessions one listener accepts from one client process (this one),
 * SESSIONS_IN_FLIGHT at once, for SESSION_SECONDS. A lanchat session: TLS
 * handshake (both sides' certificates), our hello, the room host's hello
 * back, our goodbye, the close. An ncat one: the handshake, a line, the close.
 */
async function sessions(kind, tlsOptions, cli = CLI) {
  let listener;
  let port;
  if (kind === 'ncat') {
    port = await freePort();
    listener = spawn('ncat', ['--ssl', '--ssl-cert', CERT, '--ssl-key', KEY, '-l', HOST, String(port), '-k', '--recv-only'], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    await waitListening(port);
  } else if (kind === 'bare') {
    listener = spawn(process.execPath, [BARE, 'sessions'], { stdio: ['ignore', 'ignore', 'pipe'] });
    port = await portFromStderr(listener, 'bare Node TLS listener');
    listener.stderr.resume();
  } else {
    // A room: each session joins, is greeted and leaves, and the next comes in.
    listener = spawn(cli, ['listen', '0', '--host', HOST, '--room', 'bench', '--max-peers', '64'], {
      stdio: ['pipe', 'ignore', 'pipe'],
    });
    port = await portFromStderr(listener, 'lanchat listen --room');
    listener.stderr.resume();
  }
  const openOne = (n) =>
    new Promise((resolve, reject) => {
      const socket = tls.connect({ port, host: HOST, ...tlsOptions });
      const timer = setTimeout(() => socket.destroy(new Error(`${kind}: session ${n} took over 10 s`)), 10_000);
      socket.on('error', reject);
      socket.on('close', () => {
        clearTimeout(timer);
        resolve();
      });
      socket.once('secureConnect', () => {
        if (kind === 'ncat') return socket.end('a line\n');
        if (kind === 'bare') return void socket.once('data', () => socket.end()).write('a line\n');
        socket.write(`{"type":"hello","version":1,"nick":"b${n}","maxLine":65536,"features":["room"]}\n`);
        socket.once('data', () => socket.end('{"type":"bye"}\n'));
      });
    });
  const startCpu = cpuSeconds(listener.pid);
  const clientStart = process.cpuUsage();
  const start = process.hrtime.bigint();
  const deadline = Date.now() + SESSION_SECONDS * 1000;
  let opened = 0;
  let done = 0;
  const lane = async () => {
    while (Date.now() < deadline) {
      await openOne(++opened);
      done++;
    }
  };
  await Promise.all(Array.from({ length: SESSIONS_IN_FLIGHT }, lane));
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const cpu = cpuSeconds(listener.pid) - startCpu;
  const client = process.cpuUsage(clientStart);
  listener.kill('SIGKILL');
  const result = { rate: done / seconds, listenerUs: (cpu / done) * 1e6, clientUs: (client.user + client.system) / done };
  process.stderr.write(
    `  sessions ${kind}: ${fmt(result.rate)}/s, CPU µs each: listener ${fmt(result.listenerUs)}, client ${fmt(result.clientUs)} (load ${load()})\n`,
  );
  return result;
}

/** Start-up times, the three commands interleaved so that a busy moment hits them alike. */
function startup() {
  const commands = { node: node('-e', '0'), version: lanchat(CLI, '--version'), help: lanchat(CLI, '--help') };
  const runs = { node: [], version: [], help: [] };
  for (let i = 0; i < STARTUP_RUNS; i++) {
    for (const [name, [command, args]] of Object.entries(commands)) {
      const start = process.hrtime.bigint();
      spawnSync(command, args, { stdio: 'ignore' });
      runs[name].push(Number(process.hrtime.bigint() - start) / 1e6);
    }
  }
  const [bare, version, help] = [median(runs.node), median(runs.version), median(runs.help)];
  process.stderr.write(`  start-up: node ${fmt(bare, 1)} ms, --version ${fmt(version, 1)} ms, --help ${fmt(help, 1)} ms\n`);
  return { node: bare, version, help };
}

if (!existsSync(CLI)) {
  console.error('bench: build first (npm run build)');
  process.exit(1);
}
const wants = (section) => !ONLY || ONLY.includes(section);
const loadBefore = load();
process.stderr.write(`lanchat bench: ${SIZE_MIB} MiB of 100-byte lines, median of ${RUNS} interleaved rounds; load ${loadBefore}\n`);
const inputBytes = writeLines(input, SIZE_MIB, 100);
const identity = await clientIdentity();
writeFileSync(KEY, identity.key, { mode: 0o600 });
writeFileSync(CERT, identity.cert);
writeFileSync(NO_TICKETS, 'openssl_conf = init\n[init]\nssl_conf = ssl\n[ssl]\nsystem_default = tls\n[tls]\nNumTickets = 0\n');

const out = [];
const mem = (mib) => (mib ? fmt(mib) : '–');
if (wants('throughput')) {
  const { rows, fixed } = await throughput({
    kinds: transferKinds(),
    file: input,
    bytes: inputBytes,
    rounds: RUNS,
    empty: true,
    label: 'throughput',
  });
  out.push(...throughputTable(`### Throughput (${SIZE_MIB} MiB of 100-byte lines, loopback, median of ${RUNS} interleaved rounds)`, rows));
  out.push('', `#### The same sessions with empty input (median of ${RUNS}): what every transfer above paid before moving a byte`, '');
  out.push('From the sender’s start to both ends; the receiver’s CPU from the moment it listened (as above), the sender’s whole.', '');
  out.push('| sender → receiver | ms | CPU ms receiver / sender |', '|---|---|---|');
  for (const r of fixed) out.push(`| ${r.kind.name} | ${fmt(r.ms)} | ${fmt(r.receiverMs)} / ${fmt(r.senderMs)} |`);
}
if (wants('large')) {
  // Past the fixed price and the JIT's warm-up: the TLS rows again with a larger input.
  const file = join(work, 'large.txt');
  const bytes = writeLines(file, LARGE_MIB, 100);
  const { ncat, socat, 'bare-tls': bareTls, secure } = allKinds();
  const { rows } = await throughput({
    kinds: { ncat, socat, 'bare-tls': bareTls, secure },
    file,
    bytes,
    rounds: LARGE_RUNS,
    label: `${LARGE_MIB} MiB over TLS`,
  });
  rmSync(file);
  out.push(
    '',
    ...throughputTable(
      `### Throughput over TLS at ${LARGE_MIB} MiB (100-byte lines, loopback, median of ${LARGE_RUNS} interleaved rounds)`,
      rows,
    ),
  );
}
if (wants('long')) {
  const rows = await longLines();
  out.push('', `### Long lines over TLS (${LONG_LINES_MIB} MiB, receiver stdout /dev/null, median of ${RUNS})`, '');
  out.push('| line length | MB/s (min–max) | CPU s/GB listener / connector | peak RSS listener / connector (MiB) |', '|---|---|---|---|');
  for (const r of rows) {
    out.push(
      `| ${fmt(r.length / 1024)} KiB | ${fmt(r.median)} (${fmt(r.min)}–${fmt(r.max)}) | ${fmt(r.receiverCpuPerGB, 2)} / ${fmt(r.senderCpuPerGB, 2)} | ${mem(r.receiverMiB)} / ${mem(r.senderMiB)} |`,
    );
  }
}
if (wants('slow')) {
  const slow = { secure: await slowReader([]), plain: await slowReader(['--insecure']) };
  out.push('', `### Memory with a slow reader (listener stdout read at 10 MB/s for ${SLOW_READER_SECONDS} s)`, '');
  out.push('| session | listener peak RSS (MiB) | connector peak RSS (MiB) |', '|---|---|---|');
  out.push(`| TLS 1.3 (the default) | ${fmt(slow.secure.listenerMiB)} | ${fmt(slow.secure.connectorMiB)} |`);
  out.push(`| plaintext (--insecure) | ${fmt(slow.plain.listenerMiB)} | ${fmt(slow.plain.connectorMiB)} |`);
}
if (wants('latency')) {
  const lat = await latency();
  out.push(
    '',
    `### Latency (${fmt(LATENCY_MESSAGES)} one-line messages after ${fmt(WARM_UP_MESSAGES)} to warm up, each waiting for its confirmation; median of ${LATENCY_ROUNDS} interleaved rounds)`,
    '',
  );
  out.push(
    `| peer | p50 µs | p99 µs | p99.9 µs | p50 / p99.9 × socat | p99 / p99.9 µs of the first ${fmt(WARM_UP_MESSAGES)} (warm-up) |`,
    '|---|---|---|---|---|---|',
  );
  const latencyRow = (name, t) =>
    `| ${name} | ${fmt(t.p50)} | ${fmt(t.p99)} | ${fmt(t.p999)} | ${fmt(t.p50 / lat.echo.p50, 2)} / ${fmt(t.p999 / lat.echo.p999, 2)} | ${fmt(t.coldP99)} / ${fmt(t.coldP999)} |`;
  out.push(latencyRow('lanchat listen --insecure (ack after the line is written)', lat.lanchat));
  out.push(latencyRow('lanchat listen over TLS 1.3 (the default)', lat.secure));
  out.push(latencyRow('socat echo (baseline)', lat.echo));
  out.push(latencyRow('bare Node echo (no protocol: the platform’s floor)', lat.bare));
  out.push(latencyRow('bare Node TLS 1.3 echo (no protocol)', lat.bareTls));
}
if (wants('chat')) {
  const chat = {
    nc: await chatTraffic('nc'),
    bare: await chatTraffic('bare-tls'),
    lanchat: await chatTraffic('lanchat'),
    secure: await chatTraffic('secure'),
  };
  out.push(
    '',
    `### Chat-like traffic (${fmt(CHAT_MESSAGES)} separate 20-byte lines after ${fmt(CHAT_WARM_UP)}, each sent once the one before came out)`,
    '',
  );
  out.push('| sender → receiver | lines/s | CPU µs per line: sender / receiver | × nc |', '|---|---|---|---|');
  const chatRow = (name, c) =>
    `| ${name} | ${fmt(c.rate)} | ${fmt(c.senderUs, 1)} / ${fmt(c.receiverUs, 1)} | ${fmt(c.senderUs / chat.nc.senderUs, 2)} / ${fmt(c.receiverUs / chat.nc.receiverUs, 2)} |`;
  out.push(chatRow('nc → nc -l', chat.nc));
  out.push(chatRow('bare Node TLS 1.3 pipe → bare Node TLS 1.3 pipe (no protocol, nothing confirmed: the platform’s floor)', chat.bare));
  out.push(chatRow('lanchat, both --insecure', chat.lanchat));
  out.push(chatRow('lanchat over TLS 1.3 (the default)', chat.secure));
}
if (wants('sessions')) {
  // Rounds interleaved, as for throughput; medians.
  const listeners = { ncat: [], bare: [], lanchat: [], ...(CLI_BEFORE && { before: [] }) };
  for (let round = 1; round <= Math.min(RUNS, 3); round++) {
    listeners.ncat.push(await sessions('ncat', identity));
    listeners.bare.push(await sessions('bare', identity));
    listeners.lanchat.push(await sessions('lanchat', identity));
    if (CLI_BEFORE) listeners.before.push(await sessions('lanchat', identity, CLI_BEFORE));
  }
  const [ncat, bare, lanchat, before] = [listeners.ncat, listeners.bare, listeners.lanchat, listeners.before].map(
    (runs) =>
      runs && {
        rate: median(runs.map((r) => r.rate)),
        listenerUs: median(runs.map((r) => r.listenerUs)),
        clientUs: median(runs.map((r) => r.clientUs)),
      },
  );
  out.push(
    '',
    `### TLS sessions accepted by one listener (one client process, ${SESSIONS_IN_FLIGHT} at once, ${SESSION_SECONDS} s, median of ${listeners.ncat.length})`,
    '',
  );
  out.push('The client is Node (one process): its own handshakes cost about as much as the listener’s, so on 2 cores the rate');
  out.push('is bound by both; the listener’s CPU per session says how many one core of it could accept.', '');
  out.push(
    '| listener | sessions/s | × ncat | CPU µs per session: listener / client | sessions per listener CPU second |',
    '|---|---|---|---|---|',
  );
  const sessionRow = (name, r) =>
    `| ${name} | ${fmt(r.rate)} | ${fmt(r.rate / ncat.rate, 2)} | ${fmt(r.listenerUs)} / ${fmt(r.clientUs)} | ${fmt(1e6 / r.listenerUs)} |`;
  out.push(sessionRow('ncat --ssl -l -k (handshake, a line, close)', ncat));
  out.push(sessionRow('bare Node TLS listener, client certificate asked for (handshake, a line each way, close)', bare));
  out.push(sessionRow('lanchat listen --room (handshake, hello both ways, goodbye)', lanchat));
  if (before) out.push(sessionRow('lanchat listen --room, BENCH_BEFORE build', before));
}
if (wants('startup')) {
  const boot = startup();
  out.push('', `### Start-up (median of ${STARTUP_RUNS})`, '');
  out.push('| command | ms | × node -e 0 |', '|---|---|---|');
  out.push(`| node -e 0 | ${fmt(boot.node, 1)} | 1.00 |`);
  out.push(`| lanchat --version | ${fmt(boot.version, 1)} | ${fmt(boot.version / boot.node, 2)} |`);
  out.push(`| lanchat --help | ${fmt(boot.help, 1)} | ${fmt(boot.help / boot.node, 2)} |`);
}
out.push('', `Load average (1, 5, 15 min) at the start: ${loadBefore}; at the end: ${load()}.`);
console.log(out.join('\n'));
