// Files in a room end to end: a headless host (`listen --room`) and lanchat
// members as separate processes over 127.0.0.1, their input piped by the
// test (`/send NICK PATH`, `/accept DIR`). The file is compared by SHA-256;
// the host keeps nothing of it.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { killAll, lanchat, type Proc } from './cli-helpers.js';

afterEach(() => {
  killAll();
});

/** `listen 0 --room dev` on 127.0.0.1 with no input (a pure relay), in a directory of its own, and its port. */
async function roomHost(args: string[] = []): Promise<Proc & { port: number; cwd: string }> {
  const cwd = mkdtempSync(join(tmpdir(), 'lanchat-host-'));
  mkdirSync(join(cwd, 'in'));
  const proc = lanchat(['listen', '0', '--host', '127.0.0.1', '--room', 'dev', '--nick', 'host', ...args], {
    stdin: 'ignore',
    cwd,
    env: { LANCHAT_HOME: join(cwd, '.home') },
  });
  const match = await proc.waitForStderr(/^listening on 127\.0\.0\.1:(\d+) \(room dev\)$/m, 10_000);
  return Object.assign(proc, { port: Number(match[1]), cwd });
}

/** A lanchat member with its own home (its own key) and nick; its input is piped by the test, lines may be commands. */
function member(port: number, nick: string): Proc {
  const home = mkdtempSync(join(tmpdir(), `lanchat-${nick}-`));
  return lanchat(['connect', '127.0.0.1', String(port), '--commands'], { stdin: 'pipe', env: { LANCHAT_HOME: home, LANCHAT_NICK: nick } });
}

async function sha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

describe('files in a room over 127.0.0.1', () => {
  it('/send carol PATH at bob, /accept DIR at carol: 50 MB through the host, byte-identical; both exit 0', async () => {
    const host = await roomHost();
    const dir = mkdtempSync(join(tmpdir(), 'lanchat-roomfiles-'));
    const path = join(dir, 'big.bin');
    writeFileSync(path, randomBytes(50 * 1024 * 1024));
    const inbox = join(dir, 'in');
    mkdirSync(inbox);
    const carol = member(host.port, 'carol');
    await carol.waitForStderr(/^joined host's room "dev"/m, 10_000);
    const bob = member(host.port, 'bob');
    await bob.waitForStderr(/^joined host's room "dev" .* here: host, carol \(you are bob\)$/m, 10_000);

    bob.child.stdin!.write(`/send carol ${path}\n`);
    await carol.waitForStderr(/^bob offers big\.bin \(52 MB\) — \/accept \[DIR\] or \/decline$/m, 10_000);
    await bob.waitForStderr(/^offered big\.bin \(52 MB\) to carol$/m);
    carol.child.stdin!.write(`/accept ${inbox}\n`);
    await carol.waitForStderr(/^received big\.bin \(52 MB, sha256 verified\) in .*in$/m, 60_000);
    await bob.waitForStderr(/^carol received big\.bin \(52 MB, sha256 verified\) in /m, 10_000);
    expect(await sha256(join(inbox, 'big.bin'))).toBe(await sha256(path));
    expect(readdirSync(host.cwd, { recursive: true }).filter((name) => !String(name).startsWith('.home'))).toEqual(['in']); // nothing kept at the host

    bob.child.stdin!.end();
    carol.child.stdin!.end();
    expect((await bob.exited).code).toBe(0);
    expect((await carol.exited).code).toBe(0);
  }, 120_000);

  it('lanchat send into a room goes to its host: listen --room --accept-files DIR keeps it', async () => {
    const host = await roomHost(['--accept-files', 'in']);
    const dir = mkdtempSync(join(tmpdir(), 'lanchat-roomsend-'));
    const path = join(dir, 'notes.txt');
    writeFileSync(path, 'for the host\n');
    const sender = lanchat(['send', path, '--to', `127.0.0.1:${host.port}`], { env: { LANCHAT_HOME: join(dir, '.home') } });
    expect((await sender.exited).code).toBe(0);
    expect(sender.stderr()).toMatch(/^host received notes\.txt \(13 B, sha256 verified\)/m);
    await host.waitForStderr(/^received notes\.txt \(13 B, sha256 verified\) in \.\/in$/m);
    expect(await sha256(join(host.cwd, 'in', 'notes.txt'))).toBe(await sha256(path));
  }, 60_000);

  it('an offer to a nick nobody in the room has is refused at once, and the member goes on (exit 0)', async () => {
    const host = await roomHost();
    const dir = mkdtempSync(join(tmpdir(), 'lanchat-roomfiles-'));
    const path = join(dir, 'notes.txt');
    writeFileSync(path, 'hi\n');
    const bob = member(host.port, 'bob');
    await bob.waitForStderr(/^joined host's room "dev"/m, 10_000);
    bob.child.stdin!.write(`/send zed ${path}\n`);
    await bob.waitForStderr(/^nobody called zed is in the room \(\/names lists who is\)$/m);
    bob.child.stdin!.end();
    expect((await bob.exited).code).toBe(0);
  }, 60_000);
});
