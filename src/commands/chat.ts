import { CONTACTS_FILE, findContact, loadContacts, unknownContact } from '../contacts.js';
import type { CliContext } from '../options.js';
import { storePath } from '../store.js';
import { connect, type ConnectFlags } from './connect.js';

/** `lanchat chat <name>`: connect to a contact. */
export async function chat(name: string, flags: ConnectFlags, ctx: CliContext): Promise<number> {
  const contacts = await loadContacts(storePath(ctx.env, CONTACTS_FILE));
  const contact = findContact(contacts, name);
  if (!contact) throw unknownContact(contacts, name);
  return connect(contact.host, contact.port, flags, ctx, contact.name);
}
