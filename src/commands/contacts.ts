import {
  CONTACTS_FILE,
  addContact,
  editContact,
  findContact,
  loadContacts,
  removeContact,
  renameContact,
  sortContacts,
  unknownContact,
  updateContacts,
  validateContact,
  type Contact,
} from '../contacts.js';
import { LanchatError, usageError } from '../errors.js';
import { mdnsAllowed, mdnsOff, type CliContext } from '../options.js';
import { ask } from '../prompt.js';
import { storePath } from '../store.js';
import { dialTarget, formatAddress, isJoinedAddress } from '../address.js';
import { loadWidths, textWidth } from '../terminal.js';

const path = (ctx: CliContext): string => storePath(ctx.env, CONTACTS_FILE);

/** `contacts add [name] [host] [port]`: missing arguments are asked for at a terminal. */
export async function contactsAdd(
  args: Array<string | undefined>,
  flags: { force?: boolean; fingerprint?: string; nearby?: string | true },
  ctx: CliContext,
): Promise<number> {
  if (flags.nearby !== undefined) return contactsAddNearby(args, { ...flags, nearby: flags.nearby }, ctx);
  // NAME HOST:PORT (or [IPv6]:PORT), read as connect reads it.
  const alone = args[2] === undefined ? args[1] : undefined;
  if (alone !== undefined && isJoinedAddress(alone)) {
    const { host, port } = dialTarget(alone, undefined);
    args = [args[0], host, String(port)];
  }
  const missing = ['name', 'host', 'port'].find((_, i) => args[i] === undefined);
  if (missing && !ctx.stdin.isTTY) throw usageError(`missing argument '${missing}' (lanchat contacts add NAME HOST PORT)`);
  const given = missing
    ? await askContact(args, flags.force ? [] : await loadContacts(path(ctx)), ctx)
    : validateContact(args[0]!, args[1]!, args[2]!);
  const { replaced, saved } = await updateContacts(path(ctx), (contacts) => {
    const existing = findContact(contacts, given.name);
    // A key is the person's, not the address's: replacing a contact keeps its pinned key (DHCP moves
    // people, and an impostor at the new address must not be taken for them), unless another is given.
    const fingerprint = flags.fingerprint ?? existing?.fingerprint;
    const saved: Contact = fingerprint ? { ...given, fingerprint } : given;
    return { contacts: addContact(contacts, saved, flags.force), result: { replaced: existing, saved } };
  }).catch((error: LanchatError) => {
    throw error.code === 'ERR_CONTACT_EXISTS' ? contactExists(error.message) : error;
  });
  const moved = replaced && (replaced.host.toLowerCase() !== saved.host.toLowerCase() || replaced.port !== saved.port);
  const kept =
    moved && !flags.fingerprint && saved.fingerprint
      ? `; kept its key (if ${saved.name} has a new key too: lanchat forget ${saved.name})`
      : '';
  ctx.stderr.write(`${replaced ? 'replaced' : 'added'} ${saved.name} (${formatAddress(saved.host, saved.port)})${kept}\n`);
  return 0;
}

/**
 * `contacts add NAME --nearby [NICK]`: the listener nearby that announces NICK
 * (or NAME) is saved with its address and the key it announced — a hint until
 * the first chat checks it, so the key is shown to compare with `lanchat id`.
 */
async function contactsAddNearby(
  [name, host, port]: Array<string | undefined>,
  flags: { force?: boolean; fingerprint?: string; nearby: string | true },
  ctx: CliContext,
): Promise<number> {
  if (name === undefined) throw usageError('a name is required (lanchat contacts add NAME --nearby [NICK])');
  if (host !== undefined || port !== undefined) throw usageError('--nearby takes the address from the announcement: give NAME only');
  if (flags.fingerprint) throw usageError('--nearby takes the key from the announcement: give --fingerprint without --nearby');
  validateContact(name, 'localhost', 1); // a bad name is said before anyone is asked
  const nick = flags.nearby === true ? name : flags.nearby;
  if (!mdnsAllowed(ctx.env)) throw mdnsOff('cannot look for people nearby');
  const { findNearby, nearbyKeyBook, severalNearby } = await import('./discover.js');
  const matches = await findNearby(nick, ctx);
  if (matches.length > 1) throw severalNearby(nick, matches, await nearbyKeyBook(ctx));
  if (matches.length === 0) throw new LanchatError('ERR_NOT_NEARBY', `nobody nearby announces "${nick}" (lanchat discover lists who does)`);
  const [found] = matches;
  const saved = validateContact(name, found.host, found.port, found.fingerprint);
  const replaced = await updateContacts(path(ctx), (contacts) => ({
    contacts: addContact(contacts, saved, flags.force),
    result: findContact(contacts, name) !== undefined,
  })).catch((error: LanchatError) => {
    throw error.code === 'ERR_CONTACT_EXISTS' ? contactExists(error.message) : error;
  });
  ctx.stderr.write(
    `${replaced ? 'replaced' : 'added'} ${saved.name} (${formatAddress(saved.host, saved.port)}) with the key it announced:\n  ${saved.fingerprint}\n` +
      `anyone nearby can announce a nick: compare this with what lanchat id prints on ${found.nick}'s side\n`,
  );
  return 0;
}

const contactExists = (message: string): LanchatError => new LanchatError('ERR_CONTACT_EXISTS', `${message} (use --force to replace it)`);

/**
 * Asks for what is missing, after checking what was given (so a bad name is not
 * asked around): a name in `taken` is said at once, not after host and port.
 */
async function askContact([name, host, port]: Array<string | undefined>, taken: Contact[], ctx: CliContext): Promise<Contact> {
  const checkName = (answer: string): string => {
    const valid = validateContact(answer, 'localhost', 1).name;
    const existing = findContact(taken, valid);
    if (existing) throw contactExists(`a contact named "${existing.name}" exists already`);
    return valid;
  };
  const checkHost = (answer: string): string => validateContact('x', answer, 1).host;
  const checkPort = (answer: string): number => validateContact('x', 'localhost', answer).port;
  const given = {
    name: name === undefined ? undefined : checkName(name),
    host: host === undefined ? undefined : checkHost(host),
    port: port === undefined ? undefined : checkPort(port),
  };
  return {
    name: given.name ?? (await ask('name: ', checkName, ctx.stderr)),
    host: given.host ?? (await ask('host (IP address or host name): ', checkHost, ctx.stderr)),
    port: given.port ?? (await ask('port: ', checkPort, ctx.stderr)),
  };
}

export async function contactsList(flags: { json?: boolean }, ctx: CliContext): Promise<number> {
  const contacts = sortContacts(await loadContacts(path(ctx)));
  if (flags.json) ctx.stdout.write(`${JSON.stringify(contacts, null, 2)}\n`);
  if (contacts.length === 0) {
    ctx.stderr.write('no contacts yet (add one: lanchat contacts add NAME HOST PORT)\n');
    return 0;
  }
  if (flags.json) return 0;
  if (!ctx.stdout.isTTY) {
    ctx.stdout.write(contacts.map((c) => `${c.name}\t${c.host}\t${c.port}\n`).join(''));
    return 0;
  }
  const rows = [['NAME', 'HOST', 'PORT', 'KEY'], ...contacts.map((c) => [c.name, c.host, String(c.port), keyColumn(c)])];
  ctx.stdout.write((await formatTable(rows)).map((row) => `${row}\n`).join(''));
  return 0;
}

/** Whether a contact's key is pinned, for a table's KEY column (`contacts show` prints the key). */
export function keyColumn(contact: Contact): string {
  return contact.fingerprint ? 'pinned' : 'none yet';
}

/**
 * Rows as aligned columns, two spaces apart, the last not padded. Widths are
 * what the terminal shows: wide (東京) and combining characters count right.
 */
export async function formatTable(rows: string[][]): Promise<string[]> {
  await loadWidths();
  const columns = Math.max(...rows.map((row) => row.length));
  const widths = Array.from({ length: columns }, (_, column) => Math.max(...rows.map((row) => textWidth(row[column] ?? ''))));
  const pad = (text: string, width: number): string => text + ' '.repeat(width - textWidth(text));
  return rows.map((row) => row.map((cell, column) => (column === row.length - 1 ? cell : pad(cell, widths[column]))).join('  '));
}

export async function contactsShow(name: string, flags: { json?: boolean }, ctx: CliContext): Promise<number> {
  const contacts = await loadContacts(path(ctx));
  const contact = findContact(contacts, name);
  if (!contact) throw unknownContact(contacts, name);
  const key = contact.fingerprint ?? 'none pinned yet (the first secure chat pins it)';
  ctx.stdout.write(
    flags.json
      ? `${JSON.stringify(contact, null, 2)}\n`
      : `name: ${contact.name}\nhost: ${contact.host}\nport: ${contact.port}\nkey:  ${key}\n`,
  );
  return 0;
}

export async function contactsRemove(name: string, ctx: CliContext): Promise<number> {
  const removed = await updateContacts(path(ctx), (contacts) => ({
    contacts: removeContact(contacts, name),
    result: findContact(contacts, name)!,
  }));
  ctx.stderr.write(`removed ${removed.name}\n`);
  return 0;
}

export async function contactsRename(from: string, to: string, ctx: CliContext): Promise<number> {
  const renamed = await updateContacts(path(ctx), (contacts) => ({
    contacts: renameContact(contacts, from, to),
    result: findContact(contacts, from)!,
  }));
  ctx.stderr.write(`renamed ${renamed.name} to ${to}\n`);
  return 0;
}

/** `contacts edit NAME [--host H] [--port P]`: a new address, the same key. */
export async function contactsEdit(name: string, flags: { host?: string; port?: number }, ctx: CliContext): Promise<number> {
  if (flags.host === undefined && flags.port === undefined)
    throw usageError('give --host, --port or both (lanchat contacts edit NAME --host H --port P)');
  const edited = await updateContacts(path(ctx), (contacts) => {
    const changed = editContact(contacts, name, flags);
    return { contacts: changed, result: findContact(changed, name)! };
  });
  const kept = edited.fingerprint ? `; kept its key (if ${edited.name} has a new key too: lanchat forget ${edited.name})` : '';
  ctx.stderr.write(`${edited.name} is now at ${formatAddress(edited.host, edited.port)}${kept}\n`);
  return 0;
}

export function contactsPath(ctx: CliContext): number {
  ctx.stdout.write(`${path(ctx)}\n`);
  return 0;
}
