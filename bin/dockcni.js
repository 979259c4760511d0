#!/usr/bin/env node
// `--version` answers without loading the CLI: it is the cold-start path scripts call most.
import { readFileSync } from 'node:fs';

const args = process.argv.slice(2);
if (args.length === 1 && args[0] === '--version') {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  process.stdout.write(`${pkg.version}\n`);
} else {
  const { main } = await import('../dist/src/cli/main.js');
  await main(args);
}
