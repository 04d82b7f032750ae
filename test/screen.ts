// An in-memory stdout or stderr for Chat tests.
import { once } from 'node:events';
import { PassThrough } from 'node:stream';

/** A stream whose text so far can be read and waited on. */
export class Screen extends PassThrough {
  text = '';

  constructor() {
    super();
    this.setEncoding('utf8');
    this.on('data', (chunk: string) => (this.text += chunk));
  }

  /** Resolves once the text matches `pattern` (checked on every write, never by polling); gives up after `ms`. */
  async waitFor(pattern: RegExp, ms = 5000): Promise<RegExpMatchArray> {
    const signal = AbortSignal.timeout(ms);
    for (;;) {
      const match = this.text.match(pattern);
      if (match) return match;
      try {
        await once(this, 'data', { signal });
      } catch {
        throw new Error(`timed out waiting for ${pattern}; the text so far:\n${this.text}`);
      }
    }
  }

  count(needle: string): number {
    return this.text.split(needle).length - 1;
  }
}
