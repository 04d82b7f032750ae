import { HOST_RULE, PORT_RULE, formatAddress, normalizeHost, parsePort } from '../address.js';
import { CONTACTS_FILE, loadContacts, sortContacts } from '../contacts.js';
import { usageError, type LanchatError } from '../errors.js';
import { mdnsAllowed, type CliContext } from '../options.js';
import { ask } from '../prompt.js';
import { storePath } from '../store.js';

const MENU = `lanchat: chat with someone on your network
  1) wait for messages
  2) start a conversation
  3) quick connect to a contact or someone nearby
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
          const picked = await pickContact(ctx);
          if (picked) return picked;
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

/**
 * The numbered list of contacts, then of the people nearby (listeners that
 * announce themselves, as they answer); resolves to the command line that
 * reaches the one chosen, or null to go back.
 */
async function pickContact(ctx: CliContext): Promise<string[] | null> {
  const contacts = sortContacts(await loadContacts(storePath(ctx.env, CONTACTS_FILE)));
  const choices: string[][] = contacts.map((c) => ['chat', '--', c.name]); // "--": a name may start with "-"
  if (contacts.length === 0) ctx.stderr.write('no contacts yet (add one: lanchat contacts add NAME HOST PORT)\n');
  contacts.forEach((c, i) => ctx.stderr.write(`  ${i + 1}) ${c.name}  ${formatAddress(c.host, c.port)}\n`));
  if (mdnsAllowed(ctx.env)) {
    const { browse } = await import('../discovery.js');
    const { DISCOVER_SECONDS, nearbyKeyBook, nearbyRow } = await import('./discover.js');
    const book = await nearbyKeyBook(ctx);
    ctx.stderr.write('people nearby:\n');
    const nearby = await browse({
      timeoutMs: DISCOVER_SECONDS * 1000,
      signal: ctx.signal,
      onFound: (found) => {
        choices.push(['connect', '--announced', found.fingerprint, '--', found.host, String(found.port)]);
        ctx.stderr.write(`  ${choices.length}) ${nearbyRow(book, found)}\n`);
      },
    }).catch((error: LanchatError) => {
      ctx.stderr.write(`  (cannot look: ${error.message})\n`);
      return [];
    });
    if (nearby.length === 0) ctx.stderr.write('  nobody announces lanchat nearby\n');
  }
  if (choices.length === 0) {
    ctx.stderr.write('\n');
    return null;
  }
  return ask(
    `1-${choices.length} (Enter to go back): `,
    (answer) => {
      const n = /^\d+$/.test(answer) ? Number(answer) : 0;
      if (answer !== 'back' && !(n >= 1 && n <= choices.length)) throw usageError(`type a number from 1 to ${choices.length}`);
      return answer === 'back' ? null : choices[n - 1];
    },
    ctx.stderr,
    'back',
  );
}
