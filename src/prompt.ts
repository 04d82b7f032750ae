// Blocking prompts for the moments before a session starts (start menu,
// `contacts add` with missing arguments). readline-sync blocks the event loop,
// so nothing here may run while a session is open.
import type { Writable } from 'node:stream';
import { LanchatError } from './errors.js';

/** What an empty answer does: take `fallback`, or ask again (`required`); else it cancels, as Ctrl-D always does. */
export interface AskOptions {
  fallback?: string;
  required?: boolean;
}

/**
 * Asks until `parse` accepts the answer; `parse` throws a LanchatError whose
 * message is shown before asking again. Ctrl-D (end of input) cancels, after a
 * newline (the terminal echoes none); so does an empty answer unless `options`
 * say otherwise.
 */
export async function ask<T>(question: string, parse: (answer: string) => T, errors: Writable, options: AskOptions = {}): Promise<T> {
  const { default: readlineSync } = await import('readline-sync');
  for (;;) {
    const typed = withDefaultSignals(() => readlineSync.question(question)).trim();
    // readline-sync marks the end of input with a NUL in the raw input.
    if (readlineSync.getRawInput().endsWith('\0')) {
      errors.write('\n');
      throw new LanchatError('ERR_CANCELLED', 'cancelled');
    }
    if (typed === '' && options.required) continue;
    const answer = typed || options.fallback;
    if (answer === undefined) throw new LanchatError('ERR_CANCELLED', 'cancelled');
    try {
      return parse(answer);
    } catch (error) {
      if (!(error instanceof LanchatError)) throw error;
      errors.write(`${error.message}\n`);
    }
  }
}

/**
 * A JavaScript signal handler cannot run while a synchronous read blocks, so
 * during a prompt Ctrl-C, SIGTERM and SIGHUP get their default effect back:
 * the process ends at once (130, 143, 129).
 */
function withDefaultSignals<T>(read: () => T): T {
  const saved = (['SIGHUP', 'SIGINT', 'SIGTERM'] as const).map((signal) => {
    const handlers = process.listeners(signal);
    process.removeAllListeners(signal);
    return { signal, handlers };
  });
  try {
    return read();
  } finally {
    for (const { signal, handlers } of saved) for (const handler of handlers) process.on(signal, handler);
  }
}
