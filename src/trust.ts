// Whose key is whose. Pins live in two places: a contact's `fingerprint`, and
// known-peers.json (dialled address → fingerprint) for peers that are not
// contacts; for one address the contact wins. The connector checks the key a
// listener presents against the pin for the address it dialled (trust on first
// use, like ssh's accept-new), and pins a new key once the listener has proved
// to be lanchat. The listener cannot pin by address (client ports change): it
// recognises a connector's key. Both sides check the nick the other claims,
// look-alikes (Unicode confusables) included.
import { statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { isIP } from 'node:net';
import { dirname } from 'node:path';
import { PORT_RULE, formatAddress, normalizeHost, parseAddress, parsePort } from './address.js';
import { CONTACTS_FILE, findContact, loadContacts, updateContacts, type Contact } from './contacts.js';
import { LanchatError, usageError } from './errors.js';
import { normalizeFingerprint, shortFingerprint } from './fingerprint.js';
import { corruptFile, parseStoreJson, readText, storePath, updateText } from './store.js';

const KNOWN_PEERS_FILE = 'known-peers.json';

/**
 * unhomoglyph: Unicode's confusables.txt (UTS #39) as a map to prototypes.
 * Loaded at the first nick checked (its table and regular expression take
 * ~25 ms), not at every start.
 */
let prototypes: ((text: string) => string) | null = null;
function toPrototypes(text: string): string {
  prototypes ??= createRequire(import.meta.url)('unhomoglyph') as (text: string) => string;
  return prototypes(text);
}

interface KnownPeers {
  version: 1;
  peers: Record<string, string>;
}

function parseKnownPeers(text: string | null, path: string): KnownPeers {
  if (text === null) return { version: 1, peers: {} };
  try {
    const data = (parseStoreJson(text) ?? { version: 1, peers: {} }) as KnownPeers;
    if (data.version !== 1 || typeof data.peers !== 'object' || data.peers === null || Array.isArray(data.peers))
      throw new Error('not a known-peers file');
    const peers: Record<string, string> = {};
    for (const [address, value] of Object.entries(data.peers)) {
      const fingerprint = typeof value === 'string' ? normalizeFingerprint(value) : null;
      if (!fingerprint) throw new Error(`the key of ${address} is not 32 bytes in hex`);
      peers[address] = fingerprint;
    }
    return { version: 1, peers };
  } catch (error) {
    throw corruptFile('ERR_KNOWN_PEERS_CORRUPT', path, (error as Error).message);
  }
}

/** Every pin this install holds. */
export interface KeyBook {
  contacts: Contact[];
  /** Dialled address (see pinAddress) → fingerprint. */
  peers: Record<string, string>;
}

export async function loadKeyBook(env: NodeJS.ProcessEnv): Promise<KeyBook> {
  const path = storePath(env, KNOWN_PEERS_FILE);
  const [contacts, text] = await Promise.all([loadContacts(storePath(env, CONTACTS_FILE)), readText(path)]);
  return { contacts, peers: parseKnownPeers(text, path).peers };
}

/** What a path was when looked at (null: nothing there), and when it was last modified. */
interface Stamp {
  key: string | null;
  mtimeMs: number;
}

function stampOf(path: string): Stamp {
  let stats;
  try {
    stats = statSync(path, { bigint: true, throwIfNoEntry: false });
  } catch {
    return { key: 'unreadable', mtimeMs: Date.now() }; // never settled: reading says what is wrong
  }
  if (!stats) return { key: null, mtimeMs: 0 };
  const { dev, ino, size, mode, uid, mtimeNs, ctimeNs } = stats;
  return { key: `${dev}:${ino}:${size}:${mode}:${uid}:${mtimeNs}:${ctimeNs}`, mtimeMs: Number(mtimeNs / 1_000_000n) };
}

/** A change of a file this recent may not have moved its times yet (they tick coarsely): it is read again. */
const SETTLE_MS = 1000;

/**
 * The key book as it is now, for a listener, which consults it for every TLS
 * connection: reading it (two files and their checks, see store.ts) took more
 * CPU than the TLS handshake itself. It is read again only when the files or
 * their directory changed: another inode (lanchat saves by renaming a new
 * file into place), size, times, mode or owner — or when one of them had
 * changed within SETTLE_MS before it was read, since a second change that
 * soon may leave all of these as they were (git's "racily clean" index).
 */
export class KeyBookReader {
  readonly #paths: string[];
  readonly #env: NodeJS.ProcessEnv;
  #read: { stamps: Stamp[]; settled: boolean; book: KeyBook } | null = null;

  constructor(env: NodeJS.ProcessEnv) {
    this.#env = env;
    const contacts = storePath(env, CONTACTS_FILE);
    this.#paths = [dirname(contacts), contacts, storePath(env, KNOWN_PEERS_FILE)];
  }

  async load(): Promise<KeyBook> {
    const now = Date.now();
    // Before reading: a change made while we read shows as a different stamp next time.
    const stamps = this.#paths.map(stampOf);
    const read = this.#read;
    if (read?.settled && stamps.every((stamp, i) => stamp.key === read.stamps[i].key)) return read.book;
    this.#read = null;
    const book = await loadKeyBook(this.#env);
    this.#read = { stamps, settled: stamps.every((stamp) => now - stamp.mtimeMs > SETTLE_MS), book };
    return book;
  }
}

/** Applies `change` to the known peers under the store's lock; it returns false when there is nothing to save. */
function updateKnownPeers(env: NodeJS.ProcessEnv, change: (peers: Record<string, string>) => boolean): Promise<boolean> {
  const path = storePath(env, KNOWN_PEERS_FILE);
  return updateText(path, (text) => {
    const data = parseKnownPeers(text, path);
    const changed = change(data.peers);
    return { text: changed ? `${JSON.stringify(data, null, 2)}\n` : null, result: changed };
  });
}

/** The key of an address in known-peers.json: host names and IPv6 compared without regard to case. */
function pinAddress(host: string, port: number): string {
  return formatAddress((normalizeHost(host) ?? host).toLowerCase(), port);
}

/** The contacts at an address, by the same comparison. */
function contactsAtAddress(contacts: readonly Contact[], host: string, port: number): Contact[] {
  const wanted = pinAddress(host, port);
  return contacts.filter((contact) => pinAddress(contact.host, contact.port) === wanted);
}

/** A listener as dialled: the host as typed, and the contact it was dialled by, if any. */
export interface Dialled {
  host: string;
  port: number;
  contact?: string;
}

/**
 * A key in a warning, in both of its forms: the hex that `lanchat id`'s first
 * line and the pin files hold, and the digits the session lines show.
 */
function keyLines(label: string, fingerprint: string): string {
  return `  ${label.padEnd(9)} ${fingerprint}\n            ${shortFingerprint(fingerprint)}`;
}

function keyChanged(who: string, expected: string, presented: string, forget: string): LanchatError {
  return new LanchatError(
    'ERR_KEY_CHANGED',
    `WARNING: ${who} presented a different key than before (someone may be in the middle)\n` +
      `${keyLines('expected', expected)}\n${keyLines('presented', presented)}\n` +
      `nothing was sent. If the peer really has a new key: lanchat forget ${forget}`,
  );
}

/** What the connector's check of a listener's key found (see checkListenerKey). */
export interface ListenerKeyCheck {
  /** Nothing was pinned for what was dialled. */
  isNew: boolean;
  /** Where the pin is (or goes): "pinned in contact bob", "pinned in known peers". */
  note: string;
  /** What `lanchat forget` takes to drop it. */
  forget: string;
  /** The contact dialled (by name, or the one at the address dialled), if any. */
  contact?: string;
  /** The pins the key was checked against (to check the nick the listener claims next, without reading them again). */
  book: KeyBook;
  /**
   * Writes the pin if there is one to write — only once the listener has
   * proved to be lanchat (its hello arrived), so that another TLS service on
   * that port is never pinned. Throws ERR_KEY_CHANGED if another process
   * pinned another key meanwhile.
   */
  pin: () => Promise<void>;
}

/**
 * Connector: trust on first use for the listener it dialled. The pin for an
 * address is a contact's there (the one dialled by name first), else the one
 * in known-peers.json. A matching key is fine; a different one is refused
 * (thrown) before anything is exchanged; a new one is to be pinned by `pin()`
 * — in the contact when there is one (moving a known-peers pin there too),
 * else in known-peers.json.
 */
export async function checkListenerKey(env: NodeJS.ProcessEnv, dialled: Dialled, fingerprint: string): Promise<ListenerKeyCheck> {
  const address = pinAddress(dialled.host, dialled.port);
  const book = await loadKeyBook(env);
  const at = contactsAtAddress(book.contacts, dialled.host, dialled.port);
  const named = dialled.contact === undefined ? undefined : findContact(book.contacts, dialled.contact);
  const keeper = named ?? at[0]; // where a new pin goes
  const holder = [keeper, ...at].find((contact) => contact?.fingerprint); // a contact's pin wins
  const who = keeper ? `${keeper.name} (${address})` : address;
  const known = book.peers[address];
  const pinned = holder?.fingerprint ?? known;
  if (pinned !== undefined && pinned !== fingerprint) throw keyChanged(who, pinned, fingerprint, holder?.name ?? address);
  const pin = async (): Promise<void> => {
    if (keeper && !keeper.fingerprint) {
      // Under the locks: another process may have pinned it meanwhile.
      const kept = await updateContacts(storePath(env, CONTACTS_FILE), (contacts) => {
        const current = findContact(contacts, keeper.name);
        if (!current || current.fingerprint) return { contacts: null, result: current?.fingerprint ?? fingerprint };
        current.fingerprint = fingerprint;
        return { contacts, result: fingerprint };
      });
      if (kept !== fingerprint) throw keyChanged(who, kept, fingerprint, keeper.name);
      if (known !== undefined) await updateKnownPeers(env, (peers) => Object.hasOwn(peers, address) && delete peers[address]);
    } else if (!keeper && pinned === undefined) {
      let kept = fingerprint;
      await updateKnownPeers(env, (peers) => {
        if (Object.hasOwn(peers, address)) {
          kept = peers[address]!; // pinned by another process meanwhile
          return false;
        }
        peers[address] = fingerprint;
        return true;
      });
      if (kept !== fingerprint) throw keyChanged(who, kept, fingerprint, address);
    }
  };
  const note = keeper ? `pinned in contact ${keeper.name}` : 'pinned in known peers';
  return { isNew: pinned === undefined, note, forget: keeper?.name ?? address, contact: keeper?.name, book, pin };
}

/** Listener: whose key this is — "contact bob", "known peer 10.0.0.4:5000" — or null for a new key. */
export function whoseKey(book: KeyBook, fingerprint: string): string | null {
  const contact = book.contacts.find((c) => c.fingerprint === fingerprint);
  if (contact) return `contact ${contact.name}`;
  const address = Object.keys(book.peers).find((a) => book.peers[a] === fingerprint);
  return address ? `known peer ${address}` : null;
}

/**
 * A name as it looks, for telling look-alikes apart: the confusable skeleton
 * of UTS #39 (NFD, each character mapped to its prototype by Unicode's
 * confusables.txt, NFD again), taken of the name in compatibility form (NFKC:
 * fullwidth letters are letters) and without regard to case.
 */
export function nameSkeleton(name: string): string {
  const folded = name.normalize('NFKC').toLowerCase();
  return toPrototypes(folded.normalize('NFD')).normalize('NFD').toLowerCase();
}

/** Same name, as contacts compare names (NFC, case). */
const sameName = (a: string, b: string): boolean => a.normalize('NFC').toLowerCase() === b.normalize('NFC').toLowerCase();

/** A nick as typed, and with every character beyond ASCII as its code point, to show what differs. */
function spelled(nick: string): string {
  if (/^[\x20-\x7e]*$/.test(nick)) return nick;
  const escaped = [...nick].map((char) => {
    const code = char.codePointAt(0)!;
    return code < 0x80 ? char : code < 0x10000 ? `\\u${code.toString(16).padStart(4, '0')}` : `\\u{${code.toString(16)}}`;
  });
  return `${nick} (${escaped.join('')})`;
}

/** Who is looking at a peer's claim: our nick, and our key (a peer with our very key is this install: ourselves). */
export interface Us {
  nick: string;
  fingerprint: string | null;
}

/**
 * A peer that claims a nick which is, or looks like (nameSkeleton), our own
 * (`us`) or a contact's may be passing itself off as us or as that contact.
 * A contact's name is fine with the contact's own key, and its very name is
 * fine when no key of the contact's is pinned (nothing to compare); a
 * look-alike is not. `dialled`: the contact a connector dialled, whose key it
 * checked already. Returns the warning, or null.
 */
export function impostorWarning(book: KeyBook, nick: string, fingerprint: string | null, us?: Us, dialled?: string): string | null {
  // The nick's skeleton only once there is a name to compare it with: a connector with no contacts never loads unhomoglyph.
  let looks: string | null = null;
  const looksLike = (name: string): boolean => nameSkeleton(name) === (looks ??= nameSkeleton(nick));
  const ourselves = fingerprint !== null && fingerprint === us?.fingerprint; // two terminals of one install
  if (us && !ourselves && looksLike(us.nick)) {
    const own = us.nick;
    const which = sameName(nick, own) ? 'your own nick' : `a look-alike of your own nick ${own}`;
    return `WARNING: the peer calls itself ${spelled(nick)}, ${which}: its messages may pass for yours`;
  }
  const exact = findContact(book.contacts, nick);
  const contact = exact ?? book.contacts.find((c) => looksLike(c.name) && !(dialled !== undefined && sameName(c.name, dialled)));
  if (!contact || (dialled !== undefined && sameName(contact.name, dialled))) return null;
  if (contact.fingerprint === fingerprint || (exact && !contact.fingerprint)) return null;
  const presented = fingerprint ? keyLines('presented', fingerprint) : '  presented no key (not encrypted)';
  const keys = contact.fingerprint ? `\n${keyLines('expected', contact.fingerprint)}\n${presented}` : '';
  const claim = exact
    ? `${nick}, but its key is not contact ${contact.name}'s`
    : `${spelled(nick)}, a look-alike of contact ${contact.name}`;
  return `WARNING: the peer calls itself ${claim}: it may not be ${contact.name}${keys}`;
}

/**
 * Why `forget` cannot use TARGET. What can only be meant as an address (an IP,
 * a colon, a bracket) but is not HOST:PORT is a usage error; a plain word is a
 * name that is not (or no longer) a contact.
 */
function badForgetTarget(target: string): LanchatError {
  const neither = `"${target}" is neither a contact nor HOST:PORT (write IPv6 as [::1]:5000)`;
  const port = /^(?:\[[^\]]*\]|[^:[\]]+):(\d+)$/.exec(target)?.[1];
  if (port !== undefined && parsePort(port) === null) return usageError(`invalid port "${port}" in "${target}": ${PORT_RULE}`);
  if (isIP(target) === 4) return usageError(`"${target}" has no port: write HOST:PORT (${target}:5000)`);
  if (isIP(target) === 6 || /[:[\]]/.test(target)) return usageError(neither);
  return new LanchatError('ERR_FORGET_TARGET', neither);
}

/**
 * `lanchat forget TARGET`: drops every pin of a contact (by name) or of an
 * address (HOST:PORT): the contacts' there and the known-peers entry. Resolves
 * to what was forgotten, for the user to read; empty if nothing was pinned.
 */
export async function forget(env: NodeJS.ProcessEnv, target: string): Promise<string[]> {
  const forgotten: string[] = [];
  let address = parseAddress(target);
  await updateContacts(storePath(env, CONTACTS_FILE), (contacts) => {
    const named = findContact(contacts, target);
    if (named) address = { host: named.host, port: named.port };
    else if (!address) throw badForgetTarget(target);
    const pinned = (address ? contactsAtAddress(contacts, address.host, address.port) : []).filter((c) => c.fingerprint);
    for (const contact of pinned) {
      delete contact.fingerprint;
      forgotten.push(`contact ${contact.name}`);
    }
    return { contacts: pinned.length > 0 ? contacts : null, result: undefined };
  });
  if (address) {
    const key = pinAddress(address.host, address.port);
    if (await updateKnownPeers(env, (peers) => Object.hasOwn(peers, key) && delete peers[key])) forgotten.push(key);
  }
  return forgotten;
}
