// Help as a new user meets it (issue 17): unknown commands, hints, examples,
// shell completion, and the README's examples against real output.
import { afterEach, describe, expect, it } from 'vitest';
import { killAll, lanchat } from './cli-helpers.js';

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
