import type { Command } from 'commander';
import type { CliContext } from '../options.js';

export const SHELLS = ['bash', 'zsh', 'fish'] as const;
export type Shell = (typeof SHELLS)[number];

/** Commands whose argument is a contact's name: completed from `lanchat contacts list` when asked. */
const TAKES_CONTACT = ['chat', 'forget', 'contacts show', 'contacts remove', 'contacts rename', 'contacts edit'];

/** Every command below `root`, by its path (`contacts add`), the root itself as ''. */
function commandsOf(root: Command, path = ''): Map<string, Command> {
  const found = new Map([[path, root]]);
  for (const sub of root.createHelp().visibleCommands(root)) {
    if (sub.name() === 'help') continue;
    for (const [subPath, command] of commandsOf(sub, path ? `${path} ${sub.name()}` : sub.name())) found.set(subPath, command);
  }
  return found;
}

/** What may come next that is no option: a subcommand, or one of the values its argument takes (on|off). */
function subcommandNames(command: Command): string[] {
  return [
    ...command
      .createHelp()
      .visibleCommands(command)
      .map((sub) => sub.name()),
    ...(command.registeredArguments[0]?.argChoices ?? []),
  ];
}

function optionFlags(command: Command): string[] {
  return command
    .createHelp()
    .visibleOptions(command)
    .flatMap((option) => [option.short, option.long].filter((flag): flag is string => flag !== undefined));
}

/** The contact names, at completion time (`name<TAB>host<TAB>port` lines in a pipe). */
const CONTACT_NAMES = 'lanchat contacts list 2>/dev/null | cut -f1';

function bashScript(root: Command): string {
  const commands = commandsOf(root);
  const cases = (words: (command: Command) => string[]): string =>
    [...commands].map(([path, command]) => `    ${JSON.stringify(path)}) echo ${JSON.stringify(words(command).join(' '))} ;;`).join('\n');
  return `# lanchat completion for bash: add to ~/.bashrc
#   eval "$(lanchat completion bash)"
_lanchat_commands() {
  case "$1" in
${cases(subcommandNames)}
  esac
}
_lanchat_options() {
  case "$1" in
${cases(optionFlags)}
  esac
}
_lanchat() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" path="" word i
  for ((i = 1; i < COMP_CWORD; i++)); do
    word="\${COMP_WORDS[i]}"
    [[ $word == -* ]] && continue
    [[ " $(_lanchat_commands "$path") " == *" $word "* ]] || break
    path="\${path:+$path }$word"
  done
  local words
  if [[ $cur == -* ]]; then
    words="$(_lanchat_options "$path")"
  else
    words="$(_lanchat_commands "$path")"
    case "$path" in
      ${TAKES_CONTACT.map((path) => JSON.stringify(path)).join('|')}) words="$words $(${CONTACT_NAMES})" ;;
    esac
  fi
  local IFS=$'\\n'
  COMPREPLY=($(IFS=$' \\t\\n' compgen -W "$words" -- "$cur"))
}
complete -F _lanchat lanchat
`;
}

function zshScript(root: Command): string {
  return `# lanchat completion for zsh: add to ~/.zshrc
#   eval "$(lanchat completion zsh)"
autoload -U +X compinit && compinit
autoload -U +X bashcompinit && bashcompinit
${bashScript(root).replace(/^# .*\n#.*\n/, '')}`;
}

const fishQuote = (text: string): string => `'${text.replace(/[\\']/g, '\\$&')}'`;

function fishScript(root: Command): string {
  const lines = ['complete -c lanchat -f'];
  for (const [path, command] of commandsOf(root)) {
    const words = path ? path.split(' ') : [];
    // A command with subcommands: the words typed are exactly its path (`__fish_seen_subcommand_from` would also match
    // deeper); one without: they start with it (then come its arguments).
    const at = `__lanchat_at ${command.commands.length > 0 ? 'exact' : 'prefix'} ${words.join(' ')}`.trim();
    for (const sub of command.createHelp().visibleCommands(command)) {
      lines.push(`complete -c lanchat -n ${fishQuote(at)} -a ${sub.name()} -d ${fishQuote(sub.description())}`);
    }
    for (const option of command.createHelp().visibleOptions(command)) {
      const flags = [option.short && `-s ${option.short.slice(1)}`, option.long && `-l ${option.long.slice(2)}`].filter(Boolean).join(' ');
      lines.push(`complete -c lanchat -n ${fishQuote(at)} ${flags}${option.required ? ' -r' : ''} -d ${fishQuote(option.description)}`);
    }
    const choices = command.registeredArguments[0]?.argChoices;
    if (choices) lines.push(`complete -c lanchat -n ${fishQuote(at)} -a ${fishQuote(choices.join(' '))}`);
    if (TAKES_CONTACT.includes(path)) lines.push(`complete -c lanchat -n ${fishQuote(at)} -a ${fishQuote(`(${CONTACT_NAMES})`)}`);
  }
  return `# lanchat completion for fish:
#   lanchat completion fish > ~/.config/fish/completions/lanchat.fish
function __lanchat_at --description 'the words typed after lanchat (options aside) are, or start with, these'
    set -l typed (commandline -opc)
    set -l path
    for word in $typed[2..-1]
        string match -q -- '-*' $word; and continue
        set -a path $word
    end
    set -l wanted $argv[2..-1]
    test $argv[1] = prefix; and set path $path[1..(count $wanted)]
    test "$path" = "$wanted"
end
${lines.join('\n')}
`;
}

/** `lanchat completion bash|zsh|fish`: a script that completes commands, options and contact names. */
export function completion(shell: Shell, program: Command, ctx: CliContext): Promise<number> {
  const script = shell === 'fish' ? fishScript(program) : shell === 'zsh' ? zshScript(program) : bashScript(program);
  ctx.stdout.write(script);
  return Promise.resolve(0);
}
