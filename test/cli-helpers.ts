// Spawns the built CLI (dist/cli.js) as a user would, with bounded waits that
// name what they were waiting for, and kills every child after each test.
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, openSync, writeFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url));

const children = new Set<ChildProcess>();

/**
 * Every spawned lanchat gets this LANCHAT_HOME unless a test gives its own: tests never touch ~/.config.
 * And LANCHAT_MDNS=off unless a test turns it on (inside network namespaces it made): no test sends
 * multicast DNS on the machine's own network.
 */
const DEFAULT_HOME = mkdtempSync(join(tmpdir(), 'lanchat-home-'));

export function killAll(): void {
  for (const child of children) child.kill('SIGKILL');
  children.clear();
}

export interface Proc {
  child: ChildProcess;
  stdout: () => Buffer;
  stderr: () => string;
  /** Resolves when the process has exited and its output is drained. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Waits until stderr matches `pattern`. */
  waitForStderr: (pattern: RegExp, ms?: number) => Promise<RegExpMatchArray>;
  /** Waits until stdout holds at least `bytes` bytes. */
  waitForStdout: (bytes: number, ms?: number) => Promise<void>;
}

export interface SpawnOptions {
  stdin?: 'pipe' | 'ignore' | number;
  /** A file descriptor: the output goes there (a file), and stdout() stays empty. */
  stdout?: 'pipe' | number;
  env?: Record<string, string | undefined>;
  cwd?: string;
}

/** Runs any command with its output captured. */
export function spawnProc(command: string, args: string[], options: SpawnOptions = {}): Proc {
  const stdio: StdioOptions = [options.stdin ?? 'pipe', options.stdout ?? 'pipe', 'pipe'];
  const child = spawn(command, args, {
    stdio,
    cwd: options.cwd,
    env: { ...process.env, LANCHAT_NICK: undefined, LANCHAT_HOME: DEFAULT_HOME, LANCHAT_MDNS: 'off', ...options.env },
  });
  children.add(child);
  const out: Buffer[] = [];
  let err = '';
  child.stdout?.on('data', (chunk: Buffer) => out.push(chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
  const exited = once(child, 'close').then(([code, signal]) => {
    children.delete(child);
    return { code: code as number | null, signal: signal as NodeJS.Signals | null };
  });
  const waitUntil = async (what: string, ready: () => boolean, ms: number): Promise<void> => {
    const deadline = Date.now() + ms;
    while (!ready()) {
      if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}; stderr so far:\n${err}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  };
  return {
    child,
    stdout: () => Buffer.concat(out),
    stderr: () => err,
    exited,
    waitForStderr: async (pattern, ms = 5000) => {
      await waitUntil(`stderr to match ${pattern}`, () => pattern.test(err), ms);
      return err.match(pattern)!;
    },
    waitForStdout: (bytes, ms = 5000) => waitUntil(`${bytes} bytes on stdout`, () => out.reduce((n, c) => n + c.length, 0) >= bytes, ms),
  };
}

/** The CLI run as installed: the file itself, whose first line names node and its flags. */
export function lanchat(args: string[], options: SpawnOptions = {}): Proc {
  return spawnProc(CLI, args, options);
}

/** `lanchat listen 0 --host 127.0.0.1 …` and the port it reports. */
export async function listener(args: string[] = [], options: SpawnOptions = {}): Promise<Proc & { port: number }> {
  const proc = lanchat(['listen', '0', '--host', '127.0.0.1', ...args], options);
  const match = await proc.waitForStderr(/^listening on 127\.0\.0\.1:(\d+)$/m);
  return Object.assign(proc, { port: Number(match[1]) });
}

/** A port that was free a moment ago (for peers that cannot listen on 0 and report it). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Text with the awkward cases: empty, CRLF, long and non-ASCII lines. */
export function awkwardText(lines: number): Buffer {
  const parts: string[] = [];
  for (let i = 0; i < lines; i++) {
    switch (i % 7) {
      case 0:
        parts.push('');
        break;
      case 1:
        parts.push(`crlf line ${i}\r`);
        break;
      case 2:
        parts.push(`héllo wörld ✓ 日本語 😀 ${i}`);
        break;
      case 3:
        // Long lines, each its own: one joined from its pieces must not carry another's bytes.
        parts.push(i % 700 === 3 ? `${i} `.padEnd(i % 1400 === 3 ? 60_000 : 20_000, String.fromCharCode(65 + (i % 26))) : `line ${i}`);
        break;
      case 4:
        parts.push(`\ttabbed ${i} {"type":"bye"}`);
        break;
      default:
        parts.push(`plain line number ${i} ${'x'.repeat(i % 90)}`);
    }
  }
  return Buffer.from(`${parts.join('\n')}\n`);
}

/** A file opened for reading, to hand to a child as its stdin. */
export function fileInput(data: Buffer | string): number {
  const path = join(mkdtempSync(join(tmpdir(), 'lanchat-input-')), 'in.txt');
  writeFileSync(path, data);
  return openSync(path, 'r');
}

/** A bare TCP client of 127.0.0.1:port that reads and drops what it gets (so that a close reaches it). */
export async function rawPeer(port: number): Promise<Socket> {
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => {});
  socket.resume();
  await once(socket, 'connect');
  return socket;
}

/** A TCP port that counts who dials it (nobody should). */
export async function countingPort(): Promise<{ port: number; dialled: () => number; close: () => Promise<void> }> {
  let count = 0;
  const server = createServer((socket) => {
    count++;
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    dialled: () => count,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
