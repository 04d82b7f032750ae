// Where received files land: names a peer chose are made safe, partials are
// found again by the same offer, and keeping a file never replaces another.
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Inbox, safeFileName, type InboxOptions, type Reservation } from '../src/inbox.js';

const KEY = '0123456789abcdef';
const OTHER_KEY = 'fedcba9876543210';
const bytes = (text: string): number => Buffer.byteLength(text, 'utf8');
const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

let root: string;
let dir: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'lanchat-inbox-'));
  dir = join(root, 'inbox');
  mkdirSync(dir);
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

/** An inbox on `dir` that believes plenty of space is free unless told otherwise. */
const inboxOf = (options: InboxOptions = {}): Inbox => new Inbox(dir, { freeSpace: () => Promise.resolve(2 ** 40), ...options });
/** Reserves `name` and writes `data` into its partial, as a whole transfer would. */
async function receive(inbox: Inbox, name: string, data: Buffer, key = KEY): Promise<Reservation> {
  const reservation = await inbox.reserve({ name, size: data.length, key });
  writeFileSync(reservation.partialPath, data);
  return reservation;
}
const mkfifoPossible = spawnSync('mkfifo', ['--version']).status === 0;
/** What a link() on FAT or exFAT does: there are no hard links there. */
const noHardLinks = (): Promise<void> =>
  Promise.reject(Object.assign(new Error('EPERM: operation not permitted, link'), { code: 'EPERM' }));

describe('safeFileName', () => {
  // offered → kept; every hostile name keeps only a harmless base name.
  const table: [string, string][] = [
    ['../../etc/passwd', 'passwd'],
    ['..\\..\\boot.ini', 'boot.ini'],
    ['/abs/x', 'x'],
    ['C:\\Users\\bob\\report.pdf', 'report.pdf'],
    ['C:report.pdf', 'C_report.pdf'],
    ['dir/', 'dir'],
    ['dir/..', 'file'],
    ['.bashrc', 'bashrc'],
    ['...', 'file'],
    ['..', 'file'],
    ['.', 'file'],
    ['', 'file'],
    ['   ', 'file'],
    ['a\u202Etxt.exe', 'atxt.exe'],
    ['invoice\u2066.pdf\u2069.exe', 'invoice.pdf.exe'],
    ['\u200E\u200Freport\u061C.pdf', 'report.pdf'],
    ['a\u200Bb.txt', 'ab.txt'],
    ['\uFEFFbom.txt', 'bom.txt'],
    ['soft\u00ADhyphen.txt', 'softhyphen.txt'],
    ['x\u200Dy.txt', 'xy.txt'],
    ['hangul\u3164filler.txt', 'hangulfiller.txt'],
    ['nul\u0000byte.txt', 'nulbyte.txt'],
    ['line\nbreak\r.txt', 'linebreak.txt'],
    ['tab\there.txt', 'tabhere.txt'],
    ['\u001b[31mred\u001b[0m.txt', '[31mred[0m.txt'],
    ['\u001b]0;title\u0007.txt', ']0;title.txt'],
    ['\u009b31mcsi.txt', '31mcsi.txt'],
    ['del\u007f.txt', 'del.txt'],
    ['a\u2028b\u2029c', 'abc'],
    ['lone\uD800surrogate.txt', 'lonesurrogate.txt'],
    ['non\uFFFEchar.txt', 'nonchar.txt'],
    ['CON', '_CON'],
    ['con.txt', '_con.txt'],
    ['LPT9.log', '_LPT9.log'],
    ['nul.', '_nul'],
    ['Com1.tar.gz', '_Com1.tar.gz'],
    ['aux .txt', '_aux .txt'],
    ['COM¹', '_COM¹'],
    ['prn\u200B.txt', '_prn.txt'],
    ['dir/conout$', '_conout$'],
    ['console.txt', 'console.txt'],
    ['com10.txt', 'com10.txt'],
    ['trailing. ', 'trailing'],
    ['trailing...', 'trailing'],
    ['  leading.txt', 'leading.txt'],
    ['a:b', 'a_b'],
    ['x|y', 'x_y'],
    ['<>:"|?*.txt', '_______.txt'],
    ['\u200B\u200B', 'file'],
    ['/\u202E/', 'file'],
    ['\u0000\u0001\u001f', 'file'],
    ['e\u0301te\u0301.txt', 'été.txt'],
    ['😀.png', '😀.png'],
    ['👨‍👩‍👧 family.jpg', '👨‍👩‍👧 family.jpg'],
    ['❤️.txt', '❤️.txt'],
    ['🏳️‍🌈.txt', '🏳️‍🌈.txt'],
    ['report.pdf', 'report.pdf'],
    ['report (1).pdf', 'report (1).pdf'],
    ['отчёт.pdf', 'отчёт.pdf'],
    ['报告 2024.docx', '报告 2024.docx'],
    ['تقرير.pdf', 'تقرير.pdf'],
    ['a..b.txt', 'a..b.txt'],
    ['archive.tar.gz', 'archive.tar.gz'],
  ];
  it.each(table)('%j → %j', (offered, kept) => {
    expect(safeFileName(offered)).toBe(kept);
  });

  // Names over 255 bytes of UTF-8: cut between characters, the extension kept when it is one.
  const long: [string, string, (kept: string) => void][] = [
    ['ASCII, with an extension', 'a'.repeat(300) + '.pdf', (kept) => expect(kept).toBe('a'.repeat(251) + '.pdf')],
    ['Cyrillic (2 bytes a letter)', 'ж'.repeat(200) + '.txt', (kept) => expect(kept).toBe('ж'.repeat(125) + '.txt')],
    ['CJK (3 bytes a letter), no extension', '字'.repeat(100), (kept) => expect(kept).toBe('字'.repeat(85))],
    ['emoji (4 bytes each)', '😀'.repeat(100) + '.png', (kept) => expect(kept).toBe('😀'.repeat(62) + '.png')],
    ['ZWJ emoji (18 bytes each) stay whole', 'aaaaa' + '👨‍👩‍👧'.repeat(30), (kept) => expect(kept).toBe('aaaaa' + '👨‍👩‍👧'.repeat(13))],
    [
      'letters with accents that do not compose stay whole',
      'ab' + 'x\u0301'.repeat(100),
      (kept) => expect(kept).toBe('ab' + 'x\u0301'.repeat(84)),
    ],
    ['an "extension" too long to be one', 'x.' + 'y'.repeat(300), (kept) => expect(kept).toBe('x.' + 'y'.repeat(253))],
    ['a stem that the cut leaves ending in spaces', 'a'.repeat(248) + '     b.pdf', (kept) => expect(kept).toBe('a'.repeat(248) + '.pdf')],
    ['one character longer than a name', 'a' + '\u0301'.repeat(200), (kept) => expect(kept).toMatch(/^á\u0301+$/)],
    [
      'a path with a long last segment',
      'dir/'.repeat(100) + 'é'.repeat(200) + '.txt',
      (kept) => expect(kept).toBe('é'.repeat(125) + '.txt'),
    ],
  ];
  it.each(long)('a long name (%s) is cut to 255 bytes', (_what, offered, check) => {
    const kept = safeFileName(offered);
    expect(bytes(kept)).toBeLessThanOrEqual(255);
    expect(Buffer.from(kept, 'utf8').toString('utf8')).toBe(kept); // no half character
    check(kept);
  });

  const everyName = [...table.map(([offered]) => offered), ...long.map(([, offered]) => offered)];
  it('when a name is already safe then it stays as it is (every name above, made safe once)', () => {
    for (const offered of everyName) expect([offered, safeFileName(safeFileName(offered))]).toEqual([offered, safeFileName(offered)]);
  });

  it('when any name above is received then it lands in the inbox itself, under its safe name, and nothing else moves', async () => {
    for (const [i, offered] of everyName.entries()) {
      const inbox = new Inbox(join(root, `inbox${i}`), { freeSpace: () => Promise.resolve(2 ** 40) });
      mkdirSync(inbox.dir);
      const kept = await inbox.keep(await receive(inbox, offered, Buffer.from(`file ${i}`)));
      expect([offered, kept, readdirSync(inbox.dir)]).toEqual([offered, safeFileName(offered), [kept]]);
      expect(readFileSync(join(inbox.dir, kept), 'utf8')).toBe(`file ${i}`);
    }
    expect(readdirSync(root).sort()).toEqual(['inbox', ...everyName.map((_, i) => `inbox${i}`)].sort());
    expect(readdirSync(dir)).toEqual([]);
  });
});

describe('open', () => {
  it('when the directory is there and writable then it resolves', async () => {
    await expect(new Inbox(dir).open()).resolves.toBeUndefined();
  });

  it('when the directory is missing then ERR_INBOX names it on one line', async () => {
    const missing = join(root, 'missing');
    const error = await new Inbox(missing).open().catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'ERR_INBOX', message: `${missing}: no such directory` });
  });

  it('when the path is a file then ERR_INBOX says it is not a directory', async () => {
    const file = join(root, 'file');
    writeFileSync(file, '');
    await expect(new Inbox(file).open()).rejects.toMatchObject({ code: 'ERR_INBOX', message: `${file} is not a directory` });
  });
});

describe('reserve', () => {
  it('when a file is new then an empty hidden partial named after it and the key is made, offset 0', async () => {
    const reservation = await inboxOf().reserve({ name: 'report.pdf', size: 1000, key: KEY });
    expect(reservation).toEqual({ name: 'report.pdf', partialPath: join(dir, `.report.pdf.${KEY}.lanchat-part`), offset: 0 });
    expect(readFileSync(reservation.partialPath).length).toBe(0);
  });

  it('when the same file is offered again after a cut then it resumes from the bytes already there', async () => {
    const inbox = inboxOf();
    const first = await inbox.reserve({ name: 'report.pdf', size: 1000, key: KEY });
    writeFileSync(first.partialPath, randomBytes(600));
    const again = await inbox.reserve({ name: 'report.pdf', size: 1000, key: KEY });
    expect(again).toEqual({ ...first, offset: 600 });
    expect(readFileSync(again.partialPath).length).toBe(600);
  });

  it('when another sender or file (another key) offers the same name then it gets a partial of its own', async () => {
    const inbox = inboxOf();
    writeFileSync((await inbox.reserve({ name: 'report.pdf', size: 1000, key: KEY })).partialPath, randomBytes(600));
    const other = await inbox.reserve({ name: 'report.pdf', size: 1000, key: OTHER_KEY });
    expect(other).toMatchObject({ partialPath: join(dir, `.report.pdf.${OTHER_KEY}.lanchat-part`), offset: 0 });
  });

  it('when the partial is complete then the offset is the whole size (left to verify and keep)', async () => {
    const inbox = inboxOf();
    await receive(inbox, 'report.pdf', randomBytes(1000));
    expect((await inbox.reserve({ name: 'report.pdf', size: 1000, key: KEY })).offset).toBe(1000);
  });

  it('when the partial is longer than the file then it starts over, truncated to 0', async () => {
    const inbox = inboxOf();
    await receive(inbox, 'report.pdf', randomBytes(2000));
    const reservation = await inbox.reserve({ name: 'report.pdf', size: 1000, key: KEY });
    expect(reservation.offset).toBe(0);
    expect(readFileSync(reservation.partialPath).length).toBe(0);
  });

  it('when the name is long and the key 64 digits then the partial name still fits in 255 bytes and is found again', async () => {
    const inbox = inboxOf();
    const key = 'ab'.repeat(32);
    const name = 'ж'.repeat(200) + '.txt';
    const first = await receive(inbox, name, randomBytes(10), key);
    expect(bytes(basename(first.partialPath))).toBeLessThanOrEqual(255);
    expect(dirname(first.partialPath)).toBe(dir);
    expect(await inbox.reserve({ name, size: 20, key })).toEqual({ ...first, offset: 10 });
  });

  it('when the file is over maxFileSize then ERR_FILE_TOO_BIG, and no partial is made', async () => {
    const inbox = inboxOf();
    await expect(inbox.reserve({ name: 'big.iso', size: 1001, key: KEY }, { maxFileSize: 1000 })).rejects.toMatchObject({
      code: 'ERR_FILE_TOO_BIG',
      message: 'big.iso is too big: 1001 bytes, the limit is 1000',
    });
    expect(readdirSync(dir)).toEqual([]);
    expect((await inbox.reserve({ name: 'big.iso', size: 1000, key: KEY }, { maxFileSize: 1000 })).offset).toBe(0);
  });

  it('when the file system lacks size - offset bytes then ERR_NO_SPACE, and a new partial is not left behind', async () => {
    const inbox = inboxOf({ freeSpace: () => Promise.resolve(500) });
    await expect(inbox.reserve({ name: 'report.pdf', size: 1000, key: KEY })).rejects.toMatchObject({
      code: 'ERR_NO_SPACE',
      message: `no space for report.pdf in ${dir}: it needs 1000 bytes, 500 are free`,
    });
    expect(readdirSync(dir)).toEqual([]);
  });

  it('when a resumed partial leaves less to receive than is free then it goes on; when it leaves more, the partial stays for later', async () => {
    const inbox = inboxOf({ freeSpace: () => Promise.resolve(500) });
    const partial = join(dir, `.report.pdf.${KEY}.lanchat-part`);
    writeFileSync(partial, randomBytes(600));
    expect((await inbox.reserve({ name: 'report.pdf', size: 1000, key: KEY })).offset).toBe(600);
    await expect(inbox.reserve({ name: 'report.pdf', size: 1200, key: KEY })).rejects.toMatchObject({ code: 'ERR_NO_SPACE' });
    expect(readFileSync(partial).length).toBe(600);
  });

  it('when the real file system (statfs) has not got the space then ERR_NO_SPACE', async () => {
    const inbox = new Inbox(dir);
    await expect(inbox.reserve({ name: 'huge.bin', size: Number.MAX_SAFE_INTEGER, key: KEY })).rejects.toMatchObject({
      code: 'ERR_NO_SPACE',
    });
    expect((await inbox.reserve({ name: 'small.bin', size: 1000, key: KEY })).offset).toBe(0);
  });

  it.each([
    [{ name: 'a', size: -1, key: KEY }],
    [{ name: 'a', size: 1.5, key: KEY }],
    [{ name: 'a', size: Number.NaN, key: KEY }],
    [{ name: 'a', size: 1, key: '0123' }],
    [{ name: 'a', size: 1, key: 'ABCDEF0123456789' }],
    [{ name: 'a', size: 1, key: '../../../etc/passwd.x' }],
    [{ name: 'a', size: 1, key: 'a'.repeat(65) }],
  ])('when the offer is malformed (%j) then ERR_BAD_OFFER', async (offer) => {
    await expect(inboxOf().reserve(offer)).rejects.toMatchObject({ code: 'ERR_BAD_OFFER' });
    expect(readdirSync(dir)).toEqual([]);
  });

  it('when a symbolic link stands where the partial goes then ERR_INBOX, and its target is not touched', async () => {
    const target = join(root, 'precious');
    writeFileSync(target, 'precious');
    symlinkSync(target, join(dir, `.report.pdf.${KEY}.lanchat-part`));
    await expect(inboxOf().reserve({ name: 'report.pdf', size: 1, key: KEY })).rejects.toMatchObject({ code: 'ERR_INBOX' });
    expect(readFileSync(target, 'utf8')).toBe('precious');
  });

  it.skipIf(!mkfifoPossible)('when a FIFO stands where the partial goes then ERR_INBOX (the receiver would write into it)', async () => {
    const partial = join(dir, `.report.pdf.${KEY}.lanchat-part`);
    expect(spawnSync('mkfifo', [partial]).status).toBe(0);
    await expect(inboxOf().reserve({ name: 'report.pdf', size: 1, key: KEY })).rejects.toMatchObject({
      code: 'ERR_INBOX',
      message: `${partial} is not a regular file: remove it`,
    });
  });

  it('when a directory stands where the partial goes then ERR_INBOX', async () => {
    mkdirSync(join(dir, `.report.pdf.${KEY}.lanchat-part`));
    await expect(inboxOf().reserve({ name: 'report.pdf', size: 1, key: KEY })).rejects.toMatchObject({ code: 'ERR_INBOX' });
  });
});

describe('prefixHash', () => {
  it('when part of a file was received then the hash is that of the prefix, and goes on to hash the whole file', async () => {
    const inbox = inboxOf();
    const data = randomBytes(3 * 1024 * 1024 + 12345); // more than one read's buffer
    const prefix = data.subarray(0, 2 * 1024 * 1024 + 777);
    await receive(inbox, 'data.bin', prefix);
    const reservation = await inbox.reserve({ name: 'data.bin', size: data.length, key: KEY });
    expect(reservation.offset).toBe(prefix.length);
    const hash = await inbox.prefixHash(reservation);
    expect(hash.copy().digest('hex')).toBe(sha256(prefix));
    expect(hash.update(data.subarray(prefix.length)).digest('hex')).toBe(sha256(data));
  });

  it('when the partial holds more than the offset then only the first offset bytes are hashed', async () => {
    const inbox = inboxOf();
    const data = randomBytes(3 * 1024 * 1024);
    const reservation = await receive(inbox, 'data.bin', data);
    const offset = 1024 * 1024 + 5;
    expect((await inbox.prefixHash({ ...reservation, offset })).digest('hex')).toBe(sha256(data.subarray(0, offset)));
  });

  it('when nothing was received then it is the hash of nothing', async () => {
    const inbox = inboxOf();
    const reservation = await inbox.reserve({ name: 'data.bin', size: 10, key: KEY });
    expect((await inbox.prefixHash(reservation)).digest('hex')).toBe(sha256(Buffer.alloc(0)));
  });

  it('when the partial shrank since reserve then ERR_INBOX', async () => {
    const inbox = inboxOf();
    await receive(inbox, 'data.bin', randomBytes(100));
    const reservation = await inbox.reserve({ name: 'data.bin', size: 200, key: KEY });
    writeFileSync(reservation.partialPath, randomBytes(50));
    await expect(inbox.prefixHash(reservation)).rejects.toMatchObject({ code: 'ERR_INBOX' });
  });
});

describe.each([
  ['with hard links', {}],
  ['on a file system without hard links (FAT, exFAT)', { link: noHardLinks }],
])('keep, %s', (_where, options: InboxOptions) => {
  it('when the name is free then the partial takes it, whole, and is gone', async () => {
    const inbox = inboxOf(options);
    const data = randomBytes(1000);
    const reservation = await receive(inbox, 'report.pdf', data);
    expect(await inbox.keep(reservation)).toBe('report.pdf');
    expect(readFileSync(join(dir, 'report.pdf'))).toEqual(data);
    expect(existsSync(reservation.partialPath)).toBe(false);
    expect(readdirSync(dir)).toEqual(['report.pdf']);
  });

  it('when report.pdf and report (1).pdf exist then it is report (2).pdf, and neither is touched', async () => {
    writeFileSync(join(dir, 'report.pdf'), 'first');
    writeFileSync(join(dir, 'report (1).pdf'), 'second');
    const inbox = inboxOf(options);
    expect(await inbox.keep(await receive(inbox, 'report.pdf', Buffer.from('third')))).toBe('report (2).pdf');
    expect(readFileSync(join(dir, 'report.pdf'), 'utf8')).toBe('first');
    expect(readFileSync(join(dir, 'report (1).pdf'), 'utf8')).toBe('second');
    expect(readFileSync(join(dir, 'report (2).pdf'), 'utf8')).toBe('third');
  });

  it.each([
    ['README', 'README (1)'],
    ['archive.tar.gz', 'archive (1).tar.gz'],
    ['a..b', 'a. (1).b'],
    ['Report.PDF', 'Report (1).PDF'],
  ])('when %j exists then a second one is %j', async (name, second) => {
    const inbox = inboxOf(options);
    expect(await inbox.keep(await receive(inbox, name, Buffer.from('one'), KEY))).toBe(name);
    expect(await inbox.keep(await receive(inbox, name, Buffer.from('two'), OTHER_KEY))).toBe(second);
    expect(readFileSync(join(dir, name), 'utf8')).toBe('one');
    expect(readFileSync(join(dir, second), 'utf8')).toBe('two');
  });

  it('when a 255-byte name is taken then its copy is cut to fit, the extension kept', async () => {
    const name = safeFileName('ж'.repeat(200) + '.txt');
    writeFileSync(join(dir, name), 'first');
    const inbox = inboxOf(options);
    const kept = await inbox.keep(await receive(inbox, name, Buffer.from('second')));
    expect(kept).toBe('ж'.repeat(123) + ' (1).txt');
    expect(bytes(kept)).toBeLessThanOrEqual(255);
  });

  it('when a dangling symbolic link or a directory has the name then it is not followed nor replaced', async () => {
    symlinkSync(join(root, 'elsewhere'), join(dir, 'report.pdf'));
    mkdirSync(join(dir, 'report (1).pdf'));
    const inbox = inboxOf(options);
    expect(await inbox.keep(await receive(inbox, 'report.pdf', Buffer.from('data')))).toBe('report (2).pdf');
    expect(existsSync(join(root, 'elsewhere'))).toBe(false);
    expect(lstatSync(join(dir, 'report.pdf')).isSymbolicLink()).toBe(true);
  });

  it('when several files of the same name are kept at once then each gets a name of its own', async () => {
    const inbox = inboxOf(options);
    const keys = Array.from({ length: 8 }, (_, i) => `${i}`.repeat(16));
    const reservations = await Promise.all(keys.map((key) => receive(inbox, 'report.pdf', Buffer.from(key), key)));
    const kept = await Promise.all(reservations.map((reservation) => inbox.keep(reservation)));
    expect(new Set(kept).size).toBe(keys.length);
    expect(kept.sort()).toEqual(['report.pdf', ...Array.from({ length: 7 }, (_, i) => `report (${i + 1}).pdf`)].sort());
    expect(kept.map((name) => readFileSync(join(dir, name), 'utf8')).sort()).toEqual([...keys].sort());
    expect(readdirSync(dir).sort()).toEqual([...kept].sort());
  });
});

describe('keep and discard take only partials of their inbox', () => {
  it('when a reservation names another file then ERR_INBOX, and that file stays', async () => {
    const precious = join(root, 'precious');
    writeFileSync(precious, 'precious');
    const forged = { name: 'x', partialPath: precious, offset: 0 };
    await expect(inboxOf().keep(forged)).rejects.toMatchObject({ code: 'ERR_INBOX' });
    await expect(inboxOf().discard(forged)).rejects.toMatchObject({ code: 'ERR_INBOX' });
    await expect(inboxOf().discard({ ...forged, partialPath: join(dir, 'report.pdf') })).rejects.toMatchObject({ code: 'ERR_INBOX' });
    expect(readFileSync(precious, 'utf8')).toBe('precious');
    // A partial of another directory is not this inbox's either.
    const elsewhere = join(root, `.x.${KEY}.lanchat-part`);
    writeFileSync(elsewhere, 'elsewhere');
    await expect(inboxOf().keep({ ...forged, partialPath: elsewhere })).rejects.toMatchObject({ code: 'ERR_INBOX' });
    await expect(inboxOf().discard({ ...forged, partialPath: elsewhere })).rejects.toMatchObject({ code: 'ERR_INBOX' });
    expect(readFileSync(elsewhere, 'utf8')).toBe('elsewhere');
    expect(readdirSync(dir)).toEqual([]);
  });
});

describe('discard', () => {
  it('when the hash did not match then the partial is removed, and a second discard is harmless', async () => {
    const inbox = inboxOf();
    const reservation = await receive(inbox, 'report.pdf', randomBytes(100));
    await inbox.discard(reservation);
    expect(readdirSync(dir)).toEqual([]);
    await expect(inbox.discard(reservation)).resolves.toBeUndefined();
    expect((await inbox.reserve({ name: 'report.pdf', size: 100, key: KEY })).offset).toBe(0);
  });
});
