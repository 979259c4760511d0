import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import { PluginNotFoundError } from '../errors.js';
import { isValidPluginType } from './conf.js';

export const DEFAULT_CNI_PATH = ['/opt/cni/bin', '/usr/libexec/cni', '/usr/lib/cni'];

export function splitPath(value: string): string[] {
  return value.split(':').filter((p) => p !== '');
}

/** The first of the directories holding an executable of that exact name, as a shell's PATH search finds it. */
export function firstExecutable(name: string, dirs: readonly string[]): string | undefined {
  for (const dir of dirs) {
    const candidate = path.join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not here (missing or not executable): the next directory may have it.
    }
  }
  return undefined;
}

/**
 * libcni FindInPath: the first directory holding an executable of that exact name. Looked up on every
 * call, as libcni does; synchronously, because a cached stat costs far less than a trip through the
 * thread pool, on each plugin call.
 */
export function findPlugin(type: string, dirs: readonly string[]): string {
  const found = isValidPluginType(type) ? firstExecutable(type, dirs) : undefined;
  if (found === undefined) throw new PluginNotFoundError(type, dirs);
  return found;
}
