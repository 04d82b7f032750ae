// Slash commands: the one table of them (what each takes, its help line,
// whether it needs a peer), and the parser of a typed line. Pure: a line in,
// what to do out.

export type Input =
  | { command: 'say'; text: string }
  | { command: 'me'; text: string }
  | { command: 'nick'; nick: string }
  | { command: 'save'; file: string | null }
  | { command: 'contact'; name: string; port: number | null }
  | { command: 'who' }
  | { command: 'help' }
  | { command: 'quit' }
  /** Not a command we know, or one used wrongly: show `hint`, send nothing. */
  | { command: 'invalid'; hint: string };

interface SlashCommand {
  /** As /help shows it, with its arguments. */
  usage: string;
  help: string;
  /** Works only with someone to talk to (not at a listener that waits for its first peer). */
  needsPeer: boolean;
  /** The command from what follows its name (trimmed); a wrong use is 'invalid' with the usage. */
  parse: (arg: string) => Input;
}

const usage = (text: string): Input => ({ command: 'invalid', hint: `usage: ${text}` });

/** Every command, in /help's order. */
const COMMANDS: Readonly<Record<string, SlashCommand>> = {
  nick: {
    usage: '/nick NAME',
    help: 'change your nick (the peer sees it)',
    needsPeer: false,
    parse: (arg) => (arg ? { command: 'nick', nick: arg } : usage('/nick NAME')),
  },
  me: {
    usage: '/me ACTION',
    help: 'send an action, shown as "* nick ACTION"',
    needsPeer: true,
    parse: (arg) => (arg ? { command: 'me', text: arg } : usage('/me ACTION')),
  },
  save: {
    usage: '/save [FILE]',
    help: 'save the conversation so far to a text file',
    needsPeer: true,
    parse: (arg) => ({ command: 'save', file: arg || null }),
  },
  who: { usage: '/who', help: 'who you are talking to, and since when', needsPeer: false, parse: () => ({ command: 'who' }) },
  contact: {
    usage: '/contact NAME [PORT]',
    help: 'save this peer as a contact (a listener needs the PORT the peer listens on)',
    needsPeer: true,
    parse: (arg) => {
      const [name, port, extra] = arg.split(/\s+/);
      const number = port === undefined ? null : /^\d{1,5}$/.test(port) ? Number(port) : NaN;
      if (!name || extra !== undefined || Number.isNaN(number)) return usage('/contact NAME [PORT]');
      return { command: 'contact', name, port: number };
    },
  },
  help: { usage: '/help', help: 'this list', needsPeer: false, parse: () => ({ command: 'help' }) },
  quit: { usage: '/quit', help: 'say goodbye and leave (also Ctrl-D)', needsPeer: false, parse: () => ({ command: 'quit' }) },
};

export const SLASH_HELP = [
  'commands:',
  ...Object.values(COMMANDS).map((command) => `  ${command.usage.padEnd(12)}  ${command.help}`),
  `  ${'//text'.padEnd(12)}  send a line that starts with "/"`,
].join('\n');

/** Whether a command works only with someone to talk to. */
export function needsPeer(input: Input): boolean {
  return Object.hasOwn(COMMANDS, input.command) && COMMANDS[input.command].needsPeer;
}

/** Reads one typed line: a message to send, or a command. */
export function parseInput(line: string): Input {
  if (!line.startsWith('/')) return { command: 'say', text: line };
  if (line.startsWith('//')) return { command: 'say', text: line.slice(1) };
  const match = /^\/(\S*)\s*(.*)$/s.exec(line)!;
  const name = match[1].toLowerCase();
  const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!command) return { command: 'invalid', hint: `unknown command /${name} (try /help; type //${name} to send it as text)` };
  return command.parse(match[2].trim());
}
