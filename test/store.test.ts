// What lanchat keeps on the local machine (the config directory: contacts,
// settings, pins, its key, and the locks around them) is for its user alone:
// made private whatever the umask, and not trusted when another user could
// have put it there.
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { savedNick } from '../src/settings.js';
import { parseStoreJson, updateText, type LockTiming } from '../src/store.js';
import { loadKeyBook } from '../src/trust.js';
import { CLI, countingPort, fileInput, killAll, lanchat, listener, spawnProc, type Proc } from './cli-helpers.js';

afterEach(killAll);

/** A LANCHAT_HOME that does not exist yet, in a fresh private directory. */
const freshHome = (): string => join(mkdtempSync(join(tmpdir(), 'lanchat-store-')), 'home');
const modeOf = (path: string): number => statSync(path).mode & 0o777;

/** Runs a lanchat command to its end. */
async function run(args: string[], home: string, input = ''): Promise<Proc & { code: number | null }> {
  const proc = lanchat(args, { env: { LANCHAT_HOME: home }, stdin: fileInput(input) });
  return Object.assign(proc, { code: (await proc.exited).code });
}

/** Another local user: a uid with no account, as setpriv gives (root only). */
const OTHER_UID = 12345;
const asOtherUser = ['--reuid', String(OTHER_UID), '--regid', String(OTHER_UID), '--clear-groups'];
const otherUserPossible = spawnSync('setpriv', [...asOtherUser, 'true']).status === 0;

/** Runs lanchat to its end under `umask 000`, as a careless login shell would. */
async function runOpenUmask(args: string[], home: string): Promise<Proc & { code: number | null }> {
  const proc = spawnProc('sh', ['-c', 'umask 000; exec "$0" "$@"', process.execPath, CLI, ...args], {
    env: { LANCHAT_HOME: home },
    stdin: 'ignore',
  });
  return Object.assign(proc, { code: (await proc.exited).code });
}

describe('the config directory is private whatever the umask', () => {
  it('when lanchat creates it under umask 000 then the directory is 0700 and every file 0600', async () => {
    const home = freshHome();
    expect((await runOpenUmask(['contacts', 'add', 'bob', '127.0.0.1', '5000'], home)).code).toBe(0);
    expect((await runOpenUmask(['config', 'nick', 'alice'], home)).code).toBe(0);
    expect((await runOpenUmask(['id'], home)).code).toBe(0);
    expect(modeOf(home)).toBe(0o700);
    expect(readdirSync(home).sort()).toEqual(['config.json', 'contacts.json', 'identity.pem']);
    for (const file of readdirSync(home)) expect([file, modeOf(join(home, file))]).toEqual([file, 0o600]);
  });

  it('when a file is written under umask 000 then it and its lock are private (known-peers.json goes this way)', async () => {
    const path = join(freshHome(), 'known-peers.json');
    const umask = process.umask(0);
    try {
      const lockMode = await updateText(path, () => ({ text: '{}\n', result: modeOf(`${path}.lock`) }));
      expect(lockMode).toBe(0o700);
    } finally {
      process.umask(umask);
    }
    expect(modeOf(path)).toBe(0o600);
    expect(modeOf(join(path, '..'))).toBe(0o700);
  });
});

describe('like ssh StrictModes, what another user could have put there is not trusted', () => {
  it.skipIf(!otherUserPossible)(
    'when another user swapped in a contacts.json pointing bob at their listener then chat bob refuses and dials nobody',
    async () => {
      const home = mkdtempSync(join(tmpdir(), 'lanchat-store-'));
      chmodSync(home, 0o777); // a config directory others can write
      const theirHome = mkdtempSync(join(tmpdir(), 'lanchat-store-'));
      const listen = await listener(['--nick', 'bob'], { env: { LANCHAT_HOME: theirHome } });
      const theirKey = (await run(['id'], theirHome)).stdout().toString().split('\n')[0];
      const book = { version: 1, contacts: [{ name: 'bob', host: '127.0.0.1', port: listen.port, fingerprint: theirKey }] };
      const planted = spawnSync('setpriv', [...asOtherUser, 'sh', '-c', 'cat > "$0"', join(home, 'contacts.json')], {
        input: JSON.stringify(book),
      });
      expect(planted.status).toBe(0);
      const chat = await run(['chat', 'bob'], home, 'the secret\n');
      expect(chat.code).toBe(1);
      expect(chat.stderr()).toBe(
        `lanchat: ${home} can be written by other users (mode 0777): lanchat will not trust what is in it; chmod 700 ${home}\n`,
      );
      listen.child.kill('SIGTERM');
      await listen.exited;
      expect(listen.stdout().length).toBe(0);
      expect(listen.stderr()).toBe(`listening on 127.0.0.1:${listen.port}\n`); // nobody came
    },
  );

  it.skipIf(!otherUserPossible).each([
    ['contacts.json', '{"version":1,"contacts":[]}\n', ['contacts', 'list']],
    ['known-peers.json', '{"version":1,"peers":{}}\n', ['connect', '127.0.0.1']],
    ['identity.pem', 'a key\n', ['id']],
    ['config.json', '{}\n', ['config', 'nick']],
  ])('when %s belongs to another user then the command reading it refuses, naming it and the fix', async (file, text, args) => {
    const home = mkdtempSync(join(tmpdir(), 'lanchat-store-'));
    const path = join(home, file);
    writeFileSync(path, text, { mode: 0o600 });
    chownSync(path, OTHER_UID, OTHER_UID);
    const port = await countingPort();
    try {
      const result = await run(args[0] === 'connect' ? [...args, String(port.port)] : args, home);
      expect(result.code).toBe(1);
      expect(result.stderr()).toBe(
        `lanchat: ${path} belongs to another user (uid ${OTHER_UID}): lanchat will not trust it; remove it, or if it is yours: chown 0 ${path}\n`,
      );
      expect(port.dialled()).toBe(0);
    } finally {
      await port.close();
    }
  });

  it('when a pin file can be written by the group then connect refuses before dialling, naming the chmod', async () => {
    const home = mkdtempSync(join(tmpdir(), 'lanchat-store-'));
    const path = join(home, 'known-peers.json');
    writeFileSync(path, '{"version":1,"peers":{}}\n');
    chmodSync(path, 0o620);
    const port = await countingPort();
    try {
      const result = await run(['connect', '127.0.0.1', String(port.port)], home, 'hello\n');
      expect(result.code).toBe(1);
      expect(result.stderr()).toBe(
        `lanchat: ${path} can be written by other users (mode 0620): lanchat will not trust what is in it; chmod 600 ${path}\n`,
      );
      expect(port.dialled()).toBe(0);
    } finally {
      await port.close();
    }
  });
});

describe('the lock around each change of a store file', () => {
  const fast: LockTiming = { staleMs: 2000 }; // proper-lockfile's shortest
  const write = (text: string) => () => ({ text, result: text });
  /** A lock directory left behind, dated `at`. */
  const leaveLock = (path: string, at: Date): void => {
    mkdirSync(`${path}.lock`);
    utimesSync(`${path}.lock`, at, at);
  };

  it('when a lock was left by a process killed right after taking it then the next change waits it out', async () => {
    const path = join(freshHome(), 'contacts.json');
    mkdirSync(join(path, '..'), { mode: 0o700 });
    leaveLock(path, new Date(Date.now() + 1000)); // proper-lockfile dates a new lock up to a second ahead
    await expect(updateText(path, write('saved\n'), fast)).resolves.toBe('saved\n');
    expect(readFileSync(path, 'utf8')).toBe('saved\n');
    expect(existsSync(`${path}.lock`)).toBe(false);
  });

  it.each([
    ['a minute ago', -60_000],
    ['an hour ahead (a clock set back since)', 3_600_000],
  ])('when a lock left behind is dated %s then it clears', async (_, offset) => {
    const path = join(freshHome(), 'contacts.json');
    mkdirSync(join(path, '..'), { mode: 0o700 });
    leaveLock(path, new Date(Date.now() + offset));
    await expect(updateText(path, write('saved\n'), fast)).resolves.toBe('saved\n');
    expect(existsSync(`${path}.lock`)).toBe(false);
  });

  it('when a live holder keeps the lock then the wait ends in one line naming the lock to remove', async () => {
    const path = join(freshHome(), 'contacts.json');
    const timing: LockTiming = { staleMs: 3000 }; // refreshed every 1.5 s: never stale while held
    let held = (): void => {};
    const holding = new Promise<void>((resolve) => (held = resolve));
    let finish = (): void => {};
    const gate = new Promise<void>((resolve) => (finish = resolve));
    const holder = updateText(
      path,
      async () => {
        held();
        await gate;
        return { text: 'first\n', result: null };
      },
      timing,
    );
    await holding;
    await expect(updateText(path, write('second\n'), timing)).rejects.toMatchObject({
      code: 'ERR_STORE_LOCKED',
      message: `${path} stayed locked for 9 s by another lanchat process; if none is running, remove the lock: rmdir ${path}.lock`,
    });
    finish();
    await holder;
    expect(readFileSync(path, 'utf8')).toBe('first\n');
  });

  it('when the holder was held up past the stale limit and lost the lock then it is one error, not a crash, and nothing is written', async () => {
    const path = join(freshHome(), 'contacts.json');
    let held = (): void => {};
    const holding = new Promise<void>((resolve) => (held = resolve));
    const update = updateText(
      path,
      async () => {
        held();
        await update.catch(() => {}); // held up until the lock is lost
        return { text: 'too late\n', result: null };
      },
      fast,
    );
    await holding;
    // Another process took the stale lock over: the lock's date is no longer the holder's.
    const lock = `${path}.lock`;
    const now = Date.now();
    const takenOver = new Date(now === statSync(lock).mtimeMs ? now - 1 : now); // a fresh lock, not the holder's
    utimesSync(lock, takenOver, takenOver);
    await expect(update).rejects.toMatchObject({
      code: 'ERR_STORE_LOCK_LOST',
      message: `lost the lock ${lock} (held up for over 2 s, or removed): ${path} may not have this change; check it and try again`,
    });
    // The next change, once the lock the holder left has gone stale, finds nothing written by the holder.
    await expect(updateText(path, (text) => ({ text: 'next\n', result: text }), fast)).resolves.toBeNull();
  });
});

describe('files as people edit them', () => {
  it.each([
    ['{\n  "a": 1\n  "b": 2\n}', "not valid JSON at line 3, column 3: expected ',' or '}' after property value"],
    ['{"a":', 'not valid JSON at line 1, column 6: unexpected end of JSON input'],
    ['\uFEFF{\n\tx', "not valid JSON at line 2, column 2: expected property name or '}'"],
  ])('bad JSON %j says line and column on one line', (text, message) => {
    expect(() => parseStoreJson(text)).toThrow(new Error(message));
  });

  it('a UTF-8 BOM is skipped and an empty file is nothing saved, in config.json and known-peers.json too', async () => {
    const env = { LANCHAT_HOME: mkdtempSync(join(tmpdir(), 'lanchat-bom-')) };
    writeFileSync(join(env.LANCHAT_HOME, 'config.json'), '\uFEFF{"nick":"zoë"}');
    writeFileSync(join(env.LANCHAT_HOME, 'known-peers.json'), '');
    expect(await savedNick(env)).toBe('zoë');
    expect(await loadKeyBook(env)).toEqual({ contacts: [], peers: {} });
    writeFileSync(join(env.LANCHAT_HOME, 'config.json'), '\n');
    expect(await savedNick(env)).toBeUndefined();
    writeFileSync(join(env.LANCHAT_HOME, 'config.json'), '{\n"nick": }');
    await expect(savedNick(env)).rejects.toThrow(
      /config\.json: not valid JSON at line 2, column 9: unexpected token '\}'; fix or remove the file$/,
    );
  });
});
