import { readFileSync } from 'node:fs';

/** This package's version, from package.json. */
export function version(): string {
  const pkg = new URL('../package.json', import.meta.url);
  return (JSON.parse(readFileSync(pkg, 'utf8')) as { version: string }).version;
}
