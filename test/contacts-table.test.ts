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
    expect(rows[0]).toMatch(/^NAME\s+HOST\s+PORT$/);
    // Every PORT column starts at the same display column.
    const portColumn = (row: string): number => stringWidth(row.slice(0, row.lastIndexOf(' ') + 1));
    expect(new Set(rows.map(portColumn)).size).toBe(1);
  });
});
