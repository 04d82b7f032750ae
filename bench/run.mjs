#!/usr/bin/env node
// `npm run bench`: lanchat against OpenBSD netcat and socat on loopback, every
// row measured in this run, printed as a Markdown table with ratios. Loopback
// only, ephemeral ports, bounded waits; about 3 minutes on 2 cores.
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { connect } from 'node:net';
import * as tls from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HOST, freePort, sleep, waitListening } from './loopback.mjs';

const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
const MIB = 1024 * 1024;
const SIZE_MIB = Number(process.env.BENCH_MIB ?? 256);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const LATENCY_MESSAGES = 10_000;
/**
 * Sent first and timed apart: until V8 has compiled the hot paths (of the
 * listener, and of this client) round trips are slower, on 2 cores mostly
 * because the compiler threads take turns with the peers.
 */
const WARM_UP_MESSAGES = 3000;
const SLOW_READER_SECONDS = Number(process.env.BENCH_SLOW_SECONDS ?? 20);
const STARTUP_RUNS = 20;

for (const tool of ['nc', 'socat']) {
  if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) {
    console.error(`bench: ${tool} is not installed (apt-get install netcat-openbsd socat)`);
    process.exit(1);
  }
}

const work = mkdtempSync(join(tmpdir(), 'lanchat-bench-'));
process.on('exit', () => rmSync(work, { recursive: true, force: true }));
const input = join(work, 'lines.txt');
// lanchat's identity and pinned keys go to the scratch directory, not the user's config.
process.env.LANCHAT_HOME = work;

/** SIZE_MIB of 100-byte lines (99 characters and LF). */
function writeInput() {
  const line = 'x'.repeat(60) + ' lanchat bench line 0123456789 abcdefghij\n'.slice(0, 39) + '\n';
  const block = Buffer.from(line.repeat(10_000));
  const fd = openSync(input, 'w');
  let left = SIZE_MIB * MIB;
  while (left > 0) left -= writeSync(fd, block, 0, Math.min(block.length, left));
  closeSync(fd);
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (n, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

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

function exited(child, what, ms = 120_000) {
  return Promise.race([
    once(child, 'exit').then(([code, signal]) => ({ code, signal })),
    sleep(ms).then(() => {
      child.kill('SIGKILL');
      throw new Error(`${what} did not finish within ${ms / 1000} s`);
    }),
  ]);
}

const BARE = fileURLToPath(new URL('./bare.mjs', import.meta.url));

/** A receiver that reports its port on stderr: lanchat listen, or the bare Node pipe. */
async function lanchatListener(args, stdout, command = [CLI, 'listen', '0', '--host', HOST]) {
  const child = spawn(process.execPath, [...command, ...args], { stdio: ['ignore', stdout, 'pipe'] });
  let err = '';
  child.stderr.setEncoding('utf8').on('data', (chunk) => (err += chunk));
  const deadline = Date.now() + 5000;
  while (!/listening on .*:(\d+)/.test(err)) {
    if (Date.now() > deadline) throw new Error(`lanchat listen did not start: ${err}`);
    await sleep(5);
  }
  return { child, port: Number(/listening on .*:(\d+)/.exec(err)[1]), stderr: () => err };
}

/** The receiving end's stdout: /dev/null, or a pipe drained by cat. */
function sink(kind) {
  if (kind === 'null') return { stdout: openSync('/dev/null', 'w'), done: Promise.resolve() };
  return {
    stdout: 'pipe',
    attach: (child) => {
      const cat = spawn('cat', [], { stdio: [child.stdout, 'ignore', 'inherit'] });
      return exited(cat, 'cat');
    },
  };
}

/** One transfer of the input file; returns seconds and the peak RSS of lanchat processes. */
async function transfer(kind, sinkKind) {
  const out = sink(sinkKind);
  let receiver;
  let port;
  if (kind === 'lanchat' || kind === 'secure' || kind.startsWith('bare-')) {
    const bare = { 'bare-bare': [BARE, 'receive'], 'bare-tls': [BARE, 'receive', 'tls'] }[kind];
    const listener = await lanchatListener(kind === 'lanchat' ? ['--insecure'] : [], out.stdout, bare);
    receiver = listener.child;
    port = listener.port;
  } else {
    port = await freePort();
    receiver = spawn('nc', ['-l', HOST, String(port)], { stdio: ['ignore', out.stdout, 'inherit'] });
    await waitListening(port);
  }
  const catDone = out.attach ? out.attach(receiver) : out.done;
  if (typeof out.stdout === 'number') closeSync(out.stdout);
  const fd = openSync(input, 'r');
  const start = process.hrtime.bigint();
  const command = {
    nc: ['nc', ['-N', HOST, String(port)]],
    bare: [process.execPath, [BARE, 'send', String(port)]],
    'bare-bare': [process.execPath, [BARE, 'send', String(port)]],
    'bare-tls': [process.execPath, [BARE, 'send', String(port), 'tls']],
    lanchat: [process.execPath, [CLI, 'connect', '--insecure', HOST, String(port)]],
    secure: [process.execPath, [CLI, 'connect', HOST, String(port)]],
    raw: [process.execPath, [CLI, 'connect', '--raw', HOST, String(port)]],
  }[kind];
  const sender = spawn(command[0], command[1], { stdio: [fd, 'ignore', kind === 'nc' ? 'inherit' : 'ignore'] });
  closeSync(fd);
  const lanchats = [
    kind === 'lanchat' || kind === 'secure' ? receiver : null,
    ['lanchat', 'secure', 'raw'].includes(kind) ? sender : null,
  ].filter(Boolean);
  const memory = watchMemory(lanchats);
  const [sent, received] = await Promise.all([exited(sender, `${kind} sender`), exited(receiver, `${kind} receiver`), catDone]);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  if (sent.code !== 0 || received.code !== 0) throw new Error(`${kind}: exit codes ${sent.code}/${received.code}`);
  const [first = 0, second = 0] = memory();
  const rss = kind === 'lanchat' || kind === 'secure' ? { listener: first, connector: second } : kind === 'raw' ? { connector: first } : {};
  return { seconds, rss };
}

async function throughput() {
  const rows = [];
  for (const sinkKind of ['null', 'pipe']) {
    for (const kind of ['nc', 'bare', 'bare-bare', 'lanchat', 'bare-tls', 'secure', 'raw']) {
      const runs = [];
      for (let i = 0; i < RUNS; i++) runs.push(await transfer(kind, sinkKind));
      const rates = runs.map((r) => (SIZE_MIB * MIB) / 1e6 / r.seconds);
      const peak = (side) => Math.max(...runs.map((r) => r.rss[side] ?? 0));
      rows.push({
        kind,
        sinkKind,
        median: median(rates),
        min: Math.min(...rates),
        max: Math.max(...rates),
        listener: peak('listener'),
        connector: peak('connector'),
      });
      process.stderr.write(`  throughput ${kind} → ${sinkKind}: ${fmt(median(rates))} MB/s\n`);
    }
  }
  return rows;
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
  const sender = spawn(process.execPath, [CLI, 'connect', ...args, HOST, String(listener.port)], { stdio: [fd, 'ignore', 'ignore'] });
  closeSync(fd);
  const memory = watchMemory([listener.child, sender]);
  await sleep(SLOW_READER_SECONDS * 1000);
  const [listenerMiB, connectorMiB] = memory();
  for (const child of [sender, listener.child, reader]) child.kill('SIGKILL');
  process.stderr.write(`  slow reader ${args.join(' ') || 'TLS'}: listener ${fmt(listenerMiB)} MiB, connector ${fmt(connectorMiB)} MiB\n`);
  return { listenerMiB, connectorMiB };
}

/**
 * Round trips of one-line messages from an in-bench client: to `lanchat listen`
 * (a msg frame, then its ack, sent once the line is written to stdout) and to a
 * socat echo (a line, then the line back).
 */
async function roundTrips(port, lanchat, identity = null) {
  const plain = connect(port, HOST);
  plain.setNoDelay(true);
  await once(plain, 'connect');
  const socket = identity
    ? tls.connect({ socket: plain, key: identity.key, cert: identity.cert, minVersion: 'TLSv1.3', rejectUnauthorized: false })
    : plain;
  if (identity) await once(socket, 'secureConnect');
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
  return { p50: at(times, 0.5), p99: at(times, 0.99), p999: at(times, 0.999), coldP99: at(cold, 0.99) };
}

async function latency() {
  const lanchatRoundTrips = async (args, identity) => {
    const listener = await lanchatListener(args, 'ignore');
    const times = await roundTrips(listener.port, true, identity);
    await exited(listener.child, 'lanchat listener', 15_000).catch(() => listener.child.kill('SIGKILL'));
    return times;
  };
  const { loadIdentity } = await import('../dist/identity.js');
  const secure = await lanchatRoundTrips([], await loadIdentity(process.env));
  const lanchat = await lanchatRoundTrips(['--insecure']);
  const port = await freePort();
  const socat = spawn('socat', [`TCP-LISTEN:${port},bind=${HOST},reuseaddr`, 'PIPE'], { stdio: 'ignore' });
  await waitListening(port);
  const echo = await roundTrips(port, false);
  socat.kill('SIGKILL');
  process.stderr.write(`  latency p50: lanchat ${fmt(lanchat.p50)} µs, over TLS ${fmt(secure.p50)} µs, socat ${fmt(echo.p50)} µs\n`);
  return { lanchat, secure, echo };
}

/** Start-up times, the three commands interleaved so that a busy moment hits them alike. */
function startup() {
  const commands = { node: ['-e', '0'], version: [CLI, '--version'], help: [CLI, '--help'] };
  const runs = { node: [], version: [], help: [] };
  for (let i = 0; i < STARTUP_RUNS; i++) {
    for (const [name, args] of Object.entries(commands)) {
      const start = process.hrtime.bigint();
      spawnSync(process.execPath, args, { stdio: 'ignore' });
      runs[name].push(Number(process.hrtime.bigint() - start) / 1e6);
    }
  }
  const [node, version, help] = [median(runs.node), median(runs.version), median(runs.help)];
  process.stderr.write(`  start-up: node ${fmt(node, 1)} ms, --version ${fmt(version, 1)} ms, --help ${fmt(help, 1)} ms\n`);
  return { node, version, help };
}

if (!existsSync(CLI)) {
  console.error('bench: build first (npm run build)');
  process.exit(1);
}
process.stderr.write(`lanchat bench: ${SIZE_MIB} MiB of 100-byte lines, median of ${RUNS} runs\n`);
writeInput();
const rows = await throughput();
const slow = { secure: await slowReader([]), plain: await slowReader(['--insecure']) };
const lat = await latency();
const boot = startup();

const nc = Object.fromEntries(rows.filter((r) => r.kind === 'nc').map((r) => [r.sinkKind, r.median]));
const names = {
  nc: 'nc → nc -l',
  bare: 'bare Node pipe → nc -l (no protocol: the platform’s ceiling)',
  'bare-bare': 'bare Node pipe → bare Node pipe (no protocol)',
  'bare-tls': 'bare Node TLS 1.3 pipe → bare Node TLS 1.3 pipe (no protocol)',
  lanchat: 'lanchat connect → lanchat listen, both --insecure (plaintext, every line confirmed)',
  secure: 'lanchat connect → lanchat listen (the default: TLS 1.3, every line confirmed)',
  raw: 'lanchat connect --raw → nc -l',
};
const mem = (mib) => (mib ? fmt(mib) : '–');
const out = [];
out.push(`### Throughput (${SIZE_MIB} MiB of 100-byte lines, loopback, median of ${RUNS})`, '');
out.push('| sender → receiver | receiver stdout | MB/s (min–max) | × nc | peak RSS listener / connector (MiB) |');
out.push('|---|---|---|---|---|');
for (const r of rows) {
  out.push(
    `| ${names[r.kind]} | ${r.sinkKind === 'null' ? '/dev/null' : 'pipe'} | ${fmt(r.median)} (${fmt(r.min)}–${fmt(r.max)}) | ${fmt(r.median / nc[r.sinkKind], 2)} | ${mem(r.listener)} / ${mem(r.connector)} |`,
  );
}
out.push('', `### Memory with a slow reader (listener stdout read at 10 MB/s for ${SLOW_READER_SECONDS} s)`, '');
out.push('| session | listener peak RSS (MiB) | connector peak RSS (MiB) |', '|---|---|---|');
out.push(`| TLS 1.3 (the default) | ${fmt(slow.secure.listenerMiB)} | ${fmt(slow.secure.connectorMiB)} |`);
out.push(`| plaintext (--insecure) | ${fmt(slow.plain.listenerMiB)} | ${fmt(slow.plain.connectorMiB)} |`);
out.push(
  '',
  `### Latency (${fmt(LATENCY_MESSAGES)} one-line messages after ${fmt(WARM_UP_MESSAGES)} to warm up, each waiting for its confirmation)`,
  '',
);
out.push(
  `| peer | p50 µs | p99 µs | p99.9 µs | p50 × socat | p99 µs of the first ${fmt(WARM_UP_MESSAGES)} (warm-up) |`,
  '|---|---|---|---|---|---|',
);
const latencyRow = (name, t) =>
  `| ${name} | ${fmt(t.p50)} | ${fmt(t.p99)} | ${fmt(t.p999)} | ${fmt(t.p50 / lat.echo.p50, 2)} | ${fmt(t.coldP99)} |`;
out.push(latencyRow('lanchat listen --insecure (ack after the line is written)', lat.lanchat));
out.push(latencyRow('lanchat listen over TLS 1.3 (the default)', lat.secure));
out.push(latencyRow('socat echo (baseline)', lat.echo));
out.push('', `### Start-up (median of ${STARTUP_RUNS})`, '');
out.push('| command | ms | × node -e 0 |', '|---|---|---|');
out.push(`| node -e 0 | ${fmt(boot.node, 1)} | 1.00 |`);
out.push(`| lanchat --version | ${fmt(boot.version, 1)} | ${fmt(boot.version / boot.node, 2)} |`);
out.push(`| lanchat --help | ${fmt(boot.help, 1)} | ${fmt(boot.help / boot.node, 2)} |`);
console.log(out.join('\n'));
