// Files as the person meets them (src/files.ts): the commands, sizes and
// rates, the progress line at any width, and the answers to offers (/accept
// into a directory that is not there, /decline, the same file offered twice)
// over a lane played by the test.
import { EventEmitter } from 'node:events';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import stringWidth from 'string-width';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { StatusLine } from '../src/console.js';
import { Files, formatBytes } from '../src/files.js';
import { parseSize } from '../src/options.js';
import { parseInput, splitWords } from '../src/slash.js';
import { cutToWidth, loadWidths } from '../src/terminal.js';
import type { FileLane, IncomingTransfer, TransferEnd } from '../src/transfer.js';

beforeAll(loadWidths); // as the CLI does at a terminal

describe('file commands', () => {
  it.each([
    ['/send a.txt', { command: 'send', paths: ['a.txt'] }],
    ['/send a.txt "my report.pdf" b\\ c', { command: 'send', paths: ['a.txt', 'my report.pdf', 'b c'] }],
    ["/send 'it''s'", { command: 'send', paths: ['its'] }],
    ['/send', { command: 'invalid', hint: 'usage: /send PATH...' }],
    ['/send "open', { command: 'invalid', hint: 'usage: /send PATH...' }],
    ['/accept', { command: 'accept', dir: null }],
    ['/accept ~/in', { command: 'accept', dir: '~/in' }],
    ['/accept "my dir"', { command: 'accept', dir: 'my dir' }],
    ['/accept a b', { command: 'invalid', hint: 'usage: /accept [DIR]' }],
    ['/decline', { command: 'decline' }],
    ['/decline now', { command: 'invalid', hint: 'usage: /decline' }],
    ['/cancel', { command: 'cancel' }],
  ])('%s', (line, input) => {
    expect(parseInput(line)).toEqual(input);
  });

  it('splits words as a shell does, quotes and escapes kept apart', () => {
    expect(splitWords('  a  "b c"  \'d"e\' f\\ g ""')).toEqual(['a', 'b c', 'd"e', 'f g', '']);
    expect(splitWords('"unfinished')).toBeNull();
  });
});

describe('sizes', () => {
  it.each([
    [0, '0 B'],
    [999, '999 B'],
    [1000, '1.0 kB'],
    [2_300_000, '2.3 MB'],
    [50_000_000, '50 MB'],
    [999_960_000, '1.0 GB'],
    [1_073_741_824, '1.1 GB'],
  ])('%i bytes are shown as %s', (bytes, shown) => {
    expect(formatBytes(bytes)).toBe(shown);
  });

  it.each([
    ['500', 500],
    ['100M', 100_000_000],
    ['1.5GB', 1_500_000_000],
    ['2GiB', 2 * 1024 ** 3],
    ['64kib', 65_536],
    [' 7 k ', 7000],
  ])('--max-file-size %s is %i bytes', (text, bytes) => {
    expect(parseSize(text)).toBe(bytes);
  });

  it.each(['', '0', '-5', 'ten', '5X', '1e9', '1.2.3M'])('--max-file-size %j is refused', (text) => {
    expect(() => parseSize(text)).toThrow('a size is a number of bytes');
  });
});

describe('rates', () => {
  it.each([
    [76.92307692307692, '77 B'], // a small file's rate: whole bytes
    [999.4, '999 B'],
    [999.6, '1.0 kB'],
  ])('%d bytes a second are shown as %s', (bytes, shown) => {
    expect(formatBytes(bytes)).toBe(shown);
  });
});

describe('cutToWidth', () => {
  it.each([
    ['short', 10, 'short'],
    ['exactly10!', 10, 'exactly10!'],
    ['a bit too long', 10, 'a bit too…'],
    ['日本語のファイル', 9, '日本語の…'], // two columns each
    ['日本語のファイル', 8, '日本語…'],
    ['👨‍👩‍👧 family', 3, '👨‍👩‍👧…'], // a ZWJ sequence stays whole (two columns)
    ['👨‍👩‍👧 family', 2, '…'],
  ])('%j in %d columns → %j', (text, columns, cut) => {
    expect(cutToWidth(text, columns)).toBe(cut);
    expect(stringWidth(cutToWidth(text, columns))).toBeLessThanOrEqual(columns);
  });
});

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A temporary directory, removed after the test. */
function tempDir(label: string): string {
  const dir = mkdtempSync(join(tmpdir(), `lanchat-files-${label}-`));
  dirs.push(dir);
  return dir;
}

/** A transfer as Files reads it, with what Files answered: moved by hand, and read by the test. */
interface FakeTransfer {
  name: string;
  size: number;
  /** Resolve once Files accepts (to the destination) or declines (to the reason). */
  accepted: Promise<unknown>;
  declined: Promise<string>;
  /** As Files sees it. */
  real: IncomingTransfer;
}

function fakeTransfer(fields: {
  name: string;
  size: number;
  id?: number;
  state?: string;
  bytes?: number;
  startedAt?: number;
}): FakeTransfer {
  let accept!: (destination: unknown) => void;
  let decline!: (why: string) => void;
  const accepted = new Promise<unknown>((resolve) => (accept = resolve));
  const declined = new Promise<string>((resolve) => (decline = resolve));
  const real = {
    id: 1,
    direction: 'in',
    state: 'offered',
    ended: false,
    bytes: 0,
    startedFrom: 0,
    startedAt: null,
    key: '0123456789abcdef0123456789abcdef',
    done: new Promise<TransferEnd>(() => {}),
    accept,
    decline,
    ...fields,
  } as unknown as IncomingTransfer;
  return { name: fields.name, size: fields.size, accepted, declined, real };
}

/** Resolves to what `promise` gave, or to 'pending' once the work already due (a few file system calls) is done. */
async function settled<T>(promise: Promise<T>): Promise<T | 'pending'> {
  const due = new Promise<'pending'>((resolve) => setTimeout(() => resolve('pending'), 200));
  return Promise.race([promise, due]);
}

function fakeLane(pending: FakeTransfer[] = []): FileLane {
  return Object.assign(new EventEmitter(), { pending: pending.map((transfer) => transfer.real) }) as unknown as FileLane;
}

function files(lane: FileLane, extra: Partial<ConstructorParameters<typeof Files>[1]> = {}) {
  const notices: string[] = [];
  let draw!: (line: StatusLine | null) => void;
  const drawn = new Promise<StatusLine | null>((resolve) => (draw = resolve));
  const made = new Files(lane, {
    cwd: tempDir('unit'),
    canAsk: true,
    peerId: () => 'peer-key',
    peerNick: () => 'alice',
    notice: (text) => notices.push(text),
    progress: draw,
    ...extra,
  });
  return { files: made, notices, drawn };
}

describe('the progress line', () => {
  const names = [
    'report.pdf',
    'a-rather-long-file-name-of-a-nightly-backup-2026-01-02.tar.gz',
    '日本語のファイル名がとても長いです日本語のファイル名.bin',
  ];
  for (const name of names) {
    it(`${name}: never wider than asked, the figures whole from 50 columns, the bar when there is room`, async () => {
      const transfer = fakeTransfer({ name, size: 200_000_000, state: 'active', bytes: 84_000_000, startedAt: Date.now() - 2000 });
      const lane = fakeLane([transfer]);
      const { drawn } = files(lane);
      lane.emit('progress', transfer.real);
      const line = (await drawn)!;
      for (let columns = 10; columns <= 120; columns++) {
        expect(stringWidth(line(columns)), `${columns} columns: ${line(columns)}`).toBeLessThanOrEqual(columns);
        if (columns >= 50) expect(line(columns)).toMatch(/^↓ .+ {2}42%.* 84 MB\/200 MB {2}\d+ MB\/s {2}\d+\.\d s left$/);
      }
      expect(line(120)).toMatch(/ 42% \[========> {11}\] /);
      expect(line(50)).not.toContain('[');
    });
  }
});

describe('answering offers', () => {
  it('/accept into a directory that is not there says so, and the offer waits for another answer', async () => {
    const transfer = fakeTransfer({ name: 'report.pdf', size: 10 });
    const lane = fakeLane([transfer]);
    const { files: made, notices } = files(lane);
    lane.emit('offer', transfer.real);
    expect(notices.at(-1)).toBe('alice offers report.pdf (10 B) — /accept [DIR] or /decline');
    await made.accept('nowhere');
    expect(notices.at(-1)).toMatch(/^lanchat: .*\/nowhere: no such directory: the offer waits \(\/accept DIR or \/decline\)$/);
    expect(await settled(transfer.declined)).toBe('pending');
    await made.accept(null);
    expect(await transfer.accepted).toMatchObject({ offset: 0 });
  });

  it('/decline says what was declined, and puts no words in anyone’s mouth', async () => {
    const transfer = fakeTransfer({ name: 'report.pdf', size: 2_300_000 });
    const lane = fakeLane([transfer]);
    const { files: made, notices } = files(lane);
    lane.emit('offer', transfer.real);
    made.decline();
    expect(notices.at(-1)).toBe('declined report.pdf (2.3 MB)');
    expect(await transfer.declined).toBe('');
  });

  it('the same file offered twice while the first is on its way: the second is refused, never written to the same partial', async () => {
    const inbox = tempDir('inbox');
    const first = fakeTransfer({ name: 'twice.bin', size: 10 });
    const second = fakeTransfer({ name: 'twice.bin', size: 10, id: 2 });
    const lane = fakeLane([first, second]);
    const { notices } = files(lane, { acceptInto: inbox });
    lane.emit('offer', first.real);
    lane.emit('offer', second.real);
    await first.accepted;
    expect(await second.declined).toBe('the same file is on its way already');
    expect(await settled(second.accepted)).toBe('pending');
    expect(notices).toContain('lanchat: refused twice.bin: the same file is on its way already');
    expect(readdirSync(inbox).filter((file) => file.endsWith('.lanchat-part'))).toHaveLength(1);
  });
});
