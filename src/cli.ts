#!/usr/bin/env node
// The command line: builds the commander program and maps every outcome to an
// exit code. The only file that reads process.argv, handles signals or exits.
import { readFileSync } from 'node:fs';
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError } from 'commander';
import { connect, type ConnectFlags } from './commands/connect.js';
import { listen, type ListenFlags } from './commands/listen.js';
import { EXIT_FAILURE, EXIT_USAGE, LanchatError } from './errors.js';
import { addSessionOptions, parseCount, parseListenPort, parsePort, parseSeconds, type CliContext } from './options.js';

const EXAMPLES = `
Examples:
  lanchat listen 5000                      wait for a peer on port 5000
  lanchat connect 192.168.1.20 5000        chat with the peer listening there
  echo "build done" | lanchat connect host 5000
  lanchat listen 5000 > received.txt       save what a peer sends
  lanchat connect --raw host 5000          talk to a plain netcat listener (nc -l 5000)`;

function version(): string {
  const pkg = new URL('../package.json', import.meta.url);
  return (JSON.parse(readFileSync(pkg, 'utf8')) as { version: string }).version;
}

/** The program, with its output and exits routed through `ctx` (tests use this). */
export function createProgram(ctx: CliContext, setExitCode: (code: number) => void): Command {
  const program = new Command('lanchat')
    .description('Terminal chat over TCP for people on the same network: an IP, a port, and talk.')
    .version(version(), '-V, --version')
    .exitOverride()
    .configureOutput({
      writeOut: (text) => ctx.stdout.write(text),
      writeErr: (text) => ctx.stderr.write(text),
      outputError: (text, write) => write(text.replace(/^error: /, 'lanchat: ')),
    })
    .showHelpAfterError('(add --help for usage)')
    .addHelpText('after', EXAMPLES);

  addSessionOptions(
    program
      .command('listen')
      .description('wait for one peer on PORT and chat with it (0 picks a free port)')
      .argument('<port>', 'port to listen on, 0 for any free one', parseListenPort)
      .option('--host <address>', 'listen on this address only (default: every interface, IPv4 and IPv6)')
      .option('-k, --keep', 'after a session ends, wait for the next peer (one at a time)'),
  )
    .addHelpText('after', '\nExamples:\n  lanchat listen 5000\n  lanchat listen 0 --host 127.0.0.1 > received.txt\n  lanchat listen 5000 --keep --log chat.txt')
    .action(async (port: number, flags: ListenFlags) => setExitCode(await listen(port, flags, ctx)));

  addSessionOptions(
    program
      .command('connect')
      .description('connect to a peer listening on HOST:PORT and chat')
      .argument('<host>', 'IPv4 or IPv6 address, or host name')
      .argument('<port>', 'port the peer listens on', parsePort)
      .option('-t, --timeout <seconds>', 'give up connecting (and waiting for the handshake) after this long', parseSeconds, 10)
      .option('-r, --retry <count>', 'try again this many times, a second apart, while nobody answers', parseCount, 0)
      .option('--raw', 'speak plain lines with no handshake, to netcat and the like (nc -l)'),
  )
    .addHelpText('after', '\nExamples:\n  lanchat connect 192.168.1.20 5000\n  seq 3 | lanchat connect ::1 5000\n  lanchat connect --raw 127.0.0.1 6000')
    .action(async (host: string, port: number, flags: ConnectFlags) => setExitCode(await connect(host, port, flags, ctx)));

  program.action(() => {
    program.outputHelp({ error: true });
    setExitCode(EXIT_USAGE);
  });
  return program;
}

/** Runs the CLI on this process; resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  const controller = new AbortController();
  const onSignal = (signal: NodeJS.Signals): void => {
    if (controller.signal.aborted) process.exit(signal === 'SIGINT' ? 130 : 143); // asked twice: go now
    controller.abort(signal);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const ctx: CliContext = {
    stdin: process.stdin,
    stdout: process.stdout,
    stderr: process.stderr,
    cwd: process.cwd(),
    env: process.env,
    signal: controller.signal,
  };
  let code = 0;
  try {
    await createProgram(ctx, (c) => (code = c)).parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      code = error.exitCode === 0 ? 0 : EXIT_USAGE;
    } else if (error instanceof LanchatError) {
      process.stderr.write(`lanchat: ${error.message}\n`);
      code = error.exitCode;
    } else {
      const detail = process.env.DEBUG ? (error as Error).stack : (error as Error).message;
      process.stderr.write(`lanchat: internal error: ${detail}\n`);
      code = EXIT_FAILURE;
    }
  }
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  return code;
}

const invokedDirectly = process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
if (invokedDirectly) {
  process.exitCode = await main(process.argv);
  // Nothing is left to do once output is flushed; don't let a stray handle keep us.
  process.stdout.write('', () => process.exit());
}
