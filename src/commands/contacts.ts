import {
  CONTACTS_FILE,
  addContact,
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
import { usageError } from '../errors.js';
import type { CliContext } from '../options.js';
import { ask } from '../prompt.js';
import { storePath } from '../store.js';
import { formatAddress } from '../transport.js';

const path = (ctx: CliContext): string => storePath(ctx.env, CONTACTS_FILE);

/** `contacts add [name] [host] [port]`: missing arguments are asked for at a terminal. */
export async function contactsAdd(args: Array<string | undefined>, flags: { force?: boolean }, ctx: CliContext): Promise<number> {
  const words = ['name', 'host', 'port'];
  const missing = words.find((_, i) => args[i] === undefined);
  if (missing && !ctx.stdin.isTTY) throw usageError(`missing argument '${missing}' (lanchat contacts add NAME HOST PORT)`);
  const [name, host, port] = args;
  const contact = missing
    ? await askContact(name, host, port, ctx)
    : validateContact(name!, host!, /^\d+$/.test(port!) ? Number(port) : NaN);
  const replaced = await updateContacts(path(ctx), (contacts) => ({
    contacts: addContact(contacts, contact, flags.force),
    result: findContact(contacts, contact.name) !== undefined,
  }));
  ctx.stderr.write(`${replaced ? 'replaced' : 'added'} ${contact.name} (${formatAddress(contact.host, contact.port)})\n`);
  return 0;
}

async function askContact(name: string | undefined, host: string | undefined, port: string | undefined, ctx: CliContext): Promise<Contact> {
  const checkName = (answer: string): string => validateContact(answer, 'localhost', 1).name;
  const checkHost = (answer: string): string => validateContact('x', answer, 1).host;
  const checkPort = (answer: string): number => validateContact('x', 'localhost', /^\d+$/.test(answer) ? Number(answer) : NaN).port;
  const finalName = name ?? (await ask('name: ', checkName, ctx.stderr));
  const finalHost = host ?? (await ask('host (IP address or host name): ', checkHost, ctx.stderr));
  const finalPort = port ?? String(await ask('port: ', checkPort, ctx.stderr));
  return validateContact(finalName, finalHost, Number(finalPort));
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
  const rows = [['NAME', 'HOST', 'PORT'], ...contacts.map((c) => [c.name, c.host, String(c.port)])];
  const widths = [0, 1].map((column) => Math.max(...rows.map((row) => row[column]!.length)));
  ctx.stdout.write(rows.map(([name, host, port]) => `${name!.padEnd(widths[0]!)}  ${host!.padEnd(widths[1]!)}  ${port}\n`).join(''));
  return 0;
}

export async function contactsShow(name: string, flags: { json?: boolean }, ctx: CliContext): Promise<number> {
  const contacts = await loadContacts(path(ctx));
  const contact = findContact(contacts, name);
  if (!contact) throw unknownContact(contacts, name);
  ctx.stdout.write(flags.json ? `${JSON.stringify(contact, null, 2)}\n` : `name: ${contact.name}\nhost: ${contact.host}\nport: ${contact.port}\n`);
  return 0;
}

export async function contactsRemove(name: string, ctx: CliContext): Promise<number> {
  const removed = await updateContacts(path(ctx), (contacts) => ({ contacts: removeContact(contacts, name), result: findContact(contacts, name)! }));
  ctx.stderr.write(`removed ${removed.name}\n`);
  return 0;
}

export async function contactsRename(from: string, to: string, ctx: CliContext): Promise<number> {
  const renamed = await updateContacts(path(ctx), (contacts) => ({ contacts: renameContact(contacts, from, to), result: findContact(contacts, from)! }));
  ctx.stderr.write(`renamed ${renamed.name} to ${to}\n`);
  return 0;
}

export function contactsPath(ctx: CliContext): number {
  ctx.stdout.write(`${path(ctx)}\n`);
  return 0;
}
