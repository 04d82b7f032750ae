// Slash commands: the one table of them (what each takes, its help line,
// where it applies, whether it needs a peer), and the parser of a typed line.
// Pure: a line in, what to do out.

/**
 * Where a person types: a 1:1 chat ('direct'), a room joined as a member
 * ('member'), or a room hosted here ('host'). Commands and /help depend on it.
 */
export type Place = 'direct' | 'member' | 'host';
export const PLACES: readonly Place[] = ['direct', 'member', 'host'];

export type Input =
  | { command: 'say'; text: string }
  | { command: 'me'; text: string }
  /** `nick` null: say what our nick is. */
  | { command: 'nick'; nick: string | null }
  | { command: 'save'; file: string | null }
  | { command: 'contact'; name: string; port: number | null }
  /** `nick`: in a room, ask about this member (absent: about the conversation). */
  | { command: 'who'; nick?: string }
  | { command: 'names' }
  /** A private message: only `nick` is told. */
  | { command: 'msg'; nick: string; text: string }
  | { command: 'kick'; nick: string; reason: string | null }
  /** Offer files (paths as typed: words, or quoted with "" or ''). */
  | { command: 'send'; paths: string[] }
  /** Take every file offered, into `dir` (null: the current directory). */
  | { command: 'accept'; dir: string | null }
  | { command: 'decline' }
  /** Stop every file on its way, both ways. */
  | { command: 'cancel' }
  | { command: 'help' }
  | { command: 'quit' }
  /** Not a command we know, or one used wrongly: show `hint`, send nothing. */
  | { command: 'invalid'; hint: string };

interface SlashCommand {
  /** As /help shows it, with its arguments. */
  usage: string;
  help: string;
  /** Where it applies; elsewhere `refusal` is said instead. */
  places: readonly Place[];
  /** In a room (member or host), when /help says it otherwise. */
  room?: { usage: string; help: string };
  /** Works only with someone to talk to (not at a listener that waits for its first peer). */
  needsPeer: boolean;
  /** The command from what follows its name (trimmed); a wrong use is 'invalid' with the usage. */
  parse: (arg: string) => Input;
}

const usage = (text: string): Input => ({ command: 'invalid', hint: `usage: ${text}` });
const EVERYWHERE = PLACES;
const ROOMS: readonly Place[] = ['member', 'host'];

/** The first word of `arg`, and the rest (trimmed; '' when none). */
function firstWord(arg: string): [string, string] {
  const match = /^(\S+)\s*(.*)$/s.exec(arg);
  return match ? [match[1], match[2]] : ['', ''];
}

/**
 * Words as a shell splits them, for paths: spaces separate, "…" and '…'
 * keep them, a backslash escapes the next character. Null when a quote is left open.
 */
export function splitWords(text: string): string[] | null {
  const words: string[] = [];
  let word: string | null = null;
  let quote: string | null = null;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote !== null) {
      if (c === quote) quote = null;
      else word = (word ?? '') + c;
    } else if (c === '"' || c === "'") {
      quote = c;
      word ??= '';
    } else if (c === '\\' && i + 1 < text.length) {
      word = (word ?? '') + text[++i];
    } else if (/\s/.test(c)) {
      if (word !== null) words.push(word);
      word = null;
    } else {
      word = (word ?? '') + c;
    }
  }
  if (quote !== null) return null;
  if (word !== null) words.push(word);
  return words;
}

/** Every command, in /help's order. */
const COMMANDS: Readonly<Record<string, SlashCommand>> = {
  nick: {
    usage: '/nick [NAME]',
    help: 'change your nick (the peer sees it); alone: say what it is',
    places: EVERYWHERE,
    room: { usage: '/nick [NAME]', help: 'change your nick, if nobody in the room has it' },
    needsPeer: false,
    parse: (arg) => ({ command: 'nick', nick: arg || null }),
  },
  me: {
    usage: '/me ACTION',
    help: 'send an action, shown as "* nick ACTION"',
    places: EVERYWHERE,
    needsPeer: true,
    parse: (arg) => (arg ? { command: 'me', text: arg } : usage('/me ACTION')),
  },
  msg: {
    usage: '/msg NICK TEXT',
    help: 'say TEXT to NICK alone',
    places: ROOMS,
    needsPeer: true,
    parse: (arg) => {
      const [nick, text] = firstWord(arg);
      return nick && text ? { command: 'msg', nick, text } : usage('/msg NICK TEXT');
    },
  },
  names: {
    usage: '/names',
    help: 'who is in the room',
    places: ROOMS,
    needsPeer: true,
    parse: () => ({ command: 'names' }),
  },
  save: {
    usage: '/save [FILE]',
    help: 'save the conversation so far to a text file',
    places: EVERYWHERE,
    needsPeer: true,
    parse: (arg) => ({ command: 'save', file: arg || null }),
  },
  who: {
    usage: '/who',
    help: 'who you are talking to, and since when',
    places: EVERYWHERE,
    room: { usage: '/who [NICK]', help: 'this room (or NICK): who, where, since when' },
    needsPeer: false,
    parse: (arg) => {
      const [nick, extra] = firstWord(arg);
      if (extra) return usage('/who [NICK]');
      return nick ? { command: 'who', nick } : { command: 'who' };
    },
  },
  contact: {
    usage: '/contact NAME [PORT]',
    help: 'save this peer as a contact; a listener adds the port the peer listens on',
    places: ['direct', 'member'],
    room: { usage: '/contact NAME', help: "save this room's host as a contact" },
    needsPeer: true,
    parse: (arg) => {
      const [name, port, extra] = arg.split(/\s+/);
      const number = port === undefined ? null : /^\d{1,5}$/.test(port) ? Number(port) : NaN;
      if (!name || extra !== undefined || Number.isNaN(number)) return usage('/contact NAME [PORT]');
      return { command: 'contact', name, port: number };
    },
  },
  kick: {
    usage: '/kick NICK [REASON]',
    help: 'send NICK out of the room',
    places: ['host'],
    needsPeer: true,
    parse: (arg) => {
      const [nick, reason] = firstWord(arg);
      return nick ? { command: 'kick', nick, reason: reason || null } : usage('/kick NICK [REASON]');
    },
  },
  send: {
    usage: '/send PATH...',
    help: 'offer files to the peer ("quote" paths with spaces)',
    places: EVERYWHERE,
    room: { usage: '/send NICK PATH...', help: 'offer files to NICK alone (the host passes them on, keeps none)' },
    needsPeer: true,
    parse: (arg) => {
      const paths = splitWords(arg);
      return paths && paths.length > 0 ? { command: 'send', paths } : usage('/send PATH...');
    },
  },
  accept: {
    usage: '/accept [DIR]',
    help: 'take the files offered, into DIR (default: the current directory)',
    places: EVERYWHERE,
    needsPeer: true,
    parse: (arg) => {
      const words = splitWords(arg);
      return words && words.length <= 1 ? { command: 'accept', dir: words[0] ?? null } : usage('/accept [DIR]');
    },
  },
  decline: {
    usage: '/decline',
    help: 'refuse the files offered',
    places: EVERYWHERE,
    needsPeer: true,
    parse: (arg) => (arg ? usage('/decline') : { command: 'decline' }),
  },
  cancel: {
    usage: '/cancel',
    help: 'stop the files on their way, both ways (sending them again resumes)',
    places: EVERYWHERE,
    needsPeer: true,
    parse: (arg) => (arg ? usage('/cancel') : { command: 'cancel' }),
  },
  help: { usage: '/help', help: 'this list', places: EVERYWHERE, needsPeer: false, parse: () => ({ command: 'help' }) },
  quit: {
    usage: '/quit',
    help: 'say goodbye and leave (also Ctrl-D)',
    places: EVERYWHERE,
    room: { usage: '/quit', help: 'leave the room (also Ctrl-D)' },
    needsPeer: false,
    parse: () => ({ command: 'quit' }),
  },
};

/** /help where you are: the commands that apply there. */
export function slashHelp(place: Place): string {
  const shown = Object.values(COMMANDS)
    .filter((command) => command.places.includes(place))
    .map((command) => (place !== 'direct' && command.room) || command);
  const width = Math.max(...shown.map(({ usage }) => usage.length));
  const lines = shown.map(({ usage, help }) => `  ${usage.padEnd(width)}  ${help}`);
  return ['commands:', ...lines, `  ${'//text'.padEnd(width)}  send a line that starts with "/"`].join('\n');
}

/** /help in a 1:1 chat. */
export const SLASH_HELP = slashHelp('direct');

/** Whether a command works only with someone to talk to. */
export function needsPeer(input: Input): boolean {
  return Object.hasOwn(COMMANDS, input.command) && COMMANDS[input.command].needsPeer;
}

/**
 * Null when `input` applies at `place`; else the one line to say instead
 * ("/names works in a room").
 */
export function refusal(input: Input, place: Place): string | null {
  if (input.command === 'who' && input.nick !== undefined && place === 'direct')
    return '/who NICK works in a room (/who alone says who you talk to)';
  if (!Object.hasOwn(COMMANDS, input.command)) return null; // text, and invalid input (its hint is said)
  const { places } = COMMANDS[input.command];
  if (places.includes(place)) return null;
  if (input.command === 'kick') return place === 'member' ? "only the room's host can kick" : '/kick works in a room you host';
  if (input.command === 'contact') return '/contact works with one peer: at the host, members are not contacts yet';
  return `/${input.command} works in a room`;
}

/**
 * Tab at the keyboard: `line` is what is typed up to the cursor. A command's
 * name completes among those that apply at `place`; any other word among
 * `nicks` (ignoring case). Returns the candidates and the word they replace,
 * as readline's completer does.
 */
export function completeInput(line: string, place: Place, nicks: readonly string[]): [string[], string] {
  const word = /\S*$/.exec(line)![0];
  if (word === line && word.startsWith('/') && !word.startsWith('//')) {
    const names = Object.keys(COMMANDS).filter((name) => COMMANDS[name].places.includes(place));
    return [names.map((name) => `/${name}`).filter((name) => name.startsWith(word.toLowerCase())), word];
  }
  if (word === '') return [[], word];
  const folded = word.toLowerCase();
  return [[...new Set(nicks)].filter((nick) => nick.toLowerCase().startsWith(folded)), word];
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
