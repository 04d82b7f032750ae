// Where lanchat keeps its files, and the one safe way to change them: a
// cross-process lock around read-modify-write, and atomic replacement, so that
// concurrent commands never lose each other's changes and a crash never leaves
// half a file.
import fs from 'node:fs';
import { chmod, mkdir, open, stat } from 'node:fs/promises';
import { join } from 'node:path';
import envPaths from 'env-paths';
import type lockfile from 'proper-lockfile';
import type writeFileAtomic from 'write-file-atomic';
import { LanchatError } from './errors.js';

/** `$LANCHAT_HOME`, else the platform's config directory for lanchat. */
export function configDir(env: NodeJS.ProcessEnv): string {
  return env.LANCHAT_HOME || envPaths('lanchat', { suffix: '' }).config;
}

/**
 * A file of ours that does not read as it should: names the file and the
 * problem, and leaves it to the user (`more`: what else they should know).
 */
export function corruptFile(code: string, path: string, problem: string, more = ''): LanchatError {
  return new LanchatError(code, `${path}: ${problem}; fix or remove the file${more}`);
}

/**
 * The JSON of a store file, read as people edit it: a UTF-8 BOM (Windows
 * Notepad writes one) is skipped, and an empty file is null (nothing saved
 * yet, as when there is no file). Bad JSON throws an Error saying where, on
 * one line: V8's own message quotes the text, raw newlines and all.
 */
export function parseStoreJson(text: string): unknown {
  const body = text.replace(/^\uFEFF/, '');
  if (body.trim() === '') return null;
  try {
    return JSON.parse(body) as unknown;
  } catch (error) {
    const { message } = error as Error;
    const before = body.slice(0, badOffset(body, message)).split('\n');
    const why = message
      .replace(/,? ".*" is not valid JSON$/s, '')
      .replace(/ in JSON at position \d+.*$/s, '')
      .replace(/^\w/, (c) => c.toLowerCase());
    throw new Error(`not valid JSON at line ${before.length}, column ${before.at(-1)!.length + 1}: ${why}`, { cause: error });
  }
}

/**
 * Where JSON.parse gave up on `body`: the position V8 names, else (an
 * unexpected token, whose message names none) the end of the longest prefix
 * that is still fine so far; "unexpected end" is the end of the text.
 */
function badOffset(body: string, message: string): number {
  const named = /in JSON at position (\d+)/.exec(message);
  if (named) return Number(named[1]);
  const fineSoFar = (length: number): boolean => {
    try {
      JSON.parse(body.slice(0, length));
      return true;
    } catch (error) {
      const { message: why } = error as Error;
      return why.startsWith('Unexpected end') || Number(/in JSON at position (\d+)/.exec(why)?.[1]) >= length;
    }
  };
  if (fineSoFar(body.length)) return body.length;
  let [fine, bad] = [0, body.length];
  while (bad - fine > 1) {
    const middle = Math.floor((fine + bad) / 2);
    if (fineSoFar(middle)) fine = middle;
    else bad = middle;
  }
  return bad - 1;
}

export function storePath(env: NodeJS.ProcessEnv, file: string): string {
  return join(configDir(env), file);
}

/** What lanchat keeps is for its user alone, whatever the umask: the directory 0700, each file 0600. */
const DIR_MODE = 0o700;
const FILE_MODE = 0o600;

/** Creates the directory of `path` (and its parents) if missing, private to the user. */
export async function makeStoreDir(path: string): Promise<string> {
  const dir = join(path, '..');
  try {
    // mkdir's mode is cut by the umask; a directory we made is set exactly.
    if ((await mkdir(dir, { recursive: true, mode: DIR_MODE })) !== undefined) await chmod(dir, DIR_MODE);
  } catch (error) {
    throw new LanchatError('ERR_STORE', `cannot create ${dir}: ${fsProblem(error)}`);
  }
  return dir;
}

/** A file system error as a person reads it: "no space left on device", not "ENOSPC: …, write". */
export function fsProblem(error: unknown): string {
  const { message } = error as Error;
  return /^E[A-Z0-9]+: (.+?)(?:, \w+(?: '.*')?)?$/.exec(message)?.[1] ?? message;
}

/**
 * Like ssh's StrictModes: what lanchat reads here decides whom it trusts (the
 * pins, the contacts' addresses, its own key), so a directory or file that
 * another user owns, or that other users can write, is not used at all (POSIX
 * modes only). Root's own are fine: root can change anything anyway.
 */
function checkTrusted(stats: fs.Stats, path: string): void {
  const uid = process.getuid?.(); // who we are (a read: nothing of the process is changed)
  if (uid === undefined) return;
  const fix = stats.isDirectory() ? 'chmod 700' : 'chmod 600';
  if (stats.uid !== uid && stats.uid !== 0) {
    const what = stats.isDirectory() ? 'will not use it;' : 'will not trust it; remove it, or';
    throw new LanchatError(
      'ERR_STORE_UNSAFE',
      `${path} belongs to another user (uid ${stats.uid}): lanchat ${what} if it is yours: chown ${uid} ${path}`,
    );
  }
  if (stats.mode & 0o022) {
    const mode = (stats.mode & 0o777).toString(8).padStart(4, '0');
    throw new LanchatError(
      'ERR_STORE_UNSAFE',
      `${path} can be written by other users (mode ${mode}): lanchat will not trust what is in it; ${fix} ${path}`,
    );
  }
}

/** Checks the directory of a store file, if there is one yet (see checkTrusted). */
async function checkStoreDir(path: string): Promise<void> {
  const dir = join(path, '..');
  try {
    checkTrusted(await stat(dir), dir);
  } catch (error) {
    if (error instanceof LanchatError) throw error;
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new LanchatError('ERR_STORE', `cannot read ${dir}: ${fsProblem(error)}`);
  }
}

/**
 * Reads a store file's text, or null when it does not exist yet. Refuses a
 * file (or directory) another user could have put there: see checkTrusted.
 * The file checked is the file read (one open file), so it cannot be swapped between.
 */
export async function readText(path: string): Promise<string | null> {
  await checkStoreDir(path);
  let file: fs.promises.FileHandle;
  try {
    file = await open(path, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new LanchatError('ERR_STORE', `cannot read ${path}: ${fsProblem(error)}`);
  }
  try {
    checkTrusted(await file.stat(), path);
    return await file.readFile('utf8');
  } catch (error) {
    if (error instanceof LanchatError) throw error;
    throw new LanchatError('ERR_STORE', `cannot read ${path}: ${fsProblem(error)}`);
  } finally {
    await file.close();
  }
}

/** How long a lock may go without its holder refreshing it before another process takes it over. */
export interface LockTiming {
  /** proper-lockfile's `stale` (it takes 2 s at least); the holder refreshes the lock every half of it. */
  staleMs: number;
}

const LOCK_TIMING: LockTiming = { staleMs: 10_000 };

/**
 * The file system as proper-lockfile sees it: the lock is a directory beside
 * the file (its mkdir), made private like the rest; and a lock dated ahead of
 * now by more than the stale limit reads as stale. A live holder dates its
 * lock by this machine's clock (up to a second ahead: proper-lockfile rounds
 * up where mtimes have whole seconds) and refreshes it every stale/2, so such a
 * date was not written by one (a clock set back since, a copied directory);
 * proper-lockfile compares only with the past, and the lock would never clear.
 * A lock dated ahead by less clears once that much older: within 2 × stale.
 */
function lockFileSystem(staleMs: number): object {
  return {
    ...fs,
    mkdir: (path: string, callback: fs.NoParamCallback) => fs.mkdir(path, DIR_MODE, callback),
    stat: (path: string, callback: (error: NodeJS.ErrnoException | null, stats?: fs.Stats) => void) =>
      fs.stat(path, (error, stats) => {
        if (error || stats.mtimeMs <= Date.now() + staleMs) return callback(error, stats);
        callback(null, Object.create(stats, { mtime: { value: new Date(0) } }) as fs.Stats);
      }),
  };
}

function lockOptions(timing: LockTiming, onCompromised: (error: Error) => void): lockfile.LockOptions {
  // Waits longer than it takes any lock not kept fresh to clear (2 × stale, see lockFileSystem): a lock
  // left by a killed process never makes the next command fail. 100 ms a try once past the first few.
  const waitMs = 3 * timing.staleMs;
  return {
    realpath: false, // the file may not exist yet
    fs: lockFileSystem(timing.staleMs),
    stale: timing.staleMs,
    retries: { retries: Math.ceil(waitMs / 100) + 4, minTimeout: 10, maxTimeout: 100, randomize: true },
    // proper-lockfile throws it from a timer by default: a crash with a stack trace.
    onCompromised,
  };
}

/**
 * proper-lockfile and write-file-atomic, loaded by the first change of a store
 * file: with their dependencies they take 20–30 ms to load, which a command
 * that only reads the store (most sessions) would pay at every start.
 */
let writers: Promise<{ lock: typeof lockfile.lock; writeFileAtomic: typeof writeFileAtomic }> | null = null;

function loadWriters(): NonNullable<typeof writers> {
  writers ??= Promise.all([import('proper-lockfile'), import('write-file-atomic')]).then(([locking, atomic]) => ({
    lock: locking.default.lock,
    writeFileAtomic: atomic.default,
  }));
  return writers;
}

/** What a change of a store file returns: the new text (null: leave the file alone), and a result for the caller. */
export interface TextChange<T> {
  text: string | null;
  result: T;
}

/**
 * Reads `path`, lets `change` compute the new text (or null to leave the file
 * alone), and writes it atomically, all under a lock shared with every other
 * lanchat process. Resolves to what `change` returned. A lock this process
 * loses meanwhile (held up past the stale limit, and taken over) ends it at
 * once with an error, and nothing is written after that. `timing`: for tests.
 */
export async function updateText<T>(
  path: string,
  change: (text: string | null) => TextChange<T> | Promise<TextChange<T>>,
  timing: LockTiming = LOCK_TIMING,
): Promise<T> {
  await makeStoreDir(path);
  await checkStoreDir(path); // made by us now, or there already: in either case, ours alone
  const { lock, writeFileAtomic } = await loadWriters();
  const lockPath = `${path}.lock`;
  let lost = false;
  let onLost: (error: LanchatError) => void = () => {};
  const lockLost = new Promise<never>((_, reject) => (onLost = reject));
  lockLost.catch(() => {}); // lost only after we were done: nothing left to tell
  const onCompromised = (): void => {
    lost = true;
    onLost(
      new LanchatError(
        'ERR_STORE_LOCK_LOST',
        `lost the lock ${lockPath} (held up for over ${timing.staleMs / 1000} s, or removed): ${path} may not have this change; check it and try again`,
      ),
    );
  };
  let release: () => Promise<void>;
  try {
    release = await lock(path, lockOptions(timing, onCompromised));
  } catch (error) {
    const { code } = error as NodeJS.ErrnoException;
    throw code === 'ELOCKED'
      ? new LanchatError(
          'ERR_STORE_LOCKED',
          `${path} stayed locked for ${(3 * timing.staleMs) / 1000} s by another lanchat process; if none is running, remove the lock: rmdir ${lockPath}`,
        )
      : new LanchatError('ERR_STORE', `cannot lock ${path} (${lockPath}): ${fsProblem(error)}`);
  }
  const work = (async (): Promise<T> => {
    const { text, result } = await change(await readText(path));
    if (lost) return result; // told already (below); another process may own the file now
    if (text !== null) {
      await writeFileAtomic(path, text, { encoding: 'utf8', fsync: true, mode: FILE_MODE }).catch((error: Error) => {
        throw new LanchatError('ERR_STORE', `cannot write ${path}: ${fsProblem(error)}`);
      });
    }
    return result;
  })();
  try {
    return await Promise.race([work, lockLost]);
  } finally {
    work.catch(() => {}); // lost the lock first: its end no longer matters
    await release().catch(() => {});
  }
}
