#!/usr/bin/env node
// `npm run bench`, files: one file of random bytes (1 GiB) sent with
// `lanchat send` to `lanchat listen --accept-files` (the default encrypted
// session) beside `ncat --ssl`, `socat OPENSSL` and magic-wormhole, the rows
// interleaved round by round in one run (medians); then what SHA-256 costs,
// and chat lines both ways during a transfer over one session. Every received
// file is compared with the original byte for byte. Loopback only: wormhole,
// its mailbox server and its transit relay run in a network namespace made
// here with nothing but `lo`, so that nothing it tries can leave the machine.
//
// Timing: from starting the sender until both sides have exited (the
// receivers are listening already; wormhole's receiver starts with its
// sender). CPU and peak RSS of each side come from /usr/bin/time.
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { once } from 'node:events';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { HOST, freePort, sleep, waitListening } from './loopback.mjs';

const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
const MIB = 1024 * 1024;
const SIZE_MIB = Number(process.env.BENCH_FILE_MIB ?? 1024);
const SIZE = SIZE_MIB * MIB;
const ROUNDS = Number(process.env.BENCH_FILE_RUNS ?? 3);
/**
 * Another build of lanchat for one more row in the same rounds (its dist/cli.js):
 * a branch against main, or a copy patched to try an idea, measured side by side.
 */
const OTHER_CLI = process.env.BENCH_FILE_OTHER_CLI;
const PEERS = (process.env.BENCH_FILE_PEERS ?? 'lanchat,ncat,socat,wormhole').split(',').concat(OTHER_CLI ? ['other'] : []);
/** Chat lines during a transfer: one each way every this many ms. */
const CHAT_EVERY_MS = 20;
/** Transfers during the chat, one after the other. */
const CHAT_TRANSFERS = 2;
/** Chat lines before the transfer: the same session idle, for comparison. */
const CHAT_IDLE_MS = 3000;
/** No transfer may take longer (1 GiB at 10 MB/s would: something is wrong). */
const TRANSFER_MS = Math.max(60_000, (SIZE / 10e6) * 1000);
/** The network namespace's ports (nothing else listens in it). */
const MAILBOX_PORT = 40_000;
const TRANSIT_PORT = 40_001;

const missing = [
  ['ncat', 'ncat'],
  ['socat', 'socat'],
  ['openssl', 'openssl'],
  ['cmp', 'diffutils'],
  ['/usr/bin/time', 'time'],
].filter(([tool]) => spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0);
if (missing.length > 0) {
  console.error(`bench: ${missing.map(([tool]) => tool).join(', ')} missing (apt-get install ${missing.map(([, pkg]) => pkg).join(' ')})`);
  process.exit(1);
}
if (!existsSync(CLI)) {
  console.error('bench: build first (npm run build)');
  process.exit(1);
}
/** Wormhole needs its servers and a namespace of its own (root, iproute2); without them its row is left out, with a word. */
function wormholeMissing() {
  if (!PEERS.includes('wormhole')) return 'not asked for';
  const tools = ['wormhole', 'twist3', 'ip'].filter((tool) => spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0);
  if (tools.length > 0)
    return `${tools.join(', ')} missing (apt-get install magic-wormhole python3-magic-wormhole-mailbox-server magic-wormhole-transit-relay iproute2)`;
  if (process.getuid?.() !== 0) return 'a network namespace needs root';
  return null;
}

const work = mkdtempSync(join(tmpdir(), 'lanchat-bench-files-'));
const namespace = `lanchat-bench-${process.pid}`;
let namespaceMade = false;
/** Every child started here that may still run: killed (its process group) on the way out. */
const running = new Set();
process.on('exit', () => {
  for (const child of running) killGroup(child);
  if (namespaceMade) spawnSync('ip', ['netns', 'del', namespace]);
  rmSync(work, { recursive: true, force: true });
});
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(130));
process.env.LANCHAT_HOME = join(work, 'home');

const source = join(work, 'random.bin');
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const quantile = (xs, q) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))];
const fmt = (n, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const loadAverage = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
const say = (text) => process.stderr.write(`  ${text}\n`);

function killGroup(child) {
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // gone already
  }
}

/** SIZE random bytes (not compressible: no tool gets a head start). */
function writeSource() {
  const block = Buffer.alloc(16 * MIB);
  const fd = openSync(source, 'w');
  for (let left = SIZE; left > 0;) {
    randomFillSync(block);
    left -= writeSync(fd, block, 0, Math.min(block.length, left));
  }
  closeSync(fd);
}

/**
 * Starts a command under /usr/bin/time (in its own process group, so a timeout
 * kills wrappers and all), inside the namespace if `inNamespace`. `stats()`
 * resolves once it exited 0 (else throws, with its last line of stderr) to
 * its CPU seconds and peak RSS.
 */
function timed(name, command, args, { stdio = ['ignore', 'ignore', 'pipe'], inNamespace = false, env = process.env } = {}) {
  const statsFile = join(work, `time-${name}-${performance.now().toFixed(3)}`);
  const timeArgs = ['/usr/bin/time', '-o', statsFile, '-f', '%e %U %S %M', command, ...args];
  const [file, ...rest] = inNamespace ? ['ip', 'netns', 'exec', namespace, ...timeArgs] : timeArgs;
  const child = spawn(file, rest, { stdio, env, detached: true });
  running.add(child);
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk) => (stderr += chunk));
  const exited = once(child, 'exit').then(([code, signal]) => {
    running.delete(child);
    return { code, signal };
  });
  const stats = async (ms = TRANSFER_MS) => {
    const timer = setTimeout(() => killGroup(child), ms);
    const { code, signal } = await exited;
    clearTimeout(timer);
    const last = existsSync(statsFile) ? readFileSync(statsFile, 'utf8').trim().split('\n').at(-1) : '';
    const [, user = NaN, sys = NaN, kib = NaN] = last.split(' ').map(Number);
    if (code !== 0) throw new Error(`${name} ended with ${signal ?? `exit ${code}`}: ${stderr.trim().split('\n').at(-1) ?? ''}`);
    return { cpu: user + sys, rssMiB: kib / 1024 };
  };
  return { child, stats, stderr: () => stderr };
}

async function waitFor(test, what, ms = 10_000) {
  const deadline = Date.now() + ms;
  while (!test()) {
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${ms / 1000} s`);
    await sleep(5);
  }
}

/** The received copy is the original, byte for byte (and then goes, to keep the disk free). */
function identical(copy) {
  const same = existsSync(copy) && spawnSync('cmp', ['-s', source, copy]).status === 0;
  rmSync(copy, { force: true });
  return same;
}

/** A throwaway self-signed P-256 certificate, and an OpenSSL config that sends no TLS 1.3 session tickets. */
function tlsFiles() {
  const key = join(work, 'key.pem');
  const cert = join(work, 'cert.pem');
  const made = spawnSync('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    key,
    '-out',
    cert,
    '-days',
    '1',
    '-subj',
    '/CN=lanchat-bench',
  ]);
  if (made.status !== 0) throw new Error(`openssl req: ${made.stderr}`);
  // ncat --send-only closes as soon as its input ends; a ticket the listener
  // sends after the handshake then meets a closed socket, the listener's read
  // fails with a reset, and the tail of the data is lost. No tickets: no loss.
  const config = join(work, 'openssl.cnf');
  writeFileSync(
    config,
    [
      'openssl_conf = openssl_init',
      '[openssl_init]',
      'ssl_conf = ssl_sect',
      '[ssl_sect]',
      'system_default = system_default_sect',
      '[system_default_sect]',
      'NumTickets = 0',
      '',
    ].join('\n'),
  );
  return { key, cert, env: { ...process.env, OPENSSL_CONF: config } };
}

async function lanchatTransfer(cli) {
  const into = join(work, 'inbox');
  mkdirSync(into, { recursive: true });
  const listener = timed('lanchat-listen', cli, ['listen', '0', '--host', HOST, '--accept-files', into]);
  await waitFor(() => /listening on .*:\d+/.test(listener.stderr()), 'lanchat listen');
  const port = /listening on .*:(\d+)/.exec(listener.stderr())[1];
  const start = performance.now();
  const sender = timed('lanchat-send', cli, ['send', source, '--to', `${HOST}:${port}`]);
  return finish(start, sender, listener, join(into, 'random.bin'));
}

/** One transfer of the source: seconds, each side's CPU and peak RSS, and whether the copy is identical. */
const transfers = {
  lanchat: () => lanchatTransfer(CLI),
  other: () => lanchatTransfer(OTHER_CLI),
  async ncat({ key, cert, env }) {
    const copy = join(work, 'ncat.bin');
    const out = openSync(copy, 'w');
    const port = await freePort();
    const listener = timed(
      'ncat-listen',
      'ncat',
      ['--ssl', '--ssl-cert', cert, '--ssl-key', key, '--recv-only', '-l', HOST, String(port)],
      {
        stdio: ['ignore', out, 'pipe'],
        env,
      },
    );
    closeSync(out);
    await waitListening(port);
    const input = openSync(source, 'r');
    const start = performance.now();
    const sender = timed('ncat-send', 'ncat', ['--ssl', '--send-only', HOST, String(port)], { stdio: [input, 'ignore', 'pipe'], env });
    closeSync(input);
    return finish(start, sender, listener, copy);
  },
  async socat({ key, cert, env }) {
    const copy = join(work, 'socat.bin');
    const out = openSync(copy, 'w');
    const port = await freePort();
    const listener = timed(
      'socat-listen',
      'socat',
      ['-u', `OPENSSL-LISTEN:${port},bind=${HOST},reuseaddr,cert=${cert},key=${key},verify=0`, 'STDOUT'],
      { stdio: ['ignore', out, 'pipe'], env },
    );
    closeSync(out);
    await waitListening(port);
    const input = openSync(source, 'r');
    const start = performance.now();
    const sender = timed('socat-send', 'socat', ['-u', 'STDIN', `OPENSSL:${HOST}:${port},verify=0`], {
      stdio: [input, 'ignore', 'pipe'],
      env,
    });
    closeSync(input);
    return finish(start, sender, listener, copy);
  },
  async wormhole(_tls, round) {
    const copy = join(work, 'wormhole.bin');
    // Our own mailbox and transit relay: never the public ones (and the namespace could not reach them).
    const servers = ['--relay-url', `ws://${HOST}:${MAILBOX_PORT}/v1`, '--transit-helper', `tcp:${HOST}:${TRANSIT_PORT}`];
    const code = `${round + 1}-lanchat-bench`;
    const start = performance.now();
    const sender = timed('wormhole-send', 'wormhole', [...servers, 'send', '--hide-progress', '--code', code, source], {
      inNamespace: true,
    });
    const receiver = timed('wormhole-receive', 'wormhole', [...servers, 'receive', '--hide-progress', '--accept-file', '-o', copy, code], {
      inNamespace: true,
    });
    const run = await finish(start, sender, receiver, copy);
    // `Receiving (->tcp:127.0.0.1:PORT)`: straight from the sender; `(->relay:…)`: through the transit relay.
    return { ...run, relayed: /Receiving \(->relay/.test(receiver.stderr()) };
  },
};

async function finish(start, sender, receiver, copy) {
  const [sent, received] = await Promise.all([sender.stats(), receiver.stats()]);
  const seconds = (performance.now() - start) / 1000;
  return { seconds, sender: sent, receiver: received, identical: identical(copy) };
}

/** Wormhole's mailbox server and transit relay, in a namespace whose only interface is loopback. */
async function startWormholeServers() {
  const made = spawnSync('ip', ['netns', 'add', namespace]);
  if (made.status !== 0) throw new Error(`ip netns add: ${made.stderr}`);
  namespaceMade = true;
  spawnSync('ip', ['netns', 'exec', namespace, 'ip', 'link', 'set', 'lo', 'up']);
  const inNamespace = (args) => {
    const child = spawn('ip', ['netns', 'exec', namespace, ...args], { stdio: 'ignore', detached: true });
    running.add(child);
    return child;
  };
  const mailbox = inNamespace([
    'twist3',
    '--log-file',
    join(work, 'mailbox.log'),
    'wormhole-mailbox',
    `--port=tcp:${MAILBOX_PORT}:interface=${HOST}`,
    `--channel-db=${join(work, 'mailbox.sqlite')}`,
  ]);
  const relay = inNamespace([
    'twist3',
    '--log-file',
    join(work, 'transit.log'),
    'transitrelay',
    `--port=tcp:${TRANSIT_PORT}:interface=${HOST}`,
  ]);
  // `ip netns exec` execs the server: /proc/PID/net is the namespace's table.
  const listens = (child, port) => {
    const hex = port.toString(16).toUpperCase().padStart(4, '0');
    try {
      return readFileSync(`/proc/${child.pid}/net/tcp`, 'utf8')
        .split('\n')
        .some((row) => row.includes(`:${hex} `) && / 0A /.test(row));
    } catch {
      return false;
    }
  };
  await waitFor(() => listens(mailbox, MAILBOX_PORT) && listens(relay, TRANSIT_PORT), 'the wormhole mailbox and transit relay', 20_000);
  return () => [mailbox, relay].forEach(killGroup);
}

const names = {
  lanchat: '`lanchat send` → `lanchat listen --accept-files` (TLS 1.3, SHA-256 checked)',
  ncat: '`ncat --ssl --send-only` → `ncat --ssl -l` (TLS 1.3)',
  socat: '`socat OPENSSL` → `socat OPENSSL-LISTEN` (TLS 1.3)',
  wormhole: '`wormhole send` → `wormhole receive` (own mailbox server, loopback only)',
  other: `lanchat as built in ${OTHER_CLI}`,
};

async function throughput() {
  const tls = tlsFiles();
  const why = wormholeMissing();
  const peers = PEERS.filter((peer) => peer !== 'wormhole' || why === null);
  if (why !== null && PEERS.includes('wormhole')) say(`wormhole left out: ${why}`);
  const stopServers = peers.includes('wormhole') ? await startWormholeServers() : () => {};
  const runs = Object.fromEntries(peers.map((peer) => [peer, []]));
  const loads = [];
  for (let round = 0; round < ROUNDS; round++) {
    loads.push(loadAverage());
    // Each round in another order, so that no row always follows the same one.
    const order = peers.map((_, i) => peers[(i + round) % peers.length]);
    for (const peer of order) {
      const run = await transfers[peer](tls, round);
      runs[peer].push(run);
      const rate = SIZE / 1e6 / run.seconds;
      say(`round ${round + 1} ${peer}: ${fmt(rate)} MB/s${run.identical ? '' : ' — THE COPY DIFFERS'}`);
    }
  }
  stopServers();
  return { runs, loads };
}

/**
 * What SHA-256 costs here, over the same bytes: CPU seconds per GB in the
 * update sizes lanchat uses (the sender hashes what it reads from the file, 1
 * MiB at a time; the receiver what arrives, in pieces of TLS records up to 16
 * KiB). Only the hashing is timed, not the reading; three passes of each size,
 * alternated, and their median (the first pass over fresh memory is slower).
 */
function hashCost() {
  const block = Buffer.alloc(64 * MIB);
  const passes = { '1 MiB': [], '16 KiB': [] };
  for (let pass = 0; pass < 3; pass++) {
    for (const [label, piece] of [
      ['1 MiB', MIB],
      ['16 KiB', 16 * 1024],
    ]) {
      const hash = createHash('sha256');
      const fd = openSync(source, 'r');
      let cpu = 0;
      for (let read; (read = readSync(fd, block, 0, block.length, null)) > 0;) {
        const before = process.cpuUsage();
        for (let at = 0; at < read; at += piece) hash.update(block.subarray(at, Math.min(read, at + piece)));
        const used = process.cpuUsage(before);
        cpu += (used.user + used.system) / 1e6;
      }
      closeSync(fd);
      hash.digest();
      passes[label].push(cpu / (SIZE / 1e9));
    }
  }
  return { '1 MiB': { perGB: median(passes['1 MiB']) }, '16 KiB': { perGB: median(passes['16 KiB']) } };
}

/** Reads lines from a child's stream as they come. */
function onLines(stream, online) {
  let pending = '';
  stream.setEncoding('utf8').on('data', (chunk) => {
    pending += chunk;
    let nl;
    while ((nl = pending.indexOf('\n')) >= 0) {
      online(pending.slice(0, nl));
      pending = pending.slice(nl + 1);
    }
  });
}

/**
 * Chat during a transfer: `lanchat connect --commands` (stdin ours) and
 * `lanchat listen --accept-files` (stdin ours too), stdout read here. A line
 * goes each way every CHAT_EVERY_MS, `c|l SEQ SENT_MS` (SENT_MS from this
 * process's clock just before the write; plain output is exactly the text, so
 * the arrival minus that is the line's latency). First CHAT_IDLE_MS with no
 * transfer, then `/send FILE` on the connector's stdin, until the listener
 * says the file was received; CHAT_TRANSFERS times.
 */
async function chatDuringTransfer(cli) {
  const into = join(work, 'chat-inbox');
  mkdirSync(into, { recursive: true });
  const listener = timed('chat-listen', cli, ['listen', '0', '--host', HOST, '--accept-files', into], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  await waitFor(() => /listening on .*:\d+/.test(listener.stderr()), 'lanchat listen');
  const port = /listening on .*:(\d+)/.exec(listener.stderr())[1];
  const connector = timed('chat-connect', cli, ['connect', '--commands', HOST, port], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  await waitFor(() => /connected to/.test(listener.stderr()) && /connected to/.test(connector.stderr()), 'the chat session');

  const sent = { c: new Map(), l: new Map() };
  const arrived = { c: [], l: [] };
  const take = (line) => {
    const [way, seq, at] = line.split(' ');
    const sentAt = Number(at);
    if (sent[way]?.get(Number(seq)) === sentAt) arrived[way].push({ sentAt, ms: performance.now() - sentAt });
  };
  onLines(listener.child.stdout, take);
  onLines(connector.child.stdout, take);
  let seq = 0;
  const speak = () => {
    seq++;
    for (const [way, child] of [
      ['c', connector.child],
      ['l', listener.child],
    ]) {
      const now = performance.now();
      sent[way].set(seq, Number(now.toFixed(3)));
      child.stdin.write(`${way} ${seq} ${now.toFixed(3)}\n`);
    }
  };
  const ticker = setInterval(speak, CHAT_EVERY_MS);
  await sleep(CHAT_IDLE_MS);
  // The file, CHAT_TRANSFERS times one after the other: more lines during transfers, for the tail.
  const windows = [];
  for (let n = 1; n <= CHAT_TRANSFERS; n++) {
    const offeredAt = performance.now();
    connector.child.stdin.write(`/send ${source}\n`);
    const received = () => listener.stderr().match(/^received random\.bin/gm)?.length ?? 0;
    await waitFor(() => received() >= n || /did not arrive/.test(listener.stderr()), 'the transfer during the chat', TRANSFER_MS);
    windows.push([offeredAt, performance.now()]);
  }
  clearInterval(ticker);
  await sleep(500); // the last lines arrive
  connector.child.stdin.end();
  listener.child.stdin.end();
  await Promise.all([connector.stats(30_000), listener.stats(30_000)]);
  const during = (way) =>
    arrived[way].filter((line) => windows.some(([from, to]) => line.sentAt >= from && line.sentAt <= to)).map((line) => line.ms);
  const idle = (way) => arrived[way].filter((line) => line.sentAt < windows[0][0]).map((line) => line.ms);
  const lost = (way) => sent[way].size - arrived[way].length;
  const stats = (xs) => ({ n: xs.length, p50: quantile(xs, 0.5), p99: quantile(xs, 0.99), max: Math.max(...xs) });
  const result = {
    seconds: windows.reduce((sum, [from, to]) => sum + (to - from), 0) / 1000 / CHAT_TRANSFERS,
    identical: ['random.bin', ...Array.from({ length: CHAT_TRANSFERS - 1 }, (_, i) => `random (${i + 1}).bin`)]
      .map((name) => identical(join(into, name)))
      .every(Boolean),
    same: { idle: stats(idle('c')), during: stats(during('c')), lost: lost('c') },
    other: { idle: stats(idle('l')), during: stats(during('l')), lost: lost('l') },
  };
  say(
    `chat during the transfer: p99 ${fmt(result.same.during.p99, 1)} ms (with the file), ${fmt(result.other.during.p99, 1)} ms (against it)`,
  );
  return result;
}

process.stderr.write(`lanchat files bench: ${SIZE_MIB} MiB of random bytes, ${ROUNDS} rounds, load average ${loadAverage()}\n`);
writeSource();
// The identity a person has had since their first session: made now, not in the first timed round.
spawnSync(CLI, ['id'], { stdio: 'ignore' });
const { runs, loads } = await throughput();
const hash = hashCost();
const chats = [];
if (PEERS.includes('lanchat')) chats.push(['lanchat', await chatDuringTransfer(CLI)]);
if (OTHER_CLI) chats.push([OTHER_CLI, await chatDuringTransfer(OTHER_CLI)]);
const endLoad = loadAverage();

const relayed = (list) => {
  const through = list.filter((run) => run.relayed).length;
  if (!list.some((run) => 'relayed' in run)) return '';
  return through === 0 ? ', straight from sender to receiver' : `, through the transit relay in ${through} of ${list.length}`;
};
const out = [];
const rate = (run) => SIZE / 1e6 / run.seconds;
const ncatRates = runs.ncat?.map(rate);
out.push(
  `### Files: ${fmt(SIZE_MIB)} MiB of random bytes over loopback, median of ${ROUNDS} interleaved rounds`,
  '',
  `Load average (1, 5, 15 min) at the start of each round: ${loads.join('; ')}.`,
  '',
  '| sender → receiver | MB/s (min–max) | × ncat --ssl (per round) | peak RSS sender / receiver (MiB) | CPU s per GB sender / receiver | byte-identical |',
  '|---|---|---|---|---|---|',
);
for (const [peer, list] of Object.entries(runs)) {
  const rates = list.map(rate);
  // Each round's rate against ncat's in the same round: the machine's load hits both alike.
  const ratios = ncatRates ? rates.map((r, i) => r / ncatRates[i]) : [];
  const ratio = ncatRates
    ? `${fmt(median(rates) / median(ncatRates), 2)} (${fmt(Math.min(...ratios), 2)}–${fmt(Math.max(...ratios), 2)})`
    : '–';
  const perGB = (side) => fmt(median(list.map((run) => run[side].cpu / (SIZE / 1e9))), 2);
  const peak = (side) => fmt(Math.max(...list.map((run) => run[side].rssMiB)));
  const same = list.filter((run) => run.identical).length;
  out.push(
    `| ${names[peer]}${relayed(list)} | ${fmt(median(rates))} (${fmt(Math.min(...rates))}–${fmt(Math.max(...rates))}) | ${ratio} | ${peak('sender')} / ${peak('receiver')} | ${perGB('sender')} / ${perGB('receiver')} | ${same} of ${list.length} |`,
  );
}
out.push(
  '',
  `SHA-256 here (same bytes, same run, only the hashing timed): ${fmt(hash['1 MiB'].perGB, 2)} s of CPU per GB in 1 MiB updates (as lanchat's sender hashes), ${fmt(hash['16 KiB'].perGB, 2)} s in 16 KiB updates (as its receiver hashes).`,
);
if (runs.lanchat) {
  const perGB = (peer, side) => median(runs[peer].map((run) => run[side].cpu / (SIZE / 1e9)));
  const both = perGB('lanchat', 'sender') + perGB('lanchat', 'receiver');
  const hashed = hash['1 MiB'].perGB + hash['16 KiB'].perGB;
  out.push(
    `That is ${fmt((100 * hash['1 MiB'].perGB) / perGB('lanchat', 'sender'))} % of lanchat's sender CPU and ${fmt((100 * hash['16 KiB'].perGB) / perGB('lanchat', 'receiver'))} % of its receiver's in this run;`,
    `both sides together used ${fmt(both, 2)} s per GB${runs.ncat ? ` (ncat --ssl ${fmt(perGB('ncat', 'sender') + perGB('ncat', 'receiver'), 2)})` : ''}, ${fmt((100 * hashed) / both)} % of it hashing.`,
  );
}
for (const [built, chat] of chats) {
  const row = (name, way, phase) =>
    `| ${name} | ${phase} | ${way[phase].n} | ${fmt(way[phase].p50, 1)} | ${fmt(way[phase].p99, 1)} | ${fmt(way[phase].max, 1)} | ${way.lost} |`;
  out.push(
    '',
    `### Chat lines during a transfer (one line each way every ${CHAT_EVERY_MS} ms; \`connect --commands\` → \`/send\` ${fmt(SIZE_MIB)} MiB → \`listen --accept-files\`${built === 'lanchat' ? '' : `; lanchat as built in ${built}`})`,
    '',
    `The file was sent ${CHAT_TRANSFERS} times, one after the other; each took ${fmt(chat.seconds, 1)} s on average (${fmt(SIZE / 1e6 / chat.seconds)} MB/s) beside the chat and arrived ${chat.identical ? 'byte-identical' : 'DIFFERENT'}. Load average at the end of the bench: ${endLoad}.`,
    '',
    '| lines | while | lines | p50 ms | p99 ms | max ms | lost (whole run) |',
    '|---|---|---|---|---|---|---|',
    row('connector → listener (with the file)', chat.same, 'idle'),
    row('connector → listener (with the file)', chat.same, 'during'),
    row('listener → connector (against it)', chat.other, 'idle'),
    row('listener → connector (against it)', chat.other, 'during'),
  );
}
console.log(out.join('\n'));
const failed = Object.values(runs).some((list) => list.some((run) => !run.identical)) || chats.some(([, chat]) => !chat.identical);
if (failed) process.exitCode = 1;
