import { lstatSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { DockcniError } from '../errors.js';

/**
 * dockerd runs the registered runtime as root for every container start, and the runtime runs runc,
 * Node and dockcni's Node entry. If anyone but root can change one of those files, or a directory on
 * the way to it, every container start runs that person's code as root (a global npm prefix owned by a
 * user is the usual way in). A directory others may write is allowed only with the sticky bit and
 * root as its owner (/tmp): then nobody else can rename or replace what root put in it. A path that
 * does not exist is not a problem of trust (nothing there runs).
 */
export function untrustedPathProblems(files: readonly string[]): string[] {
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const file of files) {
    let real: string;
    try {
      real = realpathSync(file);
    } catch (error) {
      // Nothing there to run: whoever runs it reports that (install, status, doctor).
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw error;
    }
    const chain: string[] = [];
    for (let p = real; ; p = path.dirname(p)) {
      chain.push(p);
      if (p === path.dirname(p)) break;
    }
    for (const p of chain) {
      if (seen.has(p)) continue;
      seen.add(p);
      const info = lstatSync(p);
      const writable = (info.mode & 0o022) !== 0;
      const stickyRootDir = info.isDirectory() && (info.mode & 0o1000) !== 0 && info.uid === 0;
      if (info.uid !== 0) problems.push(`${p} (on the way to ${real}) is owned by uid ${info.uid}, not root`);
      else if (writable && !stickyRootDir) problems.push(`${p} (on the way to ${real}) is writable by ${(info.mode & 0o002) !== 0 ? 'everyone' : `group ${info.gid}`} (mode ${(info.mode & 0o7777).toString(8)})`);
    }
  }
  return problems;
}

/** Throws, naming each path and the fix, when the chain dockerd would run as root is not root's alone. */
export function checkTrustedPaths(files: readonly string[]): void {
  const problems = untrustedPathProblems(files);
  if (problems.length === 0) return;
  throw new DockcniError('untrusted-path', `refusing to register a runtime that runs files others can change, as root, on every container start: ${problems.join('; ')}`, {
    fix: 'install dockcni where only root can write (e.g. npm install -g as root with a root-owned prefix), or chown root and chmod go-w the paths named',
  });
}
