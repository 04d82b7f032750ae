// `lanchat contacts …`, `chat`, `config nick` and /contact, spawned with a temporary LANCHAT_HOME.
import { closeSync, mkdtempSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { killAll, lanchat, listener, type Proc } from './cli-helpers.js';

afterEach(killAll);

function home(): { env: { LANCHAT_HOME: string }; file: string } {
  const dir = mkdtempSync(join(tmpdir(), 'lanchat-home-'));
  return { env: { LANCHAT_HOME: dir }, file: join(dir, 'contacts.json') };
}

async function finish(proc: Proc): Promise<{ code: number | null; out: string; err: string }> {
  const { code } = await proc.exited;
  return { code, out: proc.stdout().toString(), err: proc.stderr() };
}

function run(args: string[], env: Record<string, string>): Promise<{ code: number | null; out: string; err: string }> {
  return finish(lanchat(args, { env, stdin: 'ignore' }));
}

describe('lanchat contacts', () => {
  it('add, list, show, rename, remove, path', async () => {
    const { env, file } = home();
    expect(await run(['contacts', 'list'], env)).toEqual({
      code: 0,
      out: '',
      err: 'no contacts yet (add one: lanchat contacts add NAME HOST PORT)\n',
    });
    expect(await run(['contacts', 'add', 'bob', '10.0.0.4', '5000'], env)).toEqual({
      code: 0,
      out: '',
      err: 'added bob (10.0.0.4:5000)\n',
    });
    expect(await run(['contacts', 'add', 'Zoë', '[::1]:6000'], env)).toEqual({ code: 0, out: '', err: 'added Zoë ([::1]:6000)\n' }); // HOST:PORT, as connect takes it
    expect(await run(['contacts', 'add', 'eve', '10.0.0.5:70000'], env)).toMatchObject({
      code: 2,
      err: expect.stringMatching(/^lanchat: invalid port '70000' in "10\.0\.0\.5:70000": a port is a whole number from 1 to 65535\n/),
    });
    expect(await run(['contacts', 'add', 'BOB', '10.0.0.5', '5000'], env)).toEqual({
      code: 1,
      out: '',
      err: 'lanchat: a contact named "bob" exists already (use --force to replace it)\n',
    });
    expect(await run(['contacts', 'list'], env)).toMatchObject({ code: 0, out: 'bob\t10.0.0.4\t5000\nZoë\t::1\t6000\n' });
    expect(JSON.parse((await run(['contacts', 'list', '--json'], env)).out)).toEqual([
      { name: 'bob', host: '10.0.0.4', port: 5000 },
      { name: 'Zoë', host: '::1', port: 6000 },
    ]);
    expect(await run(['contacts', 'show', 'ZOË'], env)).toMatchObject({
      code: 0,
      out: 'name: Zoë\nhost: ::1\nport: 6000\nkey:  none pinned yet (the first secure chat pins it)\n',
    });
    const key = 'ab'.repeat(32);
    expect(await run(['contacts', 'add', 'carol', '10.0.0.6', '5000', '--fingerprint', key], env)).toMatchObject({ code: 0 });
    expect((await run(['contacts', 'show', 'carol'], env)).out).toMatch(/^key: {2}AB:AB:(AB:){29}AB\n/m);
    expect(await run(['contacts', 'add', 'dave', '10.0.0.7', '5000', '--fingerprint', 'AB:CD'], env)).toMatchObject({
      code: 2,
      err: expect.stringMatching(/^lanchat: invalid --fingerprint 'AB:CD'/),
    });
    // --force keeps the pin: at the same address, and at another (the key is the person's, not the address's)
    expect(await run(['contacts', 'add', 'carol', '10.0.0.6', '5000', '--force'], env)).toMatchObject({
      err: 'replaced carol (10.0.0.6:5000)\n',
    });
    expect((await run(['contacts', 'show', 'carol'], env)).out).toMatch(/^key: {2}AB:AB/m);
    expect(await run(['contacts', 'add', 'carol', '10.0.0.9', '5000', '--force'], env)).toMatchObject({
      err: 'replaced carol (10.0.0.9:5000); kept its key (if carol has a new key too: lanchat forget carol)\n',
    });
    expect((await run(['contacts', 'show', 'carol'], env)).out).toMatch(/^host: 10\.0\.0\.9\n.*\nkey: {2}AB:AB/ms);
    expect(await run(['contacts', 'remove', 'carol'], env)).toMatchObject({ code: 0 });
    expect(await run(['contacts', 'rename', 'bob', 'robert'], env)).toEqual({ code: 0, out: '', err: 'renamed bob to robert\n' });
    expect(await run(['contacts', 'remove', 'robrt'], env)).toEqual({
      code: 1,
      out: '',
      err: 'lanchat: no contact named "robrt"; did you mean "robert"?\n',
    });
    expect(await run(['contacts', 'remove', 'robert'], env)).toMatchObject({ code: 0, err: 'removed robert\n' });
    expect(await run(['contacts', 'path'], env)).toEqual({ code: 0, out: `${file}\n`, err: '' });
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ version: 1, contacts: [{ name: 'Zoë', host: '::1', port: 6000 }] });
  });

  it.each([
    [['contacts', 'add', 'two words', 'h', '1'], /^lanchat: invalid contact name/],
    [['contacts', 'add', 'bob', 'bad host', '1'], /^lanchat: invalid host/],
    [['contacts', 'add', 'bob', 'h', '70000'], /^lanchat: invalid port/],
    [['contacts', 'add', 'bob', 'h'], /^lanchat: missing argument 'port'/],
    [['contacts', 'add'], /^lanchat: missing argument 'name'/],
  ])('%j is a usage error without a terminal: one line, a hint, exit 2', async (args, message) => {
    const { env, file } = home();
    const result = await run(args, env);
    expect(result.code).toBe(2);
    expect(result.err).toMatch(message);
    expect(result.err.split('\n')).toHaveLength(3); // the line, the hint, and the final newline
    expect(() => readFileSync(file)).toThrow();
  });

  it('contacts edit changes the host or port and keeps the key; without either it is a usage error', async () => {
    const { env, file } = home();
    const key = 'AB:'.repeat(31) + 'AB';
    await run(['contacts', 'add', 'carol', '10.0.0.6', '5000', '--fingerprint', key], env);
    expect(await run(['contacts', 'edit', 'Carol', '--host', '10.0.0.9'], env)).toEqual({
      code: 0,
      out: '',
      err: 'carol is now at 10.0.0.9:5000; kept its key (if carol has a new key too: lanchat forget carol)\n',
    });
    expect(await run(['contacts', 'edit', 'carol', '--port', '6000', '--host', 'fe80::1'], env)).toMatchObject({
      code: 0,
      err: expect.stringMatching(/^carol is now at \[fe80::1\]:6000;/),
    });
    expect(JSON.parse(readFileSync(file, 'utf8')).contacts).toEqual([{ name: 'carol', host: 'fe80::1', port: 6000, fingerprint: key }]);
    for (const [args, code, message] of [
      [['carol'], 2, /^lanchat: give --host, --port or both/],
      [['carol', '--port', '70000'], 2, /^lanchat: invalid --port '70000'/],
      [['carol', '--host', 'bad host!'], 2, /^lanchat: invalid host "bad host!"/],
      [['carl', '--port', '1'], 1, /^lanchat: no contact named "carl"; did you mean "carol"\?/],
    ] as const) {
      const result = await run(['contacts', 'edit', ...args], env);
      expect([result.code, result.err]).toEqual([code, expect.stringMatching(message)]);
    }
    expect(JSON.parse(readFileSync(file, 'utf8')).contacts).toEqual([{ name: 'carol', host: 'fe80::1', port: 6000, fingerprint: key }]);
  });

  it('20 concurrent adds leave 20 contacts', async () => {
    const { env } = home();
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => run(['contacts', 'add', `peer${i}`, `10.0.0.${i + 1}`, '5000'], env)),
    );
    expect(results.map((r) => r.code)).toEqual(Array(20).fill(0));
    expect((await run(['contacts', 'list'], env)).out.trimEnd().split('\n')).toHaveLength(20);
  }, 60_000);

  it('a corrupt file is an error naming it, exit 1, and is never overwritten', async () => {
    const { env, file } = home();
    writeFileSync(file, '{"version":1,"contacts":[');
    for (const args of [
      ['contacts', 'list'],
      ['contacts', 'add', 'bob', 'h', '1'],
      ['contacts', 'remove', 'bob'],
      ['chat', 'bob'],
    ]) {
      const result = await run(args, env);
      expect(result.code).toBe(1);
      expect(result.err).toMatch(new RegExp(`^lanchat: ${file.replace(/[.]/g, '\\.')}: not valid JSON .*will not overwrite it\\)\\n$`));
    }
    expect(readFileSync(file, 'utf8')).toBe('{"version":1,"contacts":[');
  });
});

describe('lanchat chat <contact>', () => {
  it('reaches the contact (a lanchat listen 0)', async () => {
    const { env } = home();
    const listen = await listener(['--nick', 'bob'], { env });
    await run(['contacts', 'add', 'bob', '127.0.0.1', String(listen.port)], env);
    const dir = mkdtempSync(join(tmpdir(), 'lanchat-in-'));
    writeFileSync(join(dir, 'in.txt'), 'hello bob\n');
    const fd = openSync(join(dir, 'in.txt'), 'r');
    const chat = lanchat(['chat', 'BOB', '--nick', 'alice'], { env, stdin: fd });
    closeSync(fd);
    expect((await chat.exited).code).toBe(0);
    expect((await listen.exited).code).toBe(0);
    expect(listen.stdout().toString()).toBe('hello bob\n');
    expect(chat.stderr()).toMatch(/^connected to bob \(127\.0\.0\.1:\d+\)$/m);
  });

  it('an unknown name suggests the closest', async () => {
    const { env } = home();
    await run(['contacts', 'add', 'robert', '127.0.0.1', '5000'], env);
    expect(await run(['chat', 'rober'], env)).toEqual({
      code: 1,
      out: '',
      err: 'lanchat: no contact named "rober"; did you mean "robert"?\n',
    });
  });
});

describe('saving the peer from a session: /contact', () => {
  it('the connector saves what it dialled; the listener saves the peer address with the port given', async () => {
    const { env, file } = home();
    const listen = await listener(['--commands'], { env });
    const connect = lanchat(['connect', '127.0.0.1', String(listen.port), '--commands', '--nick', 'alice'], { env });
    await listen.waitForStderr(/connected to alice/);
    // A new key, and a listener that takes commands: it is told how to keep the peer, in words.
    await listen.waitForStderr(/^not a contact yet: \/contact NAME PORT keeps this peer \(PORT: the port they listen on\)$/m);
    listen.child.stdin!.write('/who\n/contact alice 7000\n/contact bad\n');
    await listen.waitForStderr(/usage: \/contact NAME PORT/);
    expect(listen.stderr()).toMatch(/^ {2}PORT: the one alice listens on \("lanchat listen PORT" on their side\); the port it$/m);
    // /who has the whole key, on a line of its own.
    expect(listen.stderr()).toMatch(/^encrypted \(TLS 1\.3\); peer key \(a key not known here\):\n {2}([0-9A-F]{2}:){31}[0-9A-F]{2}$/m);
    await listen.waitForStderr(/saved contact alice \(127\.0\.0\.1:7000\)/);
    connect.child.stdin!.end('/contact bobby\nbye\n');
    expect((await connect.exited).code).toBe(0);
    expect(connect.stderr()).toMatch(new RegExp(`saved contact bobby \\(127\\.0\\.0\\.1:${listen.port}\\)`));
    expect((await listen.exited).code).toBe(0);
    // Over TLS the peer's key is saved too (both sides share one identity here).
    const fingerprint = (await run(['id'], env)).out.split('\n')[0];
    expect(JSON.parse(readFileSync(file, 'utf8')).contacts).toEqual([
      { name: 'alice', host: '127.0.0.1', port: 7000, fingerprint },
      { name: 'bobby', host: '127.0.0.1', port: listen.port, fingerprint },
    ]);
  });
});

describe('nick defaults and the bare command', () => {
  it('lanchat config nick sets the default; --nick and LANCHAT_NICK come first', async () => {
    const { env } = home();
    expect(await run(['config', 'nick'], env)).toMatchObject({ code: 0, out: '' });
    expect(await run(['config', 'nick', 'saved-nick'], env)).toMatchObject({ code: 0, err: 'default nick is now saved-nick\n' });
    expect(await run(['config', 'nick'], env)).toMatchObject({ code: 0, out: 'saved-nick\n' });
    expect(await run(['config', 'nick', 'bad nick'], env)).toMatchObject({ code: 2 });
    for (const [extraEnv, args, expected] of [
      [{}, [], 'saved-nick'],
      [{ LANCHAT_NICK: 'from-env' }, [], 'from-env'],
      [{ LANCHAT_NICK: 'from-env' }, ['--nick', 'from-flag'], 'from-flag'],
    ] as const) {
      const listen = await listener([], { env });
      const connect = lanchat(['connect', '127.0.0.1', String(listen.port), ...args], { env: { ...env, ...extraEnv }, stdin: 'ignore' });
      await listen.waitForStderr(new RegExp(`connected to ${expected} `));
      listen.child.kill('SIGTERM');
      await Promise.all([listen.exited, connect.exited]);
    }
  }, 60_000); // ten processes one after another: slow on a loaded machine

  it('config nick --unset forgets the default nick', async () => {
    const { env } = home();
    expect(await run(['config', 'nick', '--unset'], env)).toMatchObject({ code: 0, err: 'no default nick was saved\n' });
    await run(['config', 'nick', 'saved-nick'], env);
    await run(['config', 'announce', 'on'], env);
    expect(await run(['config', 'nick', '--unset'], env)).toMatchObject({ code: 0, err: 'forgot the default nick saved-nick\n' });
    expect(await run(['config', 'nick'], env)).toMatchObject({ code: 0, out: '', err: expect.stringMatching(/^no default nick saved/) });
    expect(await run(['config', 'announce'], env)).toMatchObject({ code: 0, out: 'on\n' }); // the other settings stay
    expect(await run(['config', 'nick', 'x', '--unset'], env)).toMatchObject({
      code: 2,
      err: expect.stringMatching(/^lanchat: give a name or --unset, not both/),
    });
  });

  it('bare lanchat without a terminal prints help and exits 2', async () => {
    const result = await run([], home().env);
    expect(result.code).toBe(2);
    expect(result.err).toMatch(/^Usage: lanchat/);
  });
});
