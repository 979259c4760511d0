import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The installed package's own directory, found upwards from this module: the same code runs from
 * dist/src/… (the library, the tests) and from the CLI bundle's dist/cli/, at different depths.
 */
export function packageRoot(): string {
  for (let dir = path.dirname(fileURLToPath(import.meta.url)); ; dir = path.dirname(dir)) {
    const manifest = path.join(dir, 'package.json');
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === 'dockcni') return dir;
    if (path.dirname(dir) === dir) throw new Error(`dockcni's package.json not found above ${fileURLToPath(import.meta.url)}`);
  }
}

/** dockcni's version, from its package.json. */
export function packageVersion(): string {
  return (JSON.parse(readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
}
