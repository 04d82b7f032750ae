// Whose key is whose. Pins live in two places: a contact's `fingerprint`, and
// known-peers.json (dialled address → fingerprint) for peers that are not
// contacts; for one address the contact wins. The connector checks the key a
// listener presents against the pin for the address it dialled (trust on first
// use, like ssh's accept-new). The listener cannot pin by address (client ports
// change): it recognises a connector's key, and checks the nick it claims.
import { CONTACTS_FILE, contactsAt, findContact, loadContacts, normalizeHost, updateContacts, type Contact } from './contacts.js';
import { LanchatError } from './errors.js';
import { readText, storePath, updateText } from './store.js';
import { formatAddress } from './transport.js';

const KNOWN_PEERS_FILE = 'known-peers.json';

interface KnownPeers {
  version: 1;
  peers: Record<string, string>;
}

function parseKnownPeers(text: string | null, path: string): KnownPeers {
  if (text === null) return { version: 1, peers: {} };
  try {
    const data = JSON.parse(text) as KnownPeers;
    if (data.version !== 1 || typeof data.peers !== 'object' || data.peers === null) throw new Error('not a known-peers file');
    return data;
  } catch (error) {
    throw new LanchatError('ERR_KNOWN_PEERS_CORRUPT', `${path}: ${(error as Error).message}; fix or remove the file`);
  }
}

/** Every pin this install holds. */
export interface KeyBook {
  contacts: Contact[];
  /** Dialled address (`host:port`, `[v6]:port`) → fingerprint. */
  peers: Record<string, string>;
}

export async function loadKeyBook(env: NodeJS.ProcessEnv): Promise<KeyBook> {
  const path = storePath(env, KNOWN_PEERS_FILE);
  const [contacts, text] = await Promise.all([loadContacts(storePath(env, CONTACTS_FILE)), readText(path)]);
  return { contacts, peers: parseKnownPeers(text, path).peers };
}

function updateKnownPeers<T>(env: NodeJS.ProcessEnv, change: (peers: Record<string, string>) => T | null): Promise<T | null> {
  const path = storePath(env, KNOWN_PEERS_FILE);
  return updateText(path, (text) => {
    const data = parseKnownPeers(text, path);
    const result = change(data.peers);
    return { text: result === null ? null : `${JSON.stringify(data, null, 2)}\n`, result };
  });
}

/** A listener as dialled: the host as typed (normalised here), and the contact it was dialled by, if any. */
export interface Dialled {
  host: string;
  port: number;
  contact?: string;
}

function keyChanged(who: string, expected: string, presented: string, forget: string): LanchatError {
  return new LanchatError(
    'ERR_KEY_CHANGED',
    `WARNING: ${who} presented a different key than before (someone may be in the middle)\n` +
      `  expected  ${expected}\n  presented ${presented}\n` +
      `nothing was sent. If the peer really has a new key: lanchat forget ${forget}`,
  );
}

/**
 * Connector: trust on first use for the listener it dialled. A known key is
 * fine; a different one is refused (before anything is exchanged); a new one
 * is pinned — in the contact when there is one, else in known-peers.json.
 * Resolves to how the key is known, and whether it was new.
 */
export async function checkListenerKey(
  env: NodeJS.ProcessEnv,
  dialled: Dialled,
  fingerprint: string,
): Promise<{ isNew: boolean; note: string; forget: string }> {
  const host = normalizeHost(dialled.host) ?? dialled.host;
  const address = formatAddress(host, dialled.port);
  const book = await loadKeyBook(env);
  const at = contactsAt(book.contacts, host, dialled.port);
  const contact = dialled.contact ? findContact(book.contacts, dialled.contact) : (at.find((c) => c.fingerprint) ?? at[0]);
  const who = contact ? `${contact.name} (${address})` : address;
  if (contact?.fingerprint) {
    if (contact.fingerprint !== fingerprint) throw keyChanged(who, contact.fingerprint, fingerprint, contact.name);
    return { isNew: false, note: `pinned in contact ${contact.name}`, forget: contact.name };
  }
  const known = book.peers[address];
  if (known !== undefined && known !== fingerprint) throw keyChanged(who, known, fingerprint, address);
  if (contact) {
    // Pinned in the contact from now on (under the lock: another process may have pinned it meanwhile).
    const pinned = await updateContacts(storePath(env, CONTACTS_FILE), (contacts) => {
      const current = findContact(contacts, contact.name);
      if (!current || current.fingerprint) return { contacts: null, result: current?.fingerprint ?? fingerprint };
      current.fingerprint = fingerprint;
      return { contacts, result: fingerprint };
    });
    if (pinned !== fingerprint) throw keyChanged(who, pinned, fingerprint, contact.name);
    return { isNew: known === undefined, note: `pinned in contact ${contact.name}`, forget: contact.name };
  }
  if (known !== undefined) return { isNew: false, note: "pinned in known peers", forget: address };
  const pinned = await updateKnownPeers(env, (peers) => (peers[address] ??= fingerprint));
  if (pinned !== fingerprint) throw keyChanged(who, pinned!, fingerprint, address);
  return { isNew: true, note: "pinned in known peers", forget: address };
}

/** Listener: whose key this is — "contact bob", "known peer 10.0.0.4:5000" — or null for a new key. */
export function whoseKey(book: KeyBook, fingerprint: string): string | null {
  const contact = book.contacts.find((c) => c.fingerprint === fingerprint);
  if (contact) return `contact ${contact.name}`;
  const address = Object.keys(book.peers).find((a) => book.peers[a] === fingerprint);
  return address ? `known peer ${address}` : null;
}

/**
 * Listener: a connector whose nick names a contact with another pinned key
 * (or with none, over plaintext) may be an impostor. Returns the warning, or null.
 */
export function impostorWarning(book: KeyBook, nick: string, fingerprint: string | null): string | null {
  const contact = findContact(book.contacts, nick);
  if (!contact?.fingerprint || contact.fingerprint === fingerprint) return null;
  return (
    `WARNING: the peer calls itself ${nick}, but its key is not contact ${contact.name}'s: it may not be ${contact.name}\n` +
    `  expected  ${contact.fingerprint}\n  presented ${fingerprint ?? 'no key (not encrypted)'}`
  );
}

/** `HOST:PORT` or `[v6]:PORT` → the dialled form, or null. */
function parseAddress(text: string): { host: string; port: number } | null {
  const match = /^(.+):(\d{1,5})$/.exec(text);
  const host = match && normalizeHost(match[1]!);
  const port = match ? Number(match[2]) : NaN;
  return host && port >= 1 && port <= 65535 ? { host, port } : null;
}

/**
 * `lanchat forget TARGET`: drops the pinned key of a contact (by name), or
 * every pin for an address (known-peers and contacts there). Resolves to what
 * was forgotten, for the user to read; empty if nothing was pinned.
 */
export async function forget(env: NodeJS.ProcessEnv, target: string): Promise<string[]> {
  const forgotten: string[] = [];
  const address = parseAddress(target);
  const key = address ? formatAddress(address.host, address.port) : target;
  await updateContacts(storePath(env, CONTACTS_FILE), (contacts) => {
    const named = findContact(contacts, target);
    const pinned = (named ? [named] : address ? contactsAt(contacts, address.host, address.port) : []).filter((c) => c.fingerprint);
    for (const contact of pinned) {
      delete contact.fingerprint;
      forgotten.push(`contact ${contact.name}`);
    }
    return { contacts: pinned.length > 0 ? contacts : null, result: undefined };
  });
  if (forgotten.length === 0 || address) {
    const dropped = await updateKnownPeers(env, (peers) => (key in peers && delete peers[key]) || null);
    if (dropped) forgotten.push(key);
  }
  return forgotten;
}
