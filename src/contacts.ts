// The address book: contacts (name → host, port) in contacts.json. The list
// operations are pure; load and update go through the locked, atomic store.
import { HOST_RULE, PORT_RULE, isValidPort, normalizeHost, parsePort } from './address.js';
import { LanchatError, usageError } from './errors.js';
import { normalizeFingerprint } from './fingerprint.js';
import { corruptFile, parseStoreJson, readText, updateText } from './store.js';

export const CONTACTS_FILE = 'contacts.json';
const FILE_VERSION = 1;

export interface Contact {
  name: string;
  host: string;
  port: number;
  /** The contact's key (SHA-256 of its certificate), pinned on first use or given with --fingerprint. */
  fingerprint?: string;
}

const NAME = /^[\p{L}\p{M}\p{Nd}._-]{1,32}$/u;

/** What a bad contact name is told (after `invalid contact name "…": `). */
const NAME_RULE = 'use 1 to 32 letters, digits, ".", "_" or "-"';

/** Names: 1–32 letters of any script, digits, '.', '_' or '-'. */
export function isValidName(name: string): boolean {
  return NAME.test(name);
}

/** Checks a contact from the command line (the port as typed); a bad field is a usage error. */
export function validateContact(name: string, host: string, port: string | number, fingerprint?: string): Contact {
  if (!isValidName(name)) throw usageError(`invalid contact name "${name}": ${NAME_RULE}`);
  const dialled = normalizeHost(host);
  if (dialled === null) throw usageError(`invalid host "${host}": ${HOST_RULE}`);
  const number = typeof port === 'number' ? (isValidPort(port) ? port : null) : parsePort(port);
  if (number === null) throw usageError(`invalid port "${port}": ${PORT_RULE}`);
  if (fingerprint === undefined) return { name, host: dialled, port: number };
  const key = normalizeFingerprint(fingerprint);
  if (key === null) throw usageError(`invalid fingerprint "${fingerprint}": give the 32 bytes in hex, as lanchat id prints them`);
  return { name, host: dialled, port: number, fingerprint: key };
}

const fold = (name: string): string => name.normalize('NFC').toLowerCase();
const same = (a: string, b: string): boolean => fold(a) === fold(b);

export function findContact(contacts: readonly Contact[], name: string): Contact | undefined {
  return contacts.find((contact) => same(contact.name, name));
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length];
}

/** Up to three names close to `name`, closest first (for "did you mean"). */
export function suggestNames(contacts: readonly Contact[], name: string): string[] {
  const wanted = name.toLowerCase();
  return contacts
    .map((contact) => {
      const candidate = contact.name.toLowerCase();
      const distance = candidate.startsWith(wanted) || wanted.startsWith(candidate) ? 0.5 : editDistance(wanted, candidate);
      return { name: contact.name, distance };
    })
    .filter(({ distance }) => distance <= Math.max(2, Math.floor(wanted.length / 3)))
    .sort((a, b) => a.distance - b.distance || a.name.localeCompare(b.name))
    .slice(0, 3)
    .map(({ name: suggestion }) => suggestion);
}

export function unknownContact(contacts: readonly Contact[], name: string): LanchatError {
  const close = suggestNames(contacts, name);
  const hint = close.length > 0 ? `; did you mean ${close.map((n) => `"${n}"`).join(' or ')}?` : ' (lanchat contacts list shows them all)';
  return new LanchatError('ERR_UNKNOWN_CONTACT', `no contact named "${name}"${hint}`);
}

/** Adds a contact; a name that exists (ignoring case) is an error unless `force`. */
export function addContact(contacts: readonly Contact[], contact: Contact, force = false): Contact[] {
  const existing = findContact(contacts, contact.name);
  if (existing && !force) {
    throw new LanchatError('ERR_CONTACT_EXISTS', `a contact named "${existing.name}" exists already`);
  }
  return [...contacts.filter((c) => c !== existing), contact];
}

export function removeContact(contacts: readonly Contact[], name: string): Contact[] {
  const existing = findContact(contacts, name);
  if (!existing) throw unknownContact(contacts, name);
  return contacts.filter((c) => c !== existing);
}

export function renameContact(contacts: readonly Contact[], from: string, to: string): Contact[] {
  const existing = findContact(contacts, from);
  if (!existing) throw unknownContact(contacts, from);
  if (!isValidName(to)) throw usageError(`invalid contact name "${to}": ${NAME_RULE}`);
  const clash = findContact(contacts, to);
  if (clash && clash !== existing) throw new LanchatError('ERR_CONTACT_EXISTS', `a contact named "${clash.name}" exists already`);
  return contacts.map((c) => (c === existing ? { ...c, name: to } : c));
}

/**
 * A contact moved (DHCP, a new port): a new host or port, or both, under the
 * same name and with the same key (a key is the person's, not the address's).
 */
export function editContact(contacts: readonly Contact[], name: string, change: { host?: string; port?: string | number }): Contact[] {
  const existing = findContact(contacts, name);
  if (!existing) throw unknownContact(contacts, name);
  const { host, port } = validateContact(existing.name, change.host ?? existing.host, change.port ?? existing.port);
  return contacts.map((c) => (c === existing ? { ...c, host, port } : c));
}

/** Sorted by name, as list shows them. */
export function sortContacts(contacts: readonly Contact[]): Contact[] {
  return [...contacts].sort((a, b) => a.name.localeCompare(b.name, undefined, { sensitivity: 'base' }));
}

function corrupt(path: string, problem: string): LanchatError {
  return corruptFile('ERR_CONTACTS_CORRUPT', path, problem, ' (lanchat will not overwrite it)');
}

/** What is wrong with one entry of "contacts", naming the field; null if nothing. */
function entryProblem(entry: unknown): string | null {
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) return 'it is not an object';
  const { name, host, port } = entry as Record<string, unknown>;
  const shown = (value: unknown): string => (value === undefined ? 'missing' : JSON.stringify(value));
  if (typeof name !== 'string' || !isValidName(name)) return `"name" is ${shown(name)}: ${NAME_RULE}`;
  if (typeof host !== 'string' || normalizeHost(host) === null) return `"host" is ${shown(host)}: ${HOST_RULE}`;
  if (typeof port !== 'number' || !isValidPort(port)) return `"port" is ${shown(port)}: ${PORT_RULE}`;
  return null;
}

/**
 * Parses contacts.json; anything unexpected is an error naming the file and the
 * problem (where JSON breaks: line and column; a bad entry: its field). A UTF-8
 * BOM (Windows Notepad writes one) is skipped; an empty file is an empty book.
 */
export function parseContacts(text: string, path: string): Contact[] {
  let data: unknown;
  try {
    data = parseStoreJson(text);
  } catch (error) {
    throw corrupt(path, (error as Error).message);
  }
  if (data === null) return [];
  if (typeof data !== 'object' || data === null || Array.isArray(data)) throw corrupt(path, 'not a contacts file (expected a JSON object)');
  const { version, contacts } = data as { version?: unknown; contacts?: unknown };
  if (version !== FILE_VERSION) {
    throw corrupt(
      path,
      typeof version === 'number' && version > FILE_VERSION ? `written by a newer lanchat (version ${version})` : 'no valid "version"',
    );
  }
  if (!Array.isArray(contacts)) throw corrupt(path, '"contacts" is not a list');
  const seen: Contact[] = [];
  contacts.forEach((entry: unknown, i) => {
    const problem = entryProblem(entry);
    if (problem !== null) throw corrupt(path, `contact ${i + 1} is not a valid {name, host, port}: ${problem}`);
    const { name, host, port, fingerprint } = entry as { name: string; host: string; port: number; fingerprint?: unknown };
    const key = fingerprint === undefined ? undefined : typeof fingerprint === 'string' ? normalizeFingerprint(fingerprint) : null;
    if (key === null) throw corrupt(path, `contact ${i + 1} has a fingerprint that is not 32 bytes in hex`);
    if (findContact(seen, name)) throw corrupt(path, `the name "${name}" appears twice`);
    seen.push({ ...(entry as object), name, host: normalizeHost(host)!, port, ...(key && { fingerprint: key }) });
  });
  return seen;
}

export function serializeContacts(contacts: readonly Contact[]): string {
  return `${JSON.stringify({ version: FILE_VERSION, contacts: sortContacts(contacts) }, null, 2)}\n`;
}

export async function loadContacts(path: string): Promise<Contact[]> {
  const text = await readText(path);
  return text === null ? [] : parseContacts(text, path);
}

/**
 * Applies `change` to the book under the store's lock and saves it atomically
 * (unless `change` returns null contacts: nothing to save). A file that cannot
 * be parsed stops everything before anything is written.
 */
export function updateContacts<T>(path: string, change: (contacts: Contact[]) => { contacts: Contact[] | null; result: T }): Promise<T> {
  return updateText(path, (text) => {
    const { contacts, result } = change(text === null ? [] : parseContacts(text, path));
    return { text: contacts && serializeContacts(contacts), result };
  });
}

/** Saves one contact (validated; a name that exists is an error unless `force`). */
export function saveContact(path: string, contact: Contact, force = false): Promise<void> {
  const valid = validateContact(contact.name, contact.host, contact.port, contact.fingerprint);
  return updateContacts(path, (contacts) => ({ contacts: addContact(contacts, valid, force), result: undefined }));
}
