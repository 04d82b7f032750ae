// --log and /save against another local user and a full disk, end to end.
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, chownSync, closeSync, lstatSync, mkdtempSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CLI, countingPort, fileInput, killAll, lanchat, listener, rawPeer, spawnProc, type Proc } from './cli-helpers.js';

const mounts: string[] = [];

afterEach(() => {
  killAll();
  for (const dir of mounts.splice(0)) execFileSync('umount', ['-l', dir]);
});

const tmp = (): string => mkdtempSync(join(tmpdir(), 'lanchat-log-'));

/** A 64 KiB tmpfs: a disk that fills. Null (and the test is skipped) where mount is not permitted. */
function smallDisk(): string | null {
  const dir = tmp();
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir], { stdio: 'ignore' });
  } catch {
    return null;
  }
  mounts.push(dir);
  return dir;
}

/** The process's exit, or a failure naming what it was doing: no test waits forever. */
async function exitWithin(proc: Proc, ms: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`still running after ${ms} ms; stderr:\n${proc.stderr()}`)), ms);
  });
  try {
    return await Promise.race([proc.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

const lines = (n: number, width = 40): string => Array.from({ length: n }, (_, i) => `line ${i} ${'x'.repeat(width)}\n`).join('');

describe('--log is opened up front and only appends to a file of ours', () => {
  it.each([
    [
      'a symbolic link (to a file of ours)',
      (path: string) => symlinkSync(writeTarget(path), path),
      'it is a symbolic link (lanchat does not follow one for --log)',
    ],
    [
      'a file of another user',
      (path: string) => {
        writeFileSync(path, 'theirs\n', { mode: 0o644 });
        chownSync(path, 12345, 12345);
      },
      'it belongs to another user (uid 12345)',
    ],
    [
      'a file others can write (0666)',
      (path: string) => {
        writeFileSync(path, 'shared\n');
        chmodSync(path, 0o666);
      },
      `others can write it (mode 0666; chmod go-w PATH fixes that)`,
    ],
    ['a FIFO (its open must not block)', (path: string) => execFileSync('mkfifo', [path]), 'it is not a regular file'],
  ])('refuses %s: one line, exit 1, no session', async (_, plant, why) => {
    const path = join(tmp(), 'chat.log');
    plant(path);
    const before = lstatSync(path);
    const listen = lanchat(['listen', '0', '--host', '127.0.0.1', '--log', path]);
    expect((await exitWithin(listen, 10_000)).code).toBe(1);
    expect(listen.stderr()).toBe(`lanchat: cannot log to ${path}: ${why.replace('PATH', path)}\n`);
    expect(lstatSync(path)).toMatchObject({ size: before.size, mode: before.mode, uid: before.uid });
    if (before.isSymbolicLink()) expect(readFileSync(path, 'utf8')).toBe('ours\n');
  });

  it('refuses before dialling: the listener never sees a connection', async () => {
    const dir = tmp();
    const path = join(dir, 'chat.log');
    writeFileSync(path, '');
    chmodSync(path, 0o666);
    const server = await countingPort();
    try {
      const connect = lanchat(['connect', '127.0.0.1', String(server.port), '--raw', '--log', path], { stdin: 'ignore' });
      expect((await exitWithin(connect, 10_000)).code).toBe(1);
      expect(connect.stderr()).toMatch(/^lanchat: cannot log to .*chat\.log: others can write it/);
      expect(server.dialled()).toBe(0);
    } finally {
      await server.close();
    }
  });

  it('creates a new log 0600 even under umask 000', async () => {
    const path = join(tmp(), 'new.log');
    const listen = spawnProc('sh', ['-c', `umask 000; exec "${process.execPath}" "${CLI}" listen 0 --host 127.0.0.1 --log "${path}"`]);
    const [, port] = await listen.waitForStderr(/^listening on 127\.0\.0\.1:(\d+)$/m);
    const fd = fileInput('hi\n');
    const connect = lanchat(['connect', '127.0.0.1', port], { stdin: fd });
    closeSync(fd);
    expect((await exitWithin(connect, 10_000)).code).toBe(0);
    expect((await exitWithin(listen, 10_000)).code).toBe(0);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(readFileSync(path, 'utf8')).toMatch(/\] \w+: hi\n/);
  });
});

/** A symlink's target: a file of the test's own, next to the link. */
function writeTarget(link: string): string {
  const target = `${link}.target`;
  writeFileSync(target, 'ours\n');
  return target;
}

describe('a log or a spool that fills', () => {
  it('a log that stops short (a full disk) is exit 1, with one line saying how far it got', async (ctx) => {
    const disk = smallDisk();
    if (!disk) return ctx.skip('mount is not permitted here (needs root): no small disk to fill');
    const path = join(disk, 'chat.log');
    const listen = await listener(['--log', path]);
    const fd = fileInput(lines(2000));
    const connect = lanchat(['connect', '127.0.0.1', String(listen.port)], { stdin: fd });
    closeSync(fd);
    expect((await exitWithin(connect, 20_000)).code).toBe(0);
    expect((await exitWithin(listen, 20_000)).code).toBe(1);
    expect(listen.stdout().toString()).toBe(lines(2000)); // the session went on
    const [line, count] = listen.stderr().match(/^lanchat: the log (?:.+) stopped after (\d+) lines: no space left on device$/m) ?? [];
    expect(line).toBeDefined();
    expect(listen.stderr().match(/the log/g)).toHaveLength(1);
    const written = readFileSync(path, 'utf8');
    expect(written.split('\n').length - 1).toBe(Number(count)); // the whole lines in the file, not one more
    expect(Number(count)).toBeGreaterThan(100);
    expect(Number(count)).toBeLessThan(2000);
  });

  it('/save after the spool filled counts the whole lines it wrote, and says it is incomplete', async (ctx) => {
    const disk = smallDisk();
    if (!disk) return ctx.skip('mount is not permitted here (needs root): no small disk to fill');
    const saved = join(tmp(), 'saved.txt');
    const listen = await listener(['--commands', '--nick', 'bob'], { env: { TMPDIR: disk } });
    const fd = fileInput(lines(2000));
    const connect = lanchat(['connect', '127.0.0.1', String(listen.port), '--nick', 'alice'], { stdin: fd });
    closeSync(fd);
    await listen.waitForStdout(lines(2000).length, 20_000);
    await listen.waitForStderr(/^lanchat: cannot keep the conversation for \/save: .*no space left on device/m);
    listen.child.stdin!.end(`/save ${saved}\n`);
    const [line, count] = await listen.waitForStderr(/^saved (\d+) lines to .*saved\.txt.*$/m, 10_000);
    const text = readFileSync(saved, 'utf8');
    expect(text.endsWith('\n')).toBe(true);
    expect(text.split('\n').length - 1).toBe(Number(count)); // no torn line, and each one counted
    expect(line).toMatch(/; the conversation is incomplete: what came after could not be kept$/);
    expect(listen.stderr().match(/cannot keep the conversation/g)).toHaveLength(1);
    expect(
      text
        .split('\n')
        .slice(0, -1)
        .every((line) => /^\[[^\]]+\] (-- connected to alice .*|alice: line \d+ x+)$/.test(line)),
    ).toBe(true);
    expect((await exitWithin(connect, 20_000)).code).toBe(0);
    await exitWithin(listen, 20_000);
  });
});

describe('a second signal', () => {
  it('ends the process at once, even with a log write stuck in the thread pool', async () => {
    // A hung disk, simulated: on SIGUSR2 the one thread of the pool opens a FIFO nobody opens
    // for writing, so every file operation after it (the log's writes) waits forever.
    const dir = tmp();
    const fifo = join(dir, 'stuck');
    execFileSync('mkfifo', [fifo]);
    const preload = join(dir, 'stuck.mjs');
    writeFileSync(preload, `import { open } from 'node:fs';\nprocess.on('SIGUSR2', () => open(${JSON.stringify(fifo)}, 'r', () => {}));\n`);
    const listen = spawnProc(
      process.execPath,
      ['--import', preload, CLI, 'listen', '0', '--host', '127.0.0.1', '--log', join(dir, 'chat.log')],
      {
        env: { UV_THREADPOOL_SIZE: '1' },
      },
    );
    const [, port] = await listen.waitForStderr(/^listening on 127\.0\.0\.1:(\d+)$/m);
    const peer = await rawPeer(Number(port));
    peer.write('first\n');
    await listen.waitForStdout('first\n'.length);
    listen.child.kill('SIGUSR2');
    peer.write('second\n');
    await listen.waitForStdout('first\nsecond\n'.length);
    const peerClosed = once(peer, 'close');
    listen.child.kill('SIGTERM'); // the session ends (the peer sees it close); closing waits for the log
    await Promise.race([peerClosed, exitWithin(listen, 10_000)]);
    listen.child.kill('SIGTERM');
    expect(await exitWithin(listen, 5000)).toMatchObject({ signal: 'SIGTERM' });
    peer.destroy();
  });
});
