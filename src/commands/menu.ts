import { HOST_RULE, PORT_RULE, formatAddress, normalizeHost, parsePort } from '../address.js';
import { CONTACTS_FILE, loadContacts, sortContacts } from '../contacts.js';
import { usageError, type LanchatError } from '../errors.js';
import type { CliContext } from '../options.js';
import { ask } from '../prompt.js';
import { storePath } from '../store.js';

const MENU = `lanchat: chat with someone on your network
  1) wait for messages
  2) start a conversation
  3) quick connect to a contact
  q) quit
`;

function port(answer: string): string {
  const n = parsePort(answer);
  if (n === null) throw usageError(PORT_RULE);
  return String(n);
}

function host(answer: string): string {
  const dialled = normalizeHost(answer);
  if (dialled === null) throw usageError(HOST_RULE);
  return dialled;
}

/**
 * The start menu of bare `lanchat` at a terminal, like the original app's start
 * window. Resolves to the command line to run next, or null to quit.
 */
export async function startMenu(ctx: CliContext): Promise<string[] | null> {
  for (;;) {
    ctx.stderr.write(MENU);
    const choice = await ask(
      'choose 1, 2, 3 or q: ',
      (answer) => {
        if (!/^[123q]$/i.test(answer)) throw usageError('type 1, 2, 3 or q');
        return answer.toLowerCase();
      },
      ctx.stderr,
      'q',
    );
    try {
      switch (choice) {
        case '1':
          return ['listen', await ask('port to listen on [5000]: ', port, ctx.stderr, '5000')];
        case '2': {
          const to = await ask('host (IP address or host name): ', host, ctx.stderr);
          return ['connect', to, await ask('port: ', port, ctx.stderr)];
        }
        case '3': {
          const contact = await pickContact(ctx);
          if (contact) return ['chat', '--', contact]; // "--": a name may start with "-"
          continue;
        }
      }
    } catch (error) {
      // An empty answer (or Ctrl-D) at a question goes back to the menu.
      if ((error as LanchatError).code !== 'ERR_CANCELLED') throw error;
      ctx.stderr.write('\n');
      continue;
    }
    return null;
  }
}

/** The numbered list of contacts; resolves to the chosen name, or null to go back. */
async function pickContact(ctx: CliContext): Promise<string | null> {
  const contacts = sortContacts(await loadContacts(storePath(ctx.env, CONTACTS_FILE)));
  if (contacts.length === 0) {
    ctx.stderr.write('no contacts yet (add one: lanchat contacts add NAME HOST PORT)\n\n');
    return null;
  }
  contacts.forEach((c, i) => ctx.stderr.write(`  ${i + 1}) ${c.name}  ${formatAddress(c.host, c.port)}\n`));
  return ask(
    `contact 1-${contacts.length} (Enter to go back): `,
    (answer) => {
      const n = /^\d+$/.test(answer) ? Number(answer) : 0;
      if (answer !== 'back' && !(n >= 1 && n <= contacts.length)) throw usageError(`type a number from 1 to ${contacts.length}`);
      return answer === 'back' ? null : contacts[n - 1].name;
    },
    ctx.stderr,
    'back',
  );
}
