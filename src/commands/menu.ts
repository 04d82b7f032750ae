import { HOST_RULE, PORT_RULE, formatAddress, normalizeHost, parsePort } from '../address.js';
import { userInfo } from 'node:os';
import { CONTACTS_FILE, findContact, loadContacts, sortContacts } from '../contacts.js';
import { LanchatError, usageError } from '../errors.js';
import { mdnsAllowed, type CliContext } from '../options.js';
import { ask } from '../prompt.js';
import { isValidNick } from '../protocol.js';
import { saveNick, savedNick } from '../settings.js';
import { storePath } from '../store.js';
import { inert } from '../terminal.js';
import { formatTable, keyColumn } from './contacts.js';

const MENU = `lanchat: chat with someone on your network
  1) wait for messages
  2) start a conversation
  3) quick connect to a contact or someone nearby
  q) quit
`;

function port(answer: string, rule = PORT_RULE): string {
  const n = parsePort(answer);
  if (n === null) throw usageError(rule);
  return String(n);
}

/** As `lanchat listen` takes it: 0 picks a free port. */
function listenPort(answer: string): string {
  return /^0+$/.test(answer) ? '0' : port(answer, 'a port is a whole number from 0 to 65535 (0: any free one)');
}

function host(answer: string): string {
  const dialled = normalizeHost(answer);
  if (dialled === null) throw usageError(HOST_RULE);
  return dialled;
}

/**
 * Bare `lanchat` at a terminal: the start menu, then what was chosen. A
 * connection that fails before a session (refused, no such host, a changed
 * key) is shown and the menu comes back; a session's end ends lanchat.
 * `run` runs a command line as the program would.
 */
export async function runMenu(ctx: CliContext, run: (argv: string[]) => Promise<unknown>): Promise<void> {
  const nick = new NickChoice(ctx);
  for (;;) {
    const next = await startMenu(ctx, nick);
    if (!next) return;
    try {
      await run(next);
      return;
    } catch (error) {
      if (!(error instanceof LanchatError) || ctx.signal.aborted) throw error;
      ctx.stderr.write(`lanchat: ${error.message.split('\n').map(inert).join('\n')}\n\n`);
    }
  }
}

/**
 * The nick for what the menu starts: with none set (no $LANCHAT_NICK, no
 * `lanchat config nick`), asked once, before the first session, with the
 * offer to keep it as the default.
 */
class NickChoice {
  #chosen: string | null | undefined; // null: one is set already
  constructor(private readonly ctx: CliContext) {}

  /** `--nick NAME` for the command line, or nothing. */
  async flags(): Promise<string[]> {
    if (this.#chosen === undefined) this.#chosen = await this.#choose();
    return this.#chosen === null ? [] : ['--nick', this.#chosen];
  }

  async #choose(): Promise<string | null> {
    const { env, stderr } = this.ctx;
    if (env.LANCHAT_NICK !== undefined || (await savedNick(env)) !== undefined) return null;
    let login = '';
    try {
      login = userInfo().username;
    } catch {
      // no user name on this system
    }
    const fallback = isValidNick(login) ? login : 'anon';
    const nick = await ask(
      `your nick, as others see it [${fallback}]: `,
      (answer) => {
        if (!isValidNick(answer)) throw usageError('a nick is 1 to 32 characters, no spaces or control characters');
        return answer;
      },
      stderr,
      { fallback },
    );
    const keep = await ask(
      `keep ${nick} as your default nick (lanchat config nick)? [Y/n] `,
      (answer) => {
        if (!/^(y|yes|n|no)$/i.test(answer)) throw usageError('type y or n');
        return /^y/i.test(answer);
      },
      stderr,
      { fallback: 'y' },
    );
    if (keep) {
      await saveNick(env, nick);
      stderr.write(`default nick is now ${nick}\n`);
    }
    return nick;
  }
}

/** The command, its options, then the rest: `chat --nick x -- NAME`. */
const withFlags = ([command, ...rest]: string[], flags: string[]): string[] => [command, ...flags, ...rest];

/**
 * The start menu of bare `lanchat` at a terminal, like the original app's start
 * window. Resolves to the command line to run next, or null to quit (q, or
 * Ctrl-D). A bare Enter asks again; at a question below, it goes back.
 */
async function startMenu(ctx: CliContext, nick: NickChoice): Promise<string[] | null> {
  for (;;) {
    ctx.stderr.write(MENU);
    let choice: string;
    try {
      choice = await ask(
        'choose 1, 2, 3 or q: ',
        (answer) => {
          if (!/^[123q]$/i.test(answer)) throw usageError('type 1, 2, 3 or q');
          return answer.toLowerCase();
        },
        ctx.stderr,
        { required: true },
      );
    } catch (error) {
      if ((error as LanchatError).code === 'ERR_CANCELLED') return null; // Ctrl-D
      throw error;
    }
    try {
      switch (choice) {
        case '1': {
          const listenOn = await ask('port to listen on, 0 for any free one [5000]: ', listenPort, ctx.stderr, { fallback: '5000' });
          return withFlags(['listen', listenOn], await nick.flags());
        }
        case '2': {
          const to = await ask('host (IP address or host name): ', host, ctx.stderr);
          const at = await ask('port: ', port, ctx.stderr);
          return withFlags(['connect', to, at], await nick.flags());
        }
        case '3': {
          const picked = await pickContact(ctx);
          if (picked) return withFlags(picked, await nick.flags());
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
 * The numbered list of contacts (a table, as `contacts list` prints it), then
 * of the people nearby (listeners that announce themselves, as they answer);
 * resolves to the command line that reaches the one chosen, by number or by a
 * contact's name, or null to go back.
 */
async function pickContact(ctx: CliContext): Promise<string[] | null> {
  const contacts = sortContacts(await loadContacts(storePath(ctx.env, CONTACTS_FILE)));
  const choices: string[][] = contacts.map((c) => ['chat', '--', c.name]); // "--": a name may start with "-"
  if (contacts.length === 0) ctx.stderr.write('no contacts yet (add one: lanchat contacts add NAME HOST PORT)\n');
  const table = await formatTable(contacts.map((c) => [c.name, formatAddress(c.host, c.port), keyColumn(c)]));
  const digits = String(contacts.length).length;
  ctx.stderr.write(table.map((row, i) => `  ${String(i + 1).padStart(digits)}) ${row}\n`).join(''));
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
    `1-${choices.length} or a name (Enter to go back): `,
    (answer) => {
      const n = /^\d+$/.test(answer) ? Number(answer) : 0;
      if (n >= 1 && n <= choices.length) return choices[n - 1];
      const named = findContact(contacts, answer);
      if (named) return ['chat', '--', named.name];
      throw usageError(`type a number from 1 to ${choices.length}, or a contact's name`);
    },
    ctx.stderr,
  );
}
