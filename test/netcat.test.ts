// Netcat habits, with the real OpenBSD nc: `connect --raw` passes any bytes
// through unchanged, both ways, and a plain peer's text that is not UTF-8 (a
// Latin-1 terminal) is shown escaped in pretty output and passed on as its
// exact bytes in plain output.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, openSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { fileInput, freePort, killAll, lanchat, listener, spawnProc } from './cli-helpers.js';

afterEach(killAll);

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');
const MB = 1024 * 1024;

describe('connect --raw with nc -l: bytes, not only text', () => {
  it('50 MB of random bytes each way (NULs, no final newline) arrive byte-identical by SHA-256, and both exit 0', async () => {
    const toNc = Buffer.concat([randomBytes(50 * MB), Buffer.from('\x00\x00 no newline at the end \xff', 'latin1')]);
    const toLanchat = Buffer.concat([randomBytes(50 * MB), Buffer.from('\x00the end, unfinished \xe9', 'latin1')]);
    const port = await freePort();
    const ncFile = join(mkdtempSync(join(tmpdir(), 'lanchat-test-')), 'nc.out');
    const nc = spawnProc('nc', ['-l', '127.0.0.1', String(port)], { stdin: fileInput(toLanchat), stdout: openSync(ncFile, 'w') });
    const connect = lanchat(['connect', '--raw', '--retry', '5', '127.0.0.1', String(port)]);
    connect.child.stdin!.write(toNc);
    // nc -l leaves once our half-close reaches it: end our input only once all of its own has arrived.
    await connect.waitForStdout(toLanchat.length, 60_000);
    connect.child.stdin!.end();
    expect(await connect.exited).toEqual({ code: 0, signal: null });
    expect((await nc.exited).code).toBe(0);
    expect(sha256(connect.stdout())).toBe(sha256(toLanchat));
    expect(sha256(readFileSync(ncFile))).toBe(sha256(toNc));
    expect(connect.stderr()).not.toMatch(/not UTF-8|longer than|not sent/);
  }, 90_000);

  it('at a pretty output, what nc -l sends is shown by lines, escaped, the unfinished end as a line too', async () => {
    const port = await freePort();
    const sent = Buffer.from('caf\xe9\n\x00bin\xff\nunfinished \xe9', 'latin1');
    const nc = spawnProc('nc', ['-l', '127.0.0.1', String(port)], { stdin: fileInput(sent) });
    const connect = lanchat(['connect', '--raw', '--retry', '5', '--format', 'pretty', '127.0.0.1', String(port)]);
    // The two whole lines are shown as they come; the unfinished end once nc -l leaves (after our half-close).
    const prefix = `[00:00] 127.0.0.1:${port}: `;
    await connect.waitForStdout(`${prefix}caf\\xe9\n${prefix}\\x00bin\\xff\n`.length, 10_000);
    connect.child.stdin!.end();
    expect(await connect.exited).toEqual({ code: 0, signal: null });
    await nc.exited;
    const who = `127\\.0\\.0\\.1:${port}`;
    expect(connect.stdout().toString()).toMatch(
      new RegExp(
        `^\\[\\d\\d:\\d\\d\\] ${who}: caf\\\\xe9\n\\[\\d\\d:\\d\\d\\] ${who}: \\\\x00bin\\\\xff\n\\[\\d\\d:\\d\\d\\] ${who}: unfinished \\\\xe9\n$`,
      ),
    );
  });
});

describe('a Latin-1 netcat peer at lanchat listen', () => {
  const latin1 = Buffer.from('caf\xe9\nna\xefve \x00\xff\n', 'latin1');

  it('plain output passes its bytes on exactly', async () => {
    const listen = await listener([], { stdin: 'ignore' });
    const nc = spawnProc('nc', ['-N', '127.0.0.1', String(listen.port)], { stdin: fileInput(latin1) });
    expect((await listen.exited).code).toBe(0);
    await nc.exited;
    expect(listen.stdout().equals(latin1)).toBe(true);
    expect(listen.stderr()).not.toMatch(/dropped|UTF-8/);
  });

  it('pretty output shows it escaped: readable, and inert', async () => {
    const listen = await listener(['--format', 'pretty'], { stdin: 'ignore' });
    const nc = spawnProc('nc', ['-N', '127.0.0.1', String(listen.port)], { stdin: fileInput(latin1) });
    expect((await listen.exited).code).toBe(0);
    await nc.exited;
    expect(listen.stdout().toString()).toMatch(
      /^\[\d\d:\d\d\] 127\.0\.0\.1:\d+: caf\\xe9\n\[\d\d:\d\d\] 127\.0\.0\.1:\d+: na\\xefve \\x00\\xff\n$/,
    );
  });

  it('json gives each line as text and, where it is not UTF-8, its exact bytes in base64', async () => {
    const listen = await listener(['--format', 'json'], { stdin: 'ignore' });
    const nc = spawnProc('nc', ['-N', '127.0.0.1', String(listen.port)], { stdin: fileInput(latin1) });
    expect((await listen.exited).code).toBe(0);
    await nc.exited;
    const messages = listen
      .stdout()
      .toString()
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as { type: string; text: string; base64?: string })
      .filter((event) => event.type === 'message');
    expect(messages.map(({ text, base64 }) => ({ text, base64 }))).toEqual([
      { text: 'caf\ufffd', base64: Buffer.from('caf\xe9', 'latin1').toString('base64') },
      { text: 'na\ufffdve \x00\ufffd', base64: Buffer.from('na\xefve \x00\xff', 'latin1').toString('base64') },
    ]);
  });
});
