// connect --secure: mutual TLS 1.3, keys pinned on first use.
import { closeSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { awkwardText, fileInput, freePort, killAll, lanchat, listener } from './cli-helpers.js';

afterEach(killAll);

const home = (): string => mkdtempSync(join(tmpdir(), 'lanchat-tls-'));


describe('connect --secure', () => {
  it('carries text byte-identical over TLS, says so on both sides, and pins the listener key', async () => {
    const [aliceHome, bobHome] = [home(), home()];
    const listen = await listener(['--nick', 'bob'], { env: { LANCHAT_HOME: bobHome } });
    const input = awkwardText(3000);
    const fd = fileInput(input);
    const connect = lanchat(['connect', '127.0.0.1', String(listen.port), '--secure', '--nick', 'alice', '--commands'], {
      env: { LANCHAT_HOME: aliceHome },
      stdin: fd,
    });
    closeSync(fd);
    expect((await connect.exited).code).toBe(0);
    expect((await listen.exited).code).toBe(0);
    expect(listen.stdout().equals(input)).toBe(true);
    const bobKey = lanchat(['id'], { env: { LANCHAT_HOME: bobHome }, stdin: 'ignore' });
    await bobKey.exited;
    const bobFingerprint = bobKey.stdout().toString().split('\n')[0]!;
    expect(connect.stderr()).toContain(`new peer key for 127.0.0.1:${listen.port}: ${bobFingerprint} (pinned`);
    expect(connect.stderr()).toContain(`encrypted (TLS 1.3); peer key ${bobFingerprint}`);
    expect(listen.stderr()).toMatch(/^encrypted \(TLS 1\.3\); peer key [0-9A-F:]{95}$/m);
    expect(JSON.parse(readFileSync(join(aliceHome, 'known-peers.json'), 'utf8')).peers[`127.0.0.1:${listen.port}`]).toBe(bobFingerprint);
  });

  it('refuses a different key at a pinned address (a man in the middle) before sending anything; forget lets the new key in', async () => {
    const aliceHome = home();
    const port = await freePort();
    const first = lanchat(['listen', String(port), '--host', '127.0.0.1'], { env: { LANCHAT_HOME: home() } });
    await first.waitForStderr(/listening on/);
    const pinning = lanchat(['connect', '127.0.0.1', String(port), '--secure'], { env: { LANCHAT_HOME: aliceHome }, stdin: fileInput('hello\n') });
    expect((await pinning.exited).code).toBe(0);
    await first.exited;

    const impostor = lanchat(['listen', String(port), '--host', '127.0.0.1'], { env: { LANCHAT_HOME: home() } });
    await impostor.waitForStderr(/listening on/);
    const refused = lanchat(['connect', '127.0.0.1', String(port), '--secure'], { env: { LANCHAT_HOME: aliceHome }, stdin: fileInput('secret\n') });
    expect((await refused.exited).code).toBe(1);
    expect(refused.stderr()).toMatch(/^lanchat: WARNING: 127\.0\.0\.1:\d+ presented a different key than before/m);
    expect(refused.stderr()).toMatch(/^ {2}expected {2}[0-9A-F:]{95}\n {2}presented [0-9A-F:]{95}$/m);
    expect(refused.stderr()).toContain(`lanchat forget 127.0.0.1:${port}`);
    await impostor.exited;
    expect(impostor.stdout().toString()).toBe(''); // nothing was exchanged

    const forget = lanchat(['forget', `127.0.0.1:${port}`], { env: { LANCHAT_HOME: aliceHome }, stdin: 'ignore' });
    expect((await forget.exited).code).toBe(0);
    const again = lanchat(['listen', String(port), '--host', '127.0.0.1'], { env: { LANCHAT_HOME: home() } });
    await again.waitForStderr(/listening on/);
    const repinned = lanchat(['connect', '127.0.0.1', String(port), '--secure'], { env: { LANCHAT_HOME: aliceHome }, stdin: fileInput('after forget\n') });
    expect((await repinned.exited).code).toBe(0);
    expect(repinned.stderr()).toMatch(/new peer key for/);
    expect((await again.exited).code).toBe(0);
    expect(again.stdout().toString()).toBe('after forget\n');
  });

  it('--fingerprint demands an exact key: the right one connects, a wrong one is refused before anything is sent', async () => {
    const bobHome = home();
    const id = lanchat(['id'], { env: { LANCHAT_HOME: bobHome }, stdin: 'ignore' });
    await id.exited;
    const bobFingerprint = id.stdout().toString().split('\n')[0]!;

    const right = await listener([], { env: { LANCHAT_HOME: bobHome } });
    const ok = lanchat(['connect', '127.0.0.1', String(right.port), '--fingerprint', bobFingerprint.toLowerCase()], { env: { LANCHAT_HOME: home() }, stdin: fileInput('checked\n') });
    expect((await ok.exited).code).toBe(0);
    expect((await right.exited).code).toBe(0);
    expect(right.stdout().toString()).toBe('checked\n');

    const wrong = await listener([], { env: { LANCHAT_HOME: home() } });
    const refused = lanchat(['connect', '127.0.0.1', String(wrong.port), '--fingerprint', bobFingerprint], { env: { LANCHAT_HOME: home() }, stdin: fileInput('secret\n') });
    expect((await refused.exited).code).toBe(1);
    expect(refused.stderr()).toMatch(/^lanchat: 127\.0\.0\.1:\d+ presented [0-9A-F:]{95}, not the key given with --fingerprint; nothing was sent$/m);
    await wrong.exited;
    expect(wrong.stdout().toString()).toBe('');

    const bad = lanchat(['connect', '127.0.0.1', '5000', '--fingerprint', 'AB:CD'], { stdin: 'ignore' });
    expect((await bad.exited).code).toBe(2);
  });

  it('a plaintext session says it is not encrypted, and /who tells', async () => {
    const listen = await listener();
    const connect = lanchat(['connect', '127.0.0.1', String(listen.port), '--commands'], { stdin: fileInput('/who\n') });
    expect((await connect.exited).code).toBe(0);
    await listen.exited;
    expect(connect.stderr()).toMatch(/^messages: \d+ sent, \d+ received\nnot encrypted$/m); // the /who block
    expect(listen.stderr()).toMatch(/^not encrypted$/m);
  });
});
