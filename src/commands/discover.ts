import { browse, matchNearby, type Nearby } from '../discovery.js';
import { EXIT_USAGE, LanchatError } from '../errors.js';
import { mdnsAllowed, mdnsOff, type CliContext } from '../options.js';
import { loadKeyBook, whoseKey, type KeyBook } from '../trust.js';

/** How long discover (and chat NAME, the start menu) listen for answers unless told. */
export const DISCOVER_SECONDS = 2;
/** chat NAME: once a match has answered, how long others that answer to the same name still may. */
const MORE_MATCHES_MS = 500;

export interface DiscoverFlags {
  timeout?: number;
  json?: boolean;
}

/** How the listener's key is known here: "contact alice", "known peer …", or "a new key". */
export function keyStatus(book: KeyBook, nearby: Nearby): string {
  return whoseKey(book, nearby.fingerprint) ?? 'a new key';
}

/** "(room dev, 4 people)" for a room's host, else "". */
function roomNote(nearby: Nearby): string {
  if (!nearby.room) return '';
  const size = nearby.room.size;
  return `(room ${nearby.room.name}${size === undefined ? '' : `, ${size} ${size === 1 ? 'person' : 'people'}`})`;
}

/** One line of the table a person reads: columns wide enough for the usual, a long field just pushes the rest. */
export function nearbyRow(book: KeyBook, nearby: Nearby): string {
  const pad = (text: string, width: number): string => text.padEnd(width);
  return `${pad(nearby.nick, 12)}  ${pad(nearby.host, 15)}  ${pad(String(nearby.port), 5)}  ${pad(keyStatus(book, nearby), 20)}  ${roomNote(nearby)}`.trimEnd();
}

/** The pins, to say how each key is known; a file that cannot be read says so once, and every key reads as new. */
export async function nearbyKeyBook(ctx: CliContext): Promise<KeyBook> {
  return loadKeyBook(ctx.env).catch((error: LanchatError) => {
    ctx.stderr.write(`lanchat: ${error.message}\n`);
    return { contacts: [], peers: {} };
  });
}

/** `lanchat discover`: the listeners nearby, as they answer. */
export async function discover(flags: DiscoverFlags, ctx: CliContext): Promise<number> {
  if (!mdnsAllowed(ctx.env)) throw mdnsOff('cannot look for people nearby');
  const seconds = flags.timeout ?? DISCOVER_SECONDS;
  const book = await nearbyKeyBook(ctx);
  const table = !flags.json && ctx.stdout.isTTY === true;
  const onFound = (nearby: Nearby): void => {
    if (flags.json) return;
    if (table) ctx.stdout.write(`${nearbyRow(book, nearby)}\n`);
    else ctx.stdout.write(`${nearby.nick}\t${nearby.host}\t${nearby.port}\t${nearby.fingerprint}\n`);
  };
  const found = await browse({ timeoutMs: seconds * 1000, signal: ctx.signal, onFound });
  if (flags.json) {
    const entries = found.map((nearby) => ({ ...nearby, key: keyStatus(book, nearby) }));
    ctx.stdout.write(`${JSON.stringify(entries, null, 2)}\n`);
  }
  if (found.length === 0) ctx.stderr.write(`nobody nearby announces lanchat (listened for ${seconds} s)\n`);
  return 0;
}

/**
 * The listeners nearby that answer to `name` (a nick or a room's name): all
 * that answer within the usual wait, or within a moment of the first match.
 */
export async function findNearby(name: string, ctx: CliContext): Promise<Nearby[]> {
  let timer: NodeJS.Timeout | undefined;
  const enough = new AbortController();
  const onAbort = (): void => enough.abort();
  ctx.signal.addEventListener('abort', onAbort);
  try {
    const found = await browse({
      timeoutMs: DISCOVER_SECONDS * 1000,
      signal: enough.signal,
      enough: (soFar) => {
        if (timer === undefined && matchNearby(soFar, name).length > 0) {
          timer = setTimeout(() => enough.abort(), MORE_MATCHES_MS);
        }
        return false;
      },
    });
    return matchNearby(found, name);
  } finally {
    clearTimeout(timer);
    ctx.signal.removeEventListener('abort', onAbort);
  }
}

/** Several listeners answer to one name: they are listed, and the person picks by address (exit 2). */
export function severalNearby(name: string, matches: readonly Nearby[], book: KeyBook): LanchatError {
  const list = matches.map((nearby) => `  ${nearbyRow(book, nearby)}`).join('\n');
  return new LanchatError(
    'ERR_SEVERAL_NEARBY',
    `${matches.length} listeners nearby answer to "${name}":\n${list}\npick one by its address: lanchat connect HOST PORT (or save it: lanchat contacts add NAME HOST PORT --fingerprint FP)`,
    EXIT_USAGE,
  );
}
