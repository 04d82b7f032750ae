// Slash commands typed in a session. Pure: a line in, what to do out.

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

export const SLASH_HELP = [
  'commands:',
  '  /nick NAME    change your nick (the peer sees it)',
  '  /me ACTION    send an action, shown as "* nick ACTION"',
  '  /save [FILE]  save the conversation so far to a text file',
  '  /who          who you are talking to, and since when',
  '  /contact NAME [PORT]  save this peer as a contact (a listener needs the PORT the peer listens on)',
  '  /help         this list',
  '  /quit         say goodbye and leave (also Ctrl-D)',
  '  //text        send a line that starts with "/"',
].join('\n');

/** Reads one typed line: a message to send, or a command. */
export function parseInput(line: string): Input {
  if (!line.startsWith('/')) return { command: 'say', text: line };
  if (line.startsWith('//')) return { command: 'say', text: line.slice(1) };
  const match = /^\/(\S*)\s*(.*)$/s.exec(line)!;
  const name = match[1].toLowerCase();
  const arg = match[2].trim();
  switch (name) {
    case 'nick':
      return arg ? { command: 'nick', nick: arg } : { command: 'invalid', hint: 'usage: /nick NAME' };
    case 'me':
      return arg ? { command: 'me', text: arg } : { command: 'invalid', hint: 'usage: /me ACTION' };
    case 'save':
      return { command: 'save', file: arg || null };
    case 'contact': {
      const [name, port, extra] = arg.split(/\s+/);
      const number = port === undefined ? null : /^\d{1,5}$/.test(port) ? Number(port) : NaN;
      if (!name || extra !== undefined || Number.isNaN(number)) return { command: 'invalid', hint: 'usage: /contact NAME [PORT]' };
      return { command: 'contact', name, port: number };
    }
    case 'who':
    case 'help':
    case 'quit':
      return { command: name };
    default:
      return { command: 'invalid', hint: `unknown command /${name} (try /help; type //${name} to send it as text)` };
  }
}
