#!/usr/bin/env node
// `--version` answers without loading the CLI: it is the cold-start path scripts call most.
import { readFileSync } from 'node:fs';

const args = process.argv.slice(2);
if (args.length === 1 && args[0] === '--version') {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  process.stdout.write(`${pkg.version}\n`);
} else {
  // The CLI as `npm run build` bundles it: the entry with yargs, and each command in a chunk of its own
  // that loads only when that command runs.
  const { main } = await import('../dist/cli/main.js');
  await main(args);
}
