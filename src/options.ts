// Options shared by the commands that start a session (listen, connect), their
// parsers, and how their defaults are resolved from the environment.
import { userInfo } from 'node:os';
import { resolve } from 'node:path';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { parsePort as portOf } from './address.js';
import { EXIT_FAILURE, EXIT_OK, LanchatError, usageError } from './errors.js';
import { normalizeFingerprint, spokenFingerprint } from './fingerprint.js';
import { DEFAULT_MAX_LINE, NICK_RULE, isValidNick } from './protocol.js';
import { FORMATS, type Format } from './terminal.js';
import { openLog } from './transcript.js';
import type { ChatIO, ChatOptions } from './chat.js';
import type { Role } from './session.js';

/** What every command gets from cli.ts instead of touching `process`. */
export interface CliContext extends ChatIO {
  env: NodeJS.ProcessEnv;
  /** Our effective user id, where there is one: --log appends only to our own files. */
  uid?: number;
}

/**
 * LANCHAT_MDNS=off: lanchat sends and listens to no multicast DNS at all (no
 * announcing, no looking for people nearby), whatever the command line says.
 */
export function mdnsAllowed(env: NodeJS.ProcessEnv): boolean {
  return env.LANCHAT_MDNS?.toLowerCase() !== 'off';
}

/** Refused when LANCHAT_MDNS=off (see mdnsAllowed). */
export function mdnsOff(what: string): LanchatError {
  return new LanchatError('ERR_MDNS_OFF', `${what}: multicast DNS is off here (LANCHAT_MDNS=off)`);
}

/** How a chat's last steps went, once it is closed. */
export interface ChatEnd {
  /** False when --log could not be written completely. */
  logComplete?: boolean;
}

/** A session that went well is still a failure (1) when its log stopped short. */
export function withLog(code: number, end: ChatEnd): number {
  return code === EXIT_OK && end.logComplete === false ? EXIT_FAILURE : code;
}

function integer(value: string, min: number, max: number, what: string): number {
  const n = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max)
    throw new InvalidArgumentError(`${what} must be a whole number from ${min} to ${max}.`);
  return n;
}

export function parsePort(value: string): number {
  const port = portOf(value);
  if (port === null) throw new InvalidArgumentError('a port must be a whole number from 1 to 65535.');
  return port;
}

/** For listen: 0 asks the system for any free port. */
export function parseListenPort(value: string): number {
  const port = portOf(value, { listen: true });
  if (port === null) throw new InvalidArgumentError('a port must be a whole number from 0 to 65535.');
  return port;
}

export function parseCount(value: string): number {
  return integer(value, 0, 1000, 'the count');
}

/** `a,b,c` → ['a','b','c'] (blank items dropped). */
export function parseList(value: string): string[] {
  const items = value
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean);
  if (items.length === 0) throw new InvalidArgumentError('give at least one item.');
  return items;
}

export function parseFingerprint(value: string): string {
  const fingerprint = normalizeFingerprint(value);
  if (!fingerprint) throw new InvalidArgumentError('a fingerprint is 32 bytes in hex, as `lanchat id` prints it (AB:CD:…).');
  return fingerprint;
}

/** The digit groups `lanchat id` prints for reading aloud (8 groups of 5), on one line, or null. */
export function normalizeSpoken(text: string): string | null {
  const groups = text.trim().split(/[\s-]+/);
  return groups.length === 8 && groups.every((group) => /^\d{5}$/.test(group)) ? groups.join(' ') : null;
}

/** A key to demand: the fingerprint (canonical), or the digit groups read aloud from `lanchat id`. */
export function parseFingerprintOrDigits(value: string): string {
  const fingerprint = normalizeFingerprint(value) ?? normalizeSpoken(value);
  if (!fingerprint)
    throw new InvalidArgumentError(
      'a fingerprint is 32 bytes in hex (AB:CD:…) or the 8 groups of 5 digits below it, as `lanchat id` prints them.',
    );
  return fingerprint;
}

/** Whether a presented key is the one demanded (as parseFingerprintOrDigits gives it). */
export function isFingerprint(fingerprint: string, demanded: string): boolean {
  return fingerprint === demanded || spokenFingerprint(fingerprint).replace('\n', ' ') === demanded;
}

export function parseSeconds(value: string): number {
  const n = /^\d+(\.\d+)?$/.test(value) ? Number(value) : NaN;
  if (!(n > 0 && n <= 86_400)) throw new InvalidArgumentError('seconds must be a number above 0 and at most 86400.');
  return n;
}

/** --alive: 0 turns heartbeats off; a limit under a second would take a live peer for lost. */
export function parseAlive(value: string): number {
  const n = /^\d+(\.\d+)?$/.test(value) ? Number(value) : NaN;
  if (!(n === 0 || (n >= 1 && n <= 86_400))) throw new InvalidArgumentError('seconds must be 0 (off) or a number from 1 to 86400.');
  return n;
}

function parseMaxLine(value: string): number {
  return integer(value, 1, 64 * 1024 * 1024, 'the line limit (bytes)');
}

export function parseNick(value: string): string {
  if (!isValidNick(value)) throw new InvalidArgumentError(`${NICK_RULE}.`);
  return value;
}

/** A room's name follows the rule of nicks: one word, shown in every member's prompt line. */
export function parseRoomName(value: string): string {
  if (!isValidNick(value)) throw new InvalidArgumentError(`a room name is 1 to 32 characters, with no spaces or control characters.`);
  return value;
}

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1e3,
  kb: 1e3,
  m: 1e6,
  mb: 1e6,
  g: 1e9,
  gb: 1e9,
  t: 1e12,
  tb: 1e12,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  tib: 1024 ** 4,
};

/** A size in bytes: `500`, `100M`, `1.5GB`, `2GiB` (k, M, G, T count thousands; KiB, MiB… 1024s). */
export function parseSize(value: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(value.trim());
  const unit = match ? SIZE_UNITS[match[2].toLowerCase()] : undefined;
  const bytes = match && unit !== undefined ? Math.floor(Number(match[1]) * unit) : NaN;
  if (!Number.isSafeInteger(bytes) || bytes < 1)
    throw new InvalidArgumentError(
      'a size is a number of bytes, at least 1, with an optional unit: 500, 100M, 1.5G (powers of 1000), 2GiB (of 1024).',
    );
  return bytes;
}

export function parseMaxPeers(value: string): number {
  return integer(value, 1, 10_000, 'the number of members');
}

export interface SessionFlags {
  nick?: string;
  format?: Format;
  maxLine: number;
  wait: number;
  alive: number;
  commands?: boolean;
  log?: string;
}

/** Adds the options of every session to a command. */
export function addSessionOptions(command: Command): Command {
  return command
    .option('-n, --nick <name>', 'your nick (default: $LANCHAT_NICK, else `lanchat config nick`, else your user name)', parseNick)
    .addOption(
      new Option(
        '-f, --format <format>',
        'how messages are written: pretty, plain or json (default: pretty on a terminal, else plain)',
      ).choices(FORMATS),
    )
    .option('--max-line <bytes>', 'longest line to send or accept, in bytes of UTF-8', parseMaxLine, DEFAULT_MAX_LINE)
    .option(
      '--wait <seconds>',
      'at the end of piped input, how long to wait without progress for the peer to confirm every line',
      parseSeconds,
      10,
    )
    .option(
      '--alive <seconds>',
      'take the peer for lost after this long without a sign of life (0: never); see README, "A lost peer"',
      parseAlive,
      15,
    )
    .option('--commands', 'treat piped lines that start with / as slash commands (always on at a terminal)')
    .option('--log <file>', 'append the conversation to FILE as it happens');
}

/** Adds the options of commands that dial a peer (connect, chat). */
export function addConnectOptions(command: Command): Command {
  return addSessionOptions(
    command
      .option('-t, --timeout <seconds>', 'give up connecting (and waiting for the handshake) after this long', parseSeconds, 10)
      .option('-r, --retry <count>', 'try again this many times, a second apart, while nobody answers', parseCount, 0)
      .option('--raw', 'a byte pipe to netcat and the like (nc -l): no handshake, no encryption, any bytes')
      .option('--insecure', 'do not encrypt: the lanchat protocol in plaintext (the listener must allow it with listen --insecure)')
      .addOption(
        new Option(
          '--fingerprint <fp>',
          'demand exactly this listener key (as `lanchat id` prints it on its side: the fingerprint or its digit groups) instead of the pinned one',
        )
          .argParser(parseFingerprintOrDigits)
          .conflicts(['insecure', 'raw']),
      ),
  );
}

/** --nick, else $LANCHAT_NICK, else `lanchat config nick`, else the user name. */
async function resolveNick(flags: SessionFlags, env: NodeJS.ProcessEnv): Promise<string> {
  if (flags.nick !== undefined) return flags.nick;
  if (env.LANCHAT_NICK !== undefined) {
    if (!isValidNick(env.LANCHAT_NICK))
      throw usageError('LANCHAT_NICK is not a valid nick (1 to 32 characters, no spaces or control characters)');
    return env.LANCHAT_NICK;
  }
  const { savedNick } = await import('./settings.js'); // only when needed: it loads the store
  const saved = await savedNick(env);
  if (saved !== undefined) return saved;
  let name = '';
  try {
    name = userInfo().username;
  } catch {
    // no user name on this system: fall through
  }
  return isValidNick(name) ? name : 'anon';
}

/** Turns parsed flags and the environment into what a Chat needs. */
export async function chatOptions(
  flags: SessionFlags,
  ctx: CliContext,
  role: Role,
  extra: Partial<ChatOptions> = {},
): Promise<ChatOptions> {
  const interactive = ctx.stdin.isTTY === true;
  return {
    role,
    nick: await resolveNick(flags, ctx.env),
    maxLine: flags.maxLine,
    format: flags.format ?? (ctx.stdout.isTTY ? 'pretty' : 'plain'),
    interactive,
    commands: interactive || flags.commands === true,
    waitMs: flags.wait * 1000,
    aliveMs: flags.alive * 1000,
    // Opened now, before any peer is reached: a refused log is one line, and no session.
    log: flags.log === undefined ? undefined : openLog(resolve(ctx.cwd, flags.log), ctx.uid),
    // The address book loads only when /contact is used: a chat need not pay for it.
    saveContact: async (contact) => {
      const [{ CONTACTS_FILE, saveContact }, { storePath }] = await Promise.all([import('./contacts.js'), import('./store.js')]);
      await saveContact(storePath(ctx.env, CONTACTS_FILE), contact);
    },
    ...extra,
  };
}
