// Small settings kept beside the contacts (config.json): the default nick, and whether listeners announce themselves.
import { isValidNick } from './protocol.js';
import { corruptFile, parseStoreJson, readText, storePath, updateText } from './store.js';

const SETTINGS_FILE = 'config.json';

interface Settings {
  nick?: string;
  /** `lanchat config announce on`: every listener is announced on the local network (as with --announce). */
  announce?: boolean;
}

function parseSettings(text: string | null, path: string): Settings {
  if (text === null) return {};
  try {
    const data = parseStoreJson(text);
    if (data === null) return {};
    if (typeof data !== 'object' || data === null || Array.isArray(data)) throw new Error('expected a JSON object');
    const { nick } = data as { nick?: unknown };
    if (nick !== undefined && (typeof nick !== 'string' || !isValidNick(nick))) throw new Error('"nick" is not a valid nick');
    const { announce } = data as { announce?: unknown };
    if (announce !== undefined && typeof announce !== 'boolean') throw new Error('"announce" is not true or false');
    return data;
  } catch (error) {
    throw corruptFile('ERR_SETTINGS_CORRUPT', path, (error as Error).message);
  }
}

export async function savedNick(env: NodeJS.ProcessEnv): Promise<string | undefined> {
  const path = storePath(env, SETTINGS_FILE);
  return parseSettings(await readText(path), path).nick;
}

export function saveNick(env: NodeJS.ProcessEnv, nick: string): Promise<void> {
  const path = storePath(env, SETTINGS_FILE);
  return updateText(path, (text) => ({ text: `${JSON.stringify({ ...parseSettings(text, path), nick }, null, 2)}\n`, result: undefined }));
}

/** Forgets the default nick; resolves to the one that was saved, if any. */
export function unsetNick(env: NodeJS.ProcessEnv): Promise<string | undefined> {
  const path = storePath(env, SETTINGS_FILE);
  return updateText(path, (text) => {
    const { nick, ...rest } = parseSettings(text, path);
    return { text: nick === undefined ? null : `${JSON.stringify(rest, null, 2)}\n`, result: nick };
  });
}

export async function savedAnnounce(env: NodeJS.ProcessEnv): Promise<boolean | undefined> {
  const path = storePath(env, SETTINGS_FILE);
  return parseSettings(await readText(path), path).announce;
}

export function saveAnnounce(env: NodeJS.ProcessEnv, announce: boolean): Promise<void> {
  const path = storePath(env, SETTINGS_FILE);
  return updateText(path, (text) => ({
    text: `${JSON.stringify({ ...parseSettings(text, path), announce }, null, 2)}\n`,
    result: undefined,
  }));
}
