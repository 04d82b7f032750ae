// Real terminals for tests: each test file runs its own tmux server, types
// with send-keys and reads the screen with capture-pane.
import { execFileSync } from 'node:child_process';

export const hasTmux = ((): boolean => {
  try {
    execFileSync('tmux', ['-V']);
    return true;
  } catch {
    return false;
  }
})();

export interface Terminals {
  tmux: (...args: string[]) => string;
  /** What the screen shows now. */
  screen: (name: string) => string;
  /** The whole screen and its scrollback, rows that wrapped joined back into lines. */
  history: (name: string) => string;
  /** Resolves once `read(name)` matches `pattern`; gives up after `ms`. */
  waitForScreen: (name: string, pattern: RegExp, ms?: number, read?: (name: string) => string) => Promise<RegExpMatchArray>;
  /** Ends the server and every terminal on it (for afterAll). */
  close: () => void;
}

/** A tmux server of this test file's own, named after `label`. */
export function terminals(label: string): Terminals {
  const socket = `lanchat-${label}-${process.pid}`;
  const tmux = (...args: string[]): string => execFileSync('tmux', ['-L', socket, ...args], { encoding: 'utf8' });
  const screen = (name: string): string => tmux('capture-pane', '-p', '-t', name);
  const history = (name: string): string => tmux('capture-pane', '-p', '-J', '-S', '-', '-t', name);
  const waitForScreen = async (name: string, pattern: RegExp, ms = 5000, read = screen): Promise<RegExpMatchArray> => {
    const deadline = Date.now() + ms;
    for (;;) {
      const match = read(name).match(pattern);
      if (match) return match;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${pattern} on ${name}'s screen:\n${read(name)}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };
  const close = (): void => {
    if (!hasTmux) return;
    try {
      tmux('kill-server');
    } catch {
      // already gone
    }
  };
  return { tmux, screen, history, waitForScreen, close };
}
