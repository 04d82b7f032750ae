/** Exit codes shared by every command (see README, "Exit codes"). */
export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** 128 + the signal's number, for the signals lanchat handles (goodbye first). */
const SIGNAL_EXIT: Record<string, number> = { SIGHUP: 129, SIGINT: 130, SIGTERM: 143 };

/** Exit code for a signal name (an AbortSignal's reason, say), or undefined. */
export function signalExitCode(reason: unknown): number | undefined {
  return typeof reason === 'string' ? SIGNAL_EXIT[reason] : undefined;
}

/**
 * How a conversation ended, for its command to turn into an exit code: stopped
 * by a signal (Ctrl-C at the keyboard is SIGINT, a closed terminal SIGHUP), or
 * ended with or without a failure.
 */
export type Outcome = { signal: unknown } | { failed: boolean };

/** The one mapping of outcomes to exit codes (see README, "Exit codes"). */
export function exitCode(outcome: Outcome): number {
  if ('signal' in outcome) return signalExitCode(outcome.signal) ?? EXIT_FAILURE;
  return outcome.failed ? EXIT_FAILURE : EXIT_OK;
}

/**
 * The one error type lanchat throws on purpose. `code` is stable (tests and
 * scripts match on it); `message` is the one line a person reads on stderr.
 */
export class LanchatError extends Error {
  readonly code: string;
  readonly exitCode: number;

  constructor(code: string, message: string, exitCode: number = EXIT_FAILURE) {
    super(message);
    this.name = 'LanchatError';
    this.code = code;
    this.exitCode = exitCode;
  }
}

export function usageError(message: string): LanchatError {
  return new LanchatError('ERR_USAGE', message, EXIT_USAGE);
}

/** A peer broke the wire protocol: the session ends, lanchat does not. */
export function protocolError(message: string): LanchatError {
  return new LanchatError('ERR_BAD_FRAME', message);
}
