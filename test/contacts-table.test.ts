import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import stringWidth from 'string-width';
import { describe, expect, it } from 'vitest';
import { contactsAdd, contactsList } from '../src/commands/contacts.js';
import type { CliContext } from '../src/options.js';

function context(tty: boolean): { ctx: CliContext; out: () => string } {
  let out = '';
  const stream = { isTTY: tty, write: (text: string) => ((out += text), true) } as unknown as NodeJS.WriteStream;
  const ctx = {
    stdin: { isTTY: false } as unknown as NodeJS.ReadStream,
    stdout: stream,
    stderr: { write: () => true } as unknown as NodeJS.WriteStream,
    cwd: '.',
    env: { LANCHAT_HOME: mkdtempSync(join(tmpdir(), 'lanchat-table-')) },
    signal: new AbortController().signal,
  } as CliContext;
  return { ctx, out: () => out };
}

describe('contacts list on a terminal', () => {
  it('says in a KEY column whether a key is pinned', async () => {
    const { ctx, out } = context(true);
    await contactsAdd(['bob', '10.0.0.4', '5000'], {}, ctx);
    await contactsAdd(['carol', '10.0.0.5', '5000'], { fingerprint: 'AB'.repeat(32) }, ctx);
    await contactsList({}, ctx);
    expect(out()).toBe('NAME   HOST      PORT  KEY\nbob    10.0.0.4  5000  none yet\ncarol  10.0.0.5  5000  pinned\n');
  });

  it('aligns columns by display width: wide, astral and combining characters', async () => {
    const { ctx, out } = context(true);
    for (const [name, host] of [
      ['東京', '10.0.0.1'],
      ['𝒜lice', 'fe80::1'],
      ['cafe\u0301', 'host.lan'],
      ['bob', '10.0.0.200'],
    ]) {
      await contactsAdd([name, host, '5000'], {}, ctx);
    }
    await contactsList({}, ctx);
    const rows = out().trimEnd().split('\n');
    expect(rows[0]).toMatch(/^NAME\s+HOST\s+PORT\s+KEY$/);
    // Every PORT column, and every KEY column, starts at the same display column.
    const cellStarts = (row: string): number[] => [...row.matchAll(/\S+(?: \S+)*/g)].map((cell) => stringWidth(row.slice(0, cell.index)));
    const portColumn = (row: string): number => cellStarts(row)[2];
    const keyColumn = (row: string): number => cellStarts(row)[3];
    expect(new Set(rows.map(portColumn)).size).toBe(1);
    expect(new Set(rows.map(keyColumn)).size).toBe(1);
  });
});
