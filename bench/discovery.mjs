#!/usr/bin/env node
// `npm run bench`, discovery part: how long `lanchat discover` takes to find
// listeners announced in another network namespace — one listener, then 50
// (each on its own address of one namespace). The goals (issue 12): 1 listener
// within 1 s, 50 within 2 s, counted from starting `lanchat discover` (Node's
// start-up included) to its line on stdout. Multicast stays inside the two
// namespaces made here (10.197.0.0/24 exists only there), removed at the end
// and on failure. Needs root and `ip`: says so and skips otherwise.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const MANY = Number(process.env.BENCH_LISTENERS ?? 50);
const WAIT_MS = 30_000;
const id = `${process.pid}`;
const A = `lanchat-bench-${id}-a`;
const B = `lanchat-bench-${id}-b`;
const A_DEV = `lb${id}a`;
const B_DEV = `lb${id}b`;

function skip(why) {
  console.log(`\n## Discovery\n\nskipped: ${why}`);
  process.exit(0);
}
if (process.getuid?.() !== 0) skip('network namespaces need root');
if (spawnSync('sh', ['-c', 'command -v ip']).status !== 0) skip('no `ip` command (iproute2)');

const ip = (...args) => execFileSync('ip', args, { stdio: 'ignore', timeout: 10_000 });
const work = mkdtempSync(join(tmpdir(), 'lanchat-bench-disco-'));
const children = new Set();
function cleanUp() {
  for (const child of children) child.kill('SIGKILL');
  for (const ns of [A, B]) spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore', timeout: 10_000 });
  rmSync(work, { recursive: true, force: true });
}
process.on('exit', cleanUp);
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(130));

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function makeNetwork() {
  ip('netns', 'add', A);
  ip('netns', 'add', B);
  ip('link', 'add', A_DEV, 'netns', A, 'type', 'veth', 'peer', 'name', B_DEV, 'netns', B);
  ip('-n', B, 'addr', 'add', '10.197.0.2/24', 'dev', B_DEV);
  for (let i = 0; i < MANY + 1; i++) ip('-n', A, 'addr', 'add', `10.197.0.${10 + i}/24`, 'dev', A_DEV);
  ip('-n', A, 'link', 'set', A_DEV, 'multicast', 'on', 'up');
  ip('-n', B, 'link', 'set', B_DEV, 'multicast', 'on', 'up');
}

async function linkRunning() {
  const deadline = Date.now() + WAIT_MS;
  for (const [ns, dev] of [
    [A, A_DEV],
    [B, B_DEV],
  ]) {
    while (!execFileSync('ip', ['-n', ns, '-o', 'link', 'show', 'dev', dev]).toString().includes('LOWER_UP')) {
      if (Date.now() > deadline) throw new Error(`${dev} did not come up`);
      await sleep(20);
    }
  }
}

/** Runs `lanchat …` in `ns`; `onLine` gets each stdout line with the ms since the spawn. */
function lanchatIn(ns, args, home, onLine = () => {}, onErrLine = () => {}) {
  const started = performance.now();
  const child = spawn('ip', ['netns', 'exec', ns, CLI, ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, LANCHAT_HOME: home, LANCHAT_MDNS: 'on' },
  });
  children.add(child);
  child.on('close', () => children.delete(child));
  const lines = (stream, each) => {
    let rest = '';
    stream.setEncoding('utf8').on('data', (chunk) => {
      rest += chunk;
      const parts = rest.split('\n');
      rest = parts.pop();
      for (const line of parts) each(line, performance.now() - started);
    });
  };
  lines(child.stdout, onLine);
  lines(child.stderr, onErrLine);
  return child;
}

/** Starts announcing listeners on the given addresses of namespace A; resolves once each says it is announced. */
async function startListeners(addresses) {
  const home = join(work, 'listeners');
  execFileSync(CLI, ['id'], { env: { ...process.env, LANCHAT_HOME: home }, stdio: 'ignore' }); // one key, made once
  return Promise.all(
    addresses.map(
      (address, i) =>
        new Promise((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`listener ${address} did not start`)), WAIT_MS * 2);
          const child = lanchatIn(A, ['listen', '0', '--host', address, '--announce', '--nick', `peer${i}`], home, undefined, (line) => {
            if (/announced as/.test(line)) {
              clearTimeout(timer);
              resolve(child);
            }
          });
        }),
    ),
  );
}

/** One `lanchat discover` in B: ms from its spawn until `want` distinct listeners were printed (null: not all within its wait). */
function timeDiscover(want, seconds) {
  return new Promise((resolve) => {
    const seen = new Set();
    let doneAt = null;
    const child = lanchatIn(B, ['discover', '--timeout', String(seconds)], join(work, 'browser'), (line, ms) => {
      seen.add(line.split('\t').slice(1, 3).join(':'));
      if (seen.size === want && doneAt === null) {
        doneAt = ms;
        child.kill('SIGTERM'); // found: no need to wait out the timeout
      }
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), (seconds + 10) * 1000);
    child.on('close', () => {
      clearTimeout(timer);
      resolve({ ms: doneAt, found: seen.size });
    });
  });
}

async function measure(label, listeners, goalMs) {
  const times = [];
  for (let run = 0; run < RUNS; run++) {
    const { ms, found } = await timeDiscover(listeners.length, 5);
    if (ms === null) console.error(`bench: ${label}: run ${run + 1} found ${found} of ${listeners.length} within 5 s`);
    times.push(ms ?? Infinity);
  }
  const best = Math.min(...times);
  const mid = median(times);
  const verdict = mid <= goalMs ? 'met' : 'MISSED';
  return `| ${label} | ${fmtMs(mid)} | ${fmtMs(best)} | ${fmtMs(goalMs)} | ${verdict} |`;
}

const fmtMs = (ms) => (Number.isFinite(ms) ? `${Math.round(ms)} ms` : 'not found');

async function main() {
  makeNetwork();
  await linkRunning();
  const rows = [];
  const one = await startListeners(['10.197.0.10']);
  rows.push(await measure('1 listener', one, 1000));
  for (const child of one) child.kill('SIGTERM');
  await Promise.all(one.map((child) => new Promise((resolve) => (child.exitCode !== null ? resolve() : child.on('close', resolve)))));
  const addresses = Array.from({ length: MANY }, (_, i) => `10.197.0.${11 + i}`);
  const many = await startListeners(addresses);
  rows.push(await measure(`${MANY} listeners`, many, 2000));
  console.log(`\n## Discovery (lanchat discover in another network namespace; median of ${RUNS}, from spawn to the last line)\n`);
  console.log('| case | median | best | goal | |');
  console.log('| --- | --- | --- | --- | --- |');
  for (const row of rows) console.log(row);
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(`bench: ${error.message}`);
    process.exit(1);
  },
);
