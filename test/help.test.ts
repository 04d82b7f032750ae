// Help as a new user meets it (issue 17): unknown commands, hints, examples,
// shell completion, and the README's examples against real output.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CLI, killAll, lanchat, spawnProc } from './cli-helpers.js';

afterEach(killAll);

async function run(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  const proc = lanchat(args, { stdin: 'ignore' });
  const { code } = await proc.exited;
  return { code, out: proc.stdout().toString(), err: proc.stderr() };
}

describe('unknown commands', () => {
  it.each([
    [['conect'], "lanchat: unknown command 'conect'\n(Did you mean connect?)\n(see lanchat --help)\n"],
    [['contact', 'list'], "lanchat: unknown command 'contact'\n(Did you mean contacts or connect?)\n(see lanchat --help)\n"],
    [['nosuchcommand', '--help'], "lanchat: unknown command 'nosuchcommand'\n(see lanchat --help)\n"],
    [['conect', '-h'], "lanchat: unknown command 'conect'\n(Did you mean connect?)\n(see lanchat --help)\n"],
    [['contacts', 'lst', '--help'], "lanchat: unknown command 'lst'\n(Did you mean list?)\n(see lanchat contacts --help)\n"],
    [['config', 'nik'], "lanchat: unknown command 'nik'\n(Did you mean nick?)\n(see lanchat config --help)\n"],
    [['help', 'conect'], "lanchat: unknown command 'conect'\n(Did you mean connect?)\n(see lanchat --help)\n"],
  ])('%j is a usage error (exit 2) with a suggestion, --help or not', async (args, err) => {
    expect(await run(args)).toEqual({ code: 2, out: '', err });
  });

  it('a usage error points to the help of its own command', async () => {
    expect(await run(['connect', '127.0.0.1', '0'])).toMatchObject({
      code: 2,
      err: expect.stringMatching(/\n\(see lanchat connect --help\)\n$/),
    });
    expect(await run(['contacts', 'add', 'bad!name', '10.0.0.1', '5000'])).toMatchObject({
      code: 2,
      err: expect.stringMatching(/\n\(see lanchat contacts add --help\)\n$/),
    });
  });

  it('a known command with --help still prints its help, exit 0', async () => {
    expect(await run(['contacts', 'list', '--help'])).toMatchObject({
      code: 0,
      out: expect.stringMatching(/^Usage: lanchat contacts list/),
    });
    expect(await run(['help', 'connect'])).toMatchObject({ code: 0, out: expect.stringMatching(/^Usage: lanchat connect/) });
  });
});

describe('--help examples', () => {
  it.each([
    ['forget'],
    ['id'],
    ['config'],
    ['config', 'nick'],
    ['contacts', 'add'],
    ['contacts', 'list'],
    ['contacts', 'show'],
    ['contacts', 'remove'],
    ['contacts', 'rename'],
    ['contacts', 'path'],
  ])('lanchat %s --help shows examples of it', async (...command) => {
    const { code, out } = await run([...command, '--help']);
    expect(code).toBe(0);
    expect(out).toMatch(new RegExp(`\\nExamples?:\\n {2}lanchat ${command.join(' ')}\\b`));
  });

  it('chat --help says the session is encrypted, as connect --help does', async () => {
    for (const command of ['connect', 'chat']) {
      expect((await run([command, '--help'])).out).toMatch(/^The session is encrypted \(TLS 1\.3\); the .+ key is pinned the first time/m);
    }
  });
});

describe('lanchat completion', () => {
  /** What bash completes for `lanchat WORDS…` (the last word being typed), with `lanchat` on the PATH and one contact. */
  async function complete(...words: string[]): Promise<string[]> {
    const bin = mkdtempSync(join(tmpdir(), 'lanchat-bin-'));
    writeFileSync(join(bin, 'lanchat'), `#!/bin/sh\nexec '${process.execPath}' '${CLI}' "$@"\n`, { mode: 0o755 });
    const home = mkdtempSync(join(tmpdir(), 'lanchat-home-'));
    expect(
      (await lanchat(['contacts', 'add', 'bob', '10.0.0.4', '5000'], { env: { LANCHAT_HOME: home }, stdin: 'ignore' }).exited).code,
    ).toBe(0);
    const script = (await run(['completion', 'bash'])).out;
    const line = ['lanchat', ...words].map((word) => `'${word}'`).join(' ');
    const shell = spawnProc(
      'bash',
      ['--norc', '-c', `${script}\nCOMP_WORDS=(${line}); COMP_CWORD=${words.length}; _lanchat; printf '%s\\n' "\${COMPREPLY[@]}"`],
      {
        env: { PATH: `${bin}:${process.env.PATH}`, LANCHAT_HOME: home },
        stdin: 'ignore',
      },
    );
    expect((await shell.exited).code).toBe(0);
    return shell.stdout().toString().split('\n').filter(Boolean).sort();
  }

  it('bash: completes commands, subcommands, options, argument values and contact names', async () => {
    expect(await complete('co')).toEqual(['completion', 'config', 'connect', 'contacts']);
    expect(await complete('contacts', 're')).toEqual(['remove', 'rename']);
    expect(await complete('connect', '--ti')).toEqual(['--timeout']);
    expect(await complete('connect', '10.0.0.4', '--ra')).toEqual(['--raw']);
    expect(await complete('config', 'announce', '')).toEqual(['off', 'on']);
    expect(await complete('chat', '')).toEqual(['bob']);
    expect(await complete('contacts', 'show', 'b')).toEqual(['bob']);
    expect(await complete('listen', '--no')).toEqual(['--no-announce']);
  });

  it.each([['zsh'], ['fish']])('prints a %s script naming every command', async (shell) => {
    const { code, out } = await run(['completion', shell]);
    expect(code).toBe(0);
    for (const command of ['listen', 'connect', 'chat', 'contacts', 'rename', 'forget', 'config', 'nick']) expect(out).toContain(command);
    expect(out).toContain('lanchat contacts list 2>/dev/null | cut -f1');
  });

  it('an unknown shell is a usage error', async () => {
    expect(await run(['completion', 'tcsh'])).toMatchObject({ code: 2, err: expect.stringMatching(/^lanchat: invalid shell 'tcsh'/) });
  });
});
