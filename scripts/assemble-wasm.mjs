// Assembles src/linefeeds.wat into src/linefeeds-wasm.ts (its bytes, base64),
// so that the module loads from source and from dist alike. Run after changing
// the .wat: `npm run wasm`; `--check` fails if they differ (test/linefeeds.test.ts).
import { readFileSync, writeFileSync } from 'node:fs';
import wabt from 'wabt';

const source = new URL('../src/linefeeds.wat', import.meta.url);
const target = new URL('../src/linefeeds-wasm.ts', import.meta.url);

const module = (await wabt()).parseWat('linefeeds.wat', readFileSync(source, 'utf8'));
module.validate();
const bytes = Buffer.from(module.toBinary({}).buffer);
const text = `// Written by scripts/assemble-wasm.mjs from src/linefeeds.wat: do not edit.\nexport const LINEFEEDS_WASM =\n  '${bytes.toString('base64')}';\n`;
if (process.argv.includes('--check')) {
  if (readFileSync(target, 'utf8') !== text) {
    console.error('src/linefeeds-wasm.ts is not src/linefeeds.wat assembled: run `npm run wasm`');
    process.exit(1);
  }
} else {
  writeFileSync(target, text);
  console.log(`${bytes.length} bytes -> src/linefeeds-wasm.ts`);
}
