// Where lanchat keeps its files, and the one safe way to change them: a
// cross-process lock around read-modify-write, and atomic replacement, so that
// concurrent commands never lose each other's changes and a crash never leaves
// half a file.
import fs from 'node:fs';
import { chmod, mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import envPaths from 'env-paths';
import lockfile from 'proper-lockfile';
import writeFileAtomic from 'write-file-atomic';
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

/** Reads a file's text, or null when it does not exist yet. */
export async function readText(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new LanchatError('ERR_STORE', `cannot read ${path}: ${fsProblem(error)}`);
  }
}

/** The lock is a directory beside the file (proper-lockfile's mkdir), made private like the rest. */
const lockFs = { ...fs, mkdir: (path: string, callback: fs.NoParamCallback) => fs.mkdir(path, DIR_MODE, callback) };

const LOCK_OPTIONS = {
  realpath: false, // the file may not exist yet
  fs: lockFs,
  stale: 10_000,
  retries: { retries: 100, minTimeout: 10, maxTimeout: 100, randomize: true },
};

/**
 * Reads `path`, lets `change` compute the new text (or null to leave the file
 * alone), and writes it atomically, all under a lock shared with every other
 * lanchat process. Resolves to what `change` returned.
 */
export async function updateText<T>(path: string, change: (text: string | null) => { text: string | null; result: T }): Promise<T> {
  await makeStoreDir(path);
  let release: () => Promise<void>;
  try {
    release = await lockfile.lock(path, LOCK_OPTIONS);
  } catch (error) {
    const { code } = error as NodeJS.ErrnoException;
    throw code === 'ELOCKED'
      ? new LanchatError('ERR_STORE_LOCKED', `${path} is locked by another lanchat process; try again`)
      : new LanchatError('ERR_STORE', `cannot lock ${path}: ${fsProblem(error)}`);
  }
  try {
    const { text, result } = change(await readText(path));
    if (text !== null) {
      await writeFileAtomic(path, text, { encoding: 'utf8', fsync: true, mode: FILE_MODE }).catch((error: Error) => {
        throw new LanchatError('ERR_STORE', `cannot write ${path}: ${fsProblem(error)}`);
      });
    }
    return result;
  } finally {
    await release().catch(() => {});
  }
}
