import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { ConfigError, NetworkNotFoundError } from '../errors.js';
import { MAX_CONF_BYTES, parseConfList, parseSingleConf } from './conf.js';
import { DEFAULT_NETWORK_NAME, defaultNetwork } from './default-network.js';
import type { NetworkConfigList } from './types.js';

export interface ShadowedNetwork {
  readonly name: string;
  readonly file: string;
  /** The earlier file whose network of the same name wins. */
  readonly by: string;
}

export interface ConfDirListing {
  readonly dir: string;
  readonly exists: boolean;
  /** One per name, the winner in libcni's order: .conflist files by file name, then .conf/.json. */
  readonly networks: readonly NetworkConfigList[];
  /** Files that could not be used. They hide nothing: every other file still loads. */
  readonly problems: readonly ConfigError[];
  readonly shadowed: readonly ShadowedNetwork[];
}

const LIST_EXT = ['.conflist'];
const SINGLE_EXT = ['.conf', '.json'];

function readConf(file: string): Buffer {
  // stat first: a huge file is refused before it is read, a FIFO is never opened; a symlink loop or an
  // unreadable file throws here.
  const info = statSync(file);
  if (!info.isFile()) throw new ConfigError(file, 'not a regular file');
  if (info.size > MAX_CONF_BYTES) {
    throw new ConfigError(file, `file is ${info.size} bytes, over the ${MAX_CONF_BYTES}-byte limit for a CNI config`);
  }
  return readFileSync(file);
}

function loadOne(file: string, single: boolean): NetworkConfigList | ConfigError {
  try {
    const bytes = readConf(file);
    return single ? parseSingleConf(bytes, file) : parseConfList(bytes, file);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    const code = (error as NodeJS.ErrnoException).code ?? '';
    const reason = code === 'ELOOP' ? 'symlink loop' : code === 'EACCES' ? 'permission denied' : (error as Error).message;
    return new ConfigError(file, `cannot read: ${reason}`, { cause: error });
  }
}

/**
 * Reads every config of a conf dir. A broken file is reported, never fatal to the others. Synchronous
 * reads: a conf dir is a few files of a few KB, read on every wiring; from the page cache that takes
 * a fraction of a thread-pool round trip per call (measured in the daemon: `npm run bench`).
 */
export function loadConfDir(dir: string): ConfDirListing {
  let entries: string[];
  try {
    entries = readdirSync(dir).sort();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { dir, exists: false, networks: [], problems: [], shadowed: [] };
    throw new ConfigError(dir, `cannot read conf dir: ${(error as Error).message}`, { cause: error });
  }
  const ordered = [
    ...entries.filter((e) => LIST_EXT.includes(path.extname(e))).map((e) => ({ file: path.join(dir, e), single: false })),
    ...entries.filter((e) => SINGLE_EXT.includes(path.extname(e))).map((e) => ({ file: path.join(dir, e), single: true })),
  ];
  const loaded = ordered.map(({ file, single }) => loadOne(file, single));
  const networks = new Map<string, NetworkConfigList>();
  const problems: ConfigError[] = [];
  const shadowed: ShadowedNetwork[] = [];
  for (const item of loaded) {
    if (item instanceof ConfigError) {
      problems.push(item);
      continue;
    }
    const winner = networks.get(item.name);
    if (winner === undefined) networks.set(item.name, item);
    else shadowed.push({ name: item.name, file: item.source, by: winner.source });
  }
  return { dir, exists: true, networks: [...networks.values()], problems, shadowed };
}

/** A network by name: the conf dir first, then the embedded default for the name `dockcni`. */
export function pickNetwork(listing: ConfDirListing, name: string): NetworkConfigList {
  const found = listing.networks.find((n) => n.name === name);
  if (found !== undefined) return found;
  if (name === DEFAULT_NETWORK_NAME) return defaultNetwork();
  throw new NetworkNotFoundError(name, listing.dir, listing.problems.map((p) => p.message));
}

export function findNetwork(dir: string, name: string): NetworkConfigList {
  return pickNetwork(loadConfDir(dir), name);
}

/** Every network dockcni can wire: the conf dir's, and the embedded one unless a file overrides it. */
export function usableNetworks(listing: ConfDirListing): readonly NetworkConfigList[] {
  return listing.networks.some((n) => n.name === DEFAULT_NETWORK_NAME) ? listing.networks : [...listing.networks, defaultNetwork()];
}
