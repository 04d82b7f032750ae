// Build step: saves the top-level help as commander prints it (80 columns), so
// that `lanchat --help` can answer without loading commander (see src/cli.ts).
import { execFileSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';

const target = new URL('../dist/help.txt', import.meta.url);
rmSync(target, { force: true });
const cli = new URL('../dist/cli.js', import.meta.url);
const help = execFileSync(process.execPath, [cli.pathname, '--help'], { encoding: 'utf8', env: { ...process.env, COLUMNS: '80' } });
if (!help.startsWith('Usage: lanchat')) throw new Error(`unexpected help text: ${help.slice(0, 80)}`);
writeFileSync(target, help);
