import { CONTACTS_FILE, findContact, loadContacts, unknownContact } from '../contacts.js';
import { LanchatError } from '../errors.js';
import { storePath } from '../store.js';
import { mdnsAllowed, type CliContext } from '../options.js';
import { connect, type ConnectFlags } from './connect.js';

/** `lanchat chat <name>`: connect to a contact, else to the listener nearby that announces that nick or room. */
export async function chat(name: string, flags: ConnectFlags, ctx: CliContext): Promise<number> {
  const contacts = await loadContacts(storePath(ctx.env, CONTACTS_FILE));
  const contact = findContact(contacts, name);
  if (contact) return connect(contact.host, contact.port, flags, ctx, contact.name);
  if (!mdnsAllowed(ctx.env)) throw unknownContact(contacts, name);
  const { findNearby, nearbyKeyBook, severalNearby } = await import('./discover.js');
  const matches = await findNearby(name, ctx).catch((error: LanchatError) => {
    if (error.code !== 'ERR_NO_INTERFACE') throw error;
    const unknown = unknownContact(contacts, name);
    throw new LanchatError(unknown.code, `${unknown.message} (and ${error.message.replace('nowhere to look: ', 'no looking nearby: ')})`);
  });
  if (matches.length > 1) throw severalNearby(name, matches, await nearbyKeyBook(ctx));
  if (matches.length === 0) {
    if (ctx.signal.aborted) return 1;
    const unknown = unknownContact(contacts, name);
    throw new LanchatError(unknown.code, `${unknown.message.replace(/^(no contact named "[^"]*")/, '$1, and nobody nearby announces it')}`);
  }
  const [nearby] = matches;
  ctx.stderr.write(`found ${nearby.nick} nearby at ${nearby.host} port ${nearby.port}\n`);
  return connect(nearby.host, nearby.port, { ...flags, announced: nearby.fingerprint }, ctx);
}
