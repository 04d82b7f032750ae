// The commander program: every command, option and help text, and the mapping
// of outcomes to exit codes. Command modules load on demand, so a command pays
// only for what it uses. Process-level concerns live in cli.ts.
import { Argument, Command, Option } from 'commander';
import type { ConnectFlags } from './commands/connect.js';
import type * as ContactCommands from './commands/contacts.js';
import type { ListenFlags } from './commands/listen.js';
import type { SendFlags } from './commands/send.js';
import { normalizeHost } from './address.js';
import { EXIT_USAGE } from './errors.js';
import { version } from './version.js';
import {
  addConnectOptions,
  addSessionOptions,
  parseFingerprint,
  parseList,
  parseListenPort,
  parseNick,
  parseMaxPeers,
  parseSize,
  parseCount,
  parseAlive,
  parseFingerprintOrDigits,
  parseRoomName,
  parsePort,
  parseSeconds,
  type CliContext,
} from './options.js';

/** `(see lanchat contacts add --help)`: where the usage of the command at hand is. */
export function usageHintFor(command: Command): string {
  const path: string[] = [];
  for (let at: Command | null = command; at; at = at.parent) path.unshift(at.name());
  return `(see ${path.join(' ')} --help)`;
}

/** The hint for a usage error that a command's action threw, by the program that ran it. */
const actionHints = new WeakMap<Command, string>();

/** What follows a usage error that the running command threw (cli.ts prints it). */
export function usageHint(program: Command): string {
  return actionHints.get(program) ?? usageHintFor(program);
}

/**
 * An unknown command, at any level, is a usage error with a suggestion, even
 * with --help (commander would print its parent's help and exit 0).
 */
async function rejectUnknownCommand(program: Command, args: readonly string[]): Promise<void> {
  let command = program;
  for (const arg of args) {
    if (arg.startsWith('-') || (arg === 'help' && command.commands.length > 0)) continue; // `help conect` too
    if (command.commands.length === 0) return;
    const known = command.commands.find((sub) => sub.name() === arg || sub.aliases().includes(arg));
    if (known) {
      command = known;
      continue;
    }
    const { suggestNames } = await import('./contacts.js'); // the same "did you mean" as for contact names
    const names = command
      .createHelp()
      .visibleCommands(command)
      .map((sub) => sub.name());
    const close = suggestNames(
      names.map((name) => ({ name, host: '', port: 0 })),
      arg,
    );
    const suggestion = close.length > 0 ? `\n(Did you mean ${close.join(' or ')}?)` : '';
    command.error(`unknown command '${arg}'${suggestion}`, { exitCode: EXIT_USAGE, code: 'commander.unknownCommand' });
  }
}

/** The positional arguments of `command` in `args` (what follows its name), skipping its options and their values. */
function positionals(command: Command, args: readonly string[]): string[] {
  const found: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === '--') return [...found, ...args.slice(i + 1)];
    if (!arg.startsWith('-') || arg === '-') {
      found.push(arg);
      continue;
    }
    const option = command.options.find((o) => o.long === arg || o.short === arg);
    if (option?.required || (option?.optional && !args[i + 1]?.startsWith('-'))) i++; // its value
  }
  return found;
}

/**
 * `connect 5000 192.168.1.20` and `listen 192.168.1.20 5000`, the usual slips,
 * said plainly with the order each command takes (commander would call the
 * host a bad port, or the port one argument too many).
 */
function rejectSwappedAddress(program: Command, args: readonly string[]): void {
  const [name, ...rest] = args;
  const command = program.commands.find((sub) => sub.name() === name);
  if (!command || (name !== 'connect' && name !== 'listen')) return;
  const given = positionals(command, rest);
  if (given.length !== 2) return;
  const isPort = (text: string): boolean => /^\d+$/.test(text);
  const isHost = (text: string): boolean => !isPort(text) && normalizeHost(text) !== null;
  const [first, second] = given;
  const fail = (message: string): never => command.error(message, { exitCode: EXIT_USAGE, code: 'commander.invalidArgument' });
  if (name === 'connect' && isPort(first) && isHost(second)) fail(`the host comes first: lanchat connect ${second} ${first}`);
  if (name === 'listen' && isHost(first) && isPort(second))
    fail(`listen takes a port; to listen on one address only: lanchat listen ${second} --host ${first}`);
}

const EXAMPLES = `
Examples:
  lanchat                                  start menu: wait, connect, or pick a contact
  lanchat listen 5000                      wait for a peer on port 5000
  lanchat connect 192.168.1.20 5000        chat with the peer listening there
  echo "build done" | lanchat connect host 5000
  lanchat listen 5000 > received.txt       save what a peer sends
  lanchat contacts add bob 192.168.1.20 5000 && lanchat chat bob
  lanchat listen 5000 --announce           be findable: lanchat discover, lanchat chat NICK`;

/**
 * Commander's messages, said plainly: "command-argument value '70000' is invalid
 * for argument 'port'. a port must be …" becomes "invalid port '70000': a port must be …".
 */
function plainUsageError(text: string): string {
  return text
    .replace(/^error: /, '')
    .replace(/^command-argument value '(.*)' is invalid for argument '(\w+)'\. /, "invalid $2 '$1': ")
    .replace(/^option '(?:-\w, )?(--[\w-]+)[^']*' argument '(.*)' is invalid\. /, "invalid $1 '$2': ");
}

/** The program, with its output and exits routed through `ctx` (tests use this). */
export function createProgram(ctx: CliContext, setExitCode: (code: number) => void): Command {
  const run = (work: Promise<number>): Promise<void> => work.then(setExitCode);
  const program = new Command('lanchat')
    .description('Terminal chat over TCP for people on the same network: an IP, a port, and talk.')
    .version(version(), '-V, --version')
    .exitOverride()
    .configureOutput({
      writeOut: (text) => ctx.stdout.write(text),
      writeErr: (text) => ctx.stderr.write(text),
      outputError: (text, write) => write(`lanchat: ${plainUsageError(text)}`),
    })
    .helpCommand(true)
    .addHelpText('after', EXAMPLES);

  addSessionOptions(
    program
      .command('listen')
      .description('wait for one peer on PORT and chat with it (0 picks a free port)')
      .argument('<port>', 'port to listen on, 0 for any free one', parseListenPort)
      .option('--host <address>', 'listen on this address only (default: every interface, IPv4 and IPv6)')
      .option('-k, --keep', 'after a session ends, wait for the next peer (one at a time)')
      .option('--allow <cidrs>', 'accept only these addresses or CIDR ranges, comma-separated (10.0.0.0/8,fd00::/8)', parseList)
      .option('--idle-timeout <seconds>', 'end a session after this long with no traffic', parseSeconds)
      .option('--room [name]', 'host a room: many people in one chat (name: your nick unless given)', parseRoomName)
      .option('--max-peers <n>', 'with --room: members at most (default 50)', parseMaxPeers)
      .option('--announce', 'be findable: announce this listener on the local network (mDNS/DNS-SD, see lanchat discover)')
      .option('--no-announce', 'do not announce, even if `lanchat config announce on`')
      .addOption(
        new Option('--insecure', 'also accept lanchat connectors that do not encrypt (connect --insecure)').conflicts([
          'secureOnly',
          'knownOnly',
        ]),
      )
      .option('--accept-files <dir>', 'take the files a peer sends (lanchat send, /send) into DIR without asking')
      .option('--max-file-size <size>', 'refuse files bigger than this (500M, 2G, …)', parseSize)
      .option('--secure-only', 'accept encrypted lanchat sessions only: no plaintext, no netcat')
      .option('--known-only', "accept only connectors whose key is a contact's or a known peer's (implies --secure-only)"),
  )
    .addHelpText(
      'after',
      '\nSessions are encrypted (TLS 1.3); netcat peers are accepted in plaintext unless --secure-only.\n\nExamples:\n  lanchat listen 5000\n  lanchat listen 0 --host 127.0.0.1 > received.txt\n  lanchat listen 5000 --keep --log chat.txt\n  lanchat listen 5000 --known-only          only contacts and known peers\n  lanchat listen 5000 --announce            findable by lanchat discover and chat NAME\n  lanchat listen 5000 --accept-files ~/in   receive files (lanchat send) into ~/in',
    )
    .action(async (port: number, flags: ListenFlags) => run(import('./commands/listen.js').then((m) => m.listen(port, flags, ctx))));

  addConnectOptions(
    program
      .command('connect')
      .description('connect to a peer listening on HOST:PORT and chat')
      .argument('<host>', 'IPv4 or IPv6 address, or host name; or HOST:PORT, [IPv6]:PORT as one argument')
      .argument('[port]', 'port the peer listens on', parsePort)
      // From the start menu's people nearby: the key the listener announced, which it must present.
      .addOption(new Option('--announced <fp>').argParser(parseFingerprint).conflicts(['insecure', 'raw']).hideHelp()),
  )
    .addHelpText(
      'after',
      "\nThe session is encrypted (TLS 1.3); the listener's key is pinned the first time and checked after.\n\nExamples:\n  lanchat connect 192.168.1.20 5000\n  seq 3 | lanchat connect ::1 5000\n  lanchat connect --raw 127.0.0.1 6000            to nc -l\n  lanchat connect --fingerprint AB:CD:… 10.0.0.4 5000",
    )
    .action(async (host: string, port: number | undefined, flags: ConnectFlags) =>
      run(import('./commands/connect.js').then((m) => m.connect(host, port, flags, ctx))),
    );

  addConnectOptions(
    program
      .command('chat')
      .description('connect to a contact (see lanchat contacts), else to a listener nearby that announces NAME (see lanchat discover)')
      .argument('<name>', 'contact name, or the nick or room a listener nearby announces'),
  )
    .addHelpText(
      'after',
      '\nThe session is encrypted (TLS 1.3); the contact\'s key is pinned the first time and checked after.\nA listener found nearby must present the key it announced.\n\nExamples:\n  lanchat chat bob\n  echo "lunch?" | lanchat chat bob',
    )
    .action(async (name: string, flags: ConnectFlags) => run(import('./commands/chat.js').then((m) => m.chat(name, flags, ctx))));

  program
    .command('send')
    .description('send files to a lanchat listener (listen --accept-files, or a person in a chat who types /accept)')
    .argument('<file...>', 'the files to send')
    .requiredOption('--to <target>', 'HOST:PORT ([v6]:PORT for IPv6), a contact, or the nick a listener nearby announces')
    .option('-n, --nick <name>', 'your nick (default: as for connect)', parseNick)
    .option('-t, --timeout <seconds>', 'give up connecting (and waiting for the handshake) after this long', parseSeconds, 10)
    .option('-r, --retry <count>', 'try again this many times, a second apart, while nobody answers', parseCount, 0)
    .option('--insecure', 'do not encrypt (the listener must allow it with listen --insecure)')
    .addOption(
      new Option('--fingerprint <fp>', 'demand exactly this listener key (see connect --fingerprint)')
        .argParser(parseFingerprintOrDigits)
        .conflicts(['insecure']),
    )
    .option('--wait <seconds>', 'at the end, how long to wait without progress for the receiver', parseSeconds, 10)
    .option('--alive <seconds>', 'take the receiver for lost after this long without a sign of life (0: never)', parseAlive, 15)
    .addHelpText(
      'after',
      '\nExits 0 only once the receiver has checked every file (SHA-256). A transfer cut short resumes\nwhen the same file is sent again to the same receiver. Progress shows on a terminal.\n\nExamples:\n  lanchat send report.pdf --to 192.168.1.20:5000\n  lanchat send *.jpg --to bob\n  lanchat send big.iso --to [fe80::1%eth0]:5000',
    )
    .action(async (files: string[], flags: SendFlags) => run(import('./commands/send.js').then((m) => m.send(files, flags, ctx))));

  program
    .command('discover')
    .description('list the lanchat listeners nearby that announce themselves (listen --announce)')
    .option('--timeout <seconds>', 'how long to listen for answers (default 2)', parseSeconds)
    .option('--json', 'print JSON')
    .addHelpText(
      'after',
      '\nA table on a terminal; nick<TAB>host<TAB>port<TAB>fingerprint lines in a pipe.\n\nExamples:\n  lanchat discover\n  lanchat discover --timeout 5 --json',
    )
    .action(async (flags: { timeout?: number; json?: boolean }) =>
      run(import('./commands/discover.js').then((m) => m.discover(flags, ctx))),
    );

  const contacts = program
    .command('contacts')
    .description('the address book: add, list, show, edit, remove, rename, path')
    .addHelpText(
      'after',
      '\nExamples:\n  lanchat contacts add bob 192.168.1.20 5000\n  lanchat contacts add bob 192.168.1.20:5000\n  lanchat contacts add bob 192.168.1.20 5000 --force --fingerprint AB:CD:…\n  lanchat contacts list\n  lanchat contacts rename bob robert',
    );
  const book = (): Promise<typeof ContactCommands> => import('./commands/contacts.js');
  contacts
    .command('add')
    .description('add a contact (asks for missing arguments at a terminal)')
    .argument('[name]', '1-32 letters, digits, ".", "_" or "-"')
    .argument('[host]', 'IPv4 or IPv6 address, or host name; or HOST:PORT, [IPv6]:PORT as one argument')
    .argument('[port]', 'port the contact listens on')
    .option('--nearby [nick]', 'take the address and key from the listener nearby that announces NICK (default: NAME)')
    .option('--force', 'replace a contact of the same name')
    .option(
      '--fingerprint <fp>',
      "the contact's key, as `lanchat id` prints it on their side (else the first chat pins it)",
      parseFingerprint,
    )
    .addHelpText(
      'after',
      '\nExamples:\n  lanchat contacts add                       asks for name, host and port\n  lanchat contacts add bob 192.168.1.20 5000\n  lanchat contacts add bob 192.168.1.20 5000 --fingerprint AB:CD:…\n  lanchat contacts add bob --nearby          from lanchat discover',
    )
    .action(
      async (name?: string, host?: string, port?: string, flags: { force?: boolean; fingerprint?: string; nearby?: string | true } = {}) =>
        run(book().then((m) => m.contactsAdd([name, host, port], flags, ctx))),
    );
  contacts
    .command('list')
    .description('list contacts (a table on a terminal, name<TAB>host<TAB>port lines otherwise)')
    .option('--json', 'print JSON')
    .addHelpText(
      'after',
      '\nExamples:\n  lanchat contacts list\n  lanchat contacts list | cut -f1        the names alone\n  lanchat contacts list --json',
    )
    .action(async (flags: { json?: boolean }) => run(book().then((m) => m.contactsList(flags, ctx))));
  contacts
    .command('show')
    .description('show one contact')
    .argument('<name>')
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExamples:\n  lanchat contacts show bob\n  lanchat contacts show bob --json')
    .action(async (name: string, flags: { json?: boolean }) => run(book().then((m) => m.contactsShow(name, flags, ctx))));
  contacts
    .command('remove')
    .description('remove a contact')
    .argument('<name>')
    .addHelpText('after', '\nExample:\n  lanchat contacts remove bob')
    .action(async (name: string) => run(book().then((m) => m.contactsRemove(name, ctx))));
  contacts
    .command('rename')
    .description('rename a contact')
    .argument('<old>')
    .argument('<new>')
    .addHelpText('after', '\nExample:\n  lanchat contacts rename bob robert          keeps the address and the key')
    .action(async (from: string, to: string) => run(book().then((m) => m.contactsRename(from, to, ctx))));
  contacts
    .command('edit')
    .description('change the host or port of a contact, keeping its key')
    .argument('<name>')
    .option('--host <host>', 'its new IPv4 or IPv6 address, or host name')
    .option('--port <port>', 'its new port', parsePort)
    .action(async (name: string, flags: { host?: string; port?: number }) => run(book().then((m) => m.contactsEdit(name, flags, ctx))));
  contacts
    .command('path')
    .description('print where the contacts file is')
    .addHelpText('after', '\nExamples:\n  lanchat contacts path\n  $EDITOR "$(lanchat contacts path)"')
    .action(async () => run(book().then((m) => m.contactsPath(ctx))));

  program
    .command('id')
    .description("print this install's fingerprint (SHA-256 of its certificate), made on first use")
    .addHelpText(
      'after',
      '\nThe first line is the fingerprint alone (for scripts and for comparing); the digits below are for reading it aloud\n(connect --fingerprint takes either). Where the identity is kept goes to stderr.\n\nExamples:\n  lanchat id\n  lanchat id | head -1        the fingerprint alone',
    )
    .action(async () => run(import('./commands/id.js').then((m) => m.id(ctx))));

  program
    .command('forget')
    .description('drop the pinned key of a contact or an address (after it really changed), so that the next chat pins the new one')
    .argument('<target>', 'a contact name, or HOST:PORT as shown in the warning (192.168.1.20:5000, [fe80::1]:5000)')
    .argument('[port]', 'with a host: its port (HOST PORT, as connect takes it)')
    .addHelpText(
      'after',
      '\nExamples:\n  lanchat forget bob\n  lanchat forget 192.168.1.20:5000\n  lanchat forget 192.168.1.20 5000\n  lanchat forget [fe80::1]:5000',
    )
    .action(async (target: string, port: string | undefined) =>
      run(import('./commands/forget.js').then((m) => m.forget(target, port, ctx))),
    );

  const config = program
    .command('config')
    .description('settings kept beside the contacts')
    .addHelpText('after', '\nExamples:\n  lanchat config nick alice\n  lanchat config announce on');
  config
    .command('nick')
    .description('show or set your default nick')
    .argument('[name]', 'the new default nick', parseNick)
    .option('--unset', 'forget the default nick (sessions use $LANCHAT_NICK, else your user name)')
    .addHelpText(
      'after',
      '\nExamples:\n  lanchat config nick              shows it\n  lanchat config nick alice        sessions use it unless --nick or $LANCHAT_NICK\n  lanchat config nick --unset      forgets it',
    )
    .action(async (nick: string | undefined, flags: { unset?: boolean }) =>
      run(import('./commands/config.js').then((m) => m.configNick(nick, flags, ctx))),
    );
  config
    .command('announce')
    .description('show or set whether listeners announce themselves on the local network (as with listen --announce)')
    .addArgument(new Argument('[on|off]').choices(['on', 'off']))
    .action(async (value?: 'on' | 'off') => run(import('./commands/config.js').then((m) => m.configAnnounce(value, ctx))));

  program
    .command('completion')
    .description('print a shell completion script: commands, options and contact names')
    .addArgument(new Argument('<shell>').choices(['bash', 'zsh', 'fish']))
    .addHelpText(
      'after',
      '\nExamples:\n  eval "$(lanchat completion bash)"          in ~/.bashrc\n  eval "$(lanchat completion zsh)"           in ~/.zshrc\n  lanchat completion fish > ~/.config/fish/completions/lanchat.fish',
    )
    .action(async (shell: 'bash' | 'zsh' | 'fish') =>
      run(import('./commands/completion.js').then((m) => m.completion(shell, program, ctx))),
    );

  // Each command's usage errors point to its own help.
  const hintAll = (command: Command): void => {
    command.showHelpAfterError(usageHintFor(command));
    command.commands.forEach(hintAll);
  };
  hintAll(program);
  program.hook('preAction', (_, action) => void actionHints.set(program, usageHintFor(action)));
  const parse = program.parseAsync.bind(program);
  program.parseAsync = async (argv, options) => {
    if (argv) {
      const args = options?.from === 'user' ? argv : argv.slice(2);
      await rejectUnknownCommand(program, args);
      rejectSwappedAddress(program, args);
    }
    return parse(argv, options);
  };

  program.allowExcessArguments().action(async () => {
    if (program.args.length > 0)
      program.error(`unknown command '${program.args[0]}'`, { exitCode: EXIT_USAGE, code: 'commander.unknownCommand' });
    if (!ctx.stdin.isTTY) {
      program.outputHelp({ error: true });
      return setExitCode(EXIT_USAGE);
    }
    const { runMenu } = await import('./commands/menu.js');
    await runMenu(ctx, (next) => createProgram(ctx, setExitCode).parseAsync(next, { from: 'user' }));
  });
  return program;
}
