import path from 'node:path';
import { readdirOrEmpty, readTextIfExists, removeIfExists, writeFileAtomic } from '../fs-atomic.js';
import type { CniResult, RuntimeConf } from './types.js';

/** libcni's cache entry, byte-compatible so cnitool, containerd and dockcni see the same state. */
export interface CacheEntry {
  readonly kind: 'cniCacheV1';
  readonly containerId: string;
  readonly config: string;
  readonly ifName: string;
  readonly networkName: string;
  readonly netns: string;
  readonly cniArgs: readonly (readonly [string, string])[];
  readonly capabilityArgs: Readonly<Record<string, unknown>>;
  readonly result: CniResult;
}

export const DEFAULT_CACHE_DIR = '/var/lib/cni';

/** Owns `<cacheDir>/results`: libcni's path scheme `<network>-<containerID>-<ifname>`. */
export class ResultCache {
  constructor(readonly cacheDir: string) {}

  get resultsDir(): string {
    return path.join(this.cacheDir, 'results');
  }

  pathFor(network: string, containerId: string, ifName: string): string {
    return path.join(this.resultsDir, `${network}-${containerId}-${ifName}`);
  }

  async write(network: string, configBytes: Buffer, rt: RuntimeConf, result: CniResult): Promise<void> {
    const entry: CacheEntry = {
      kind: 'cniCacheV1',
      containerId: rt.containerId,
      config: configBytes.toString('base64'),
      ifName: rt.ifName,
      networkName: network,
      netns: rt.netns,
      cniArgs: rt.args,
      capabilityArgs: rt.capabilityArgs,
      result,
    };
    await writeFileAtomic(this.pathFor(network, rt.containerId, rt.ifName), JSON.stringify(entry));
  }

  async read(network: string, containerId: string, ifName: string): Promise<CacheEntry | undefined> {
    return this.readFile(this.pathFor(network, containerId, ifName));
  }

  async remove(network: string, containerId: string, ifName: string): Promise<void> {
    await removeIfExists(this.pathFor(network, containerId, ifName));
  }

  /** Every entry, for GC, `ls` and `doctor`; files that are not cache entries are skipped by name. */
  async list(): Promise<CacheEntry[]> {
    const names = await readdirOrEmpty(this.resultsDir);
    const entries = await Promise.all(names.filter((n) => !n.includes('.tmp-')).map((n) => this.readFile(path.join(this.resultsDir, n))));
    return entries.filter((e): e is CacheEntry => e !== undefined);
  }

  private async readFile(file: string): Promise<CacheEntry | undefined> {
    const text = await readTextIfExists(file);
    if (text === undefined) return undefined;
    const entry = JSON.parse(text) as Partial<CacheEntry>;
    if (entry.kind !== 'cniCacheV1' || typeof entry.networkName !== 'string' || typeof entry.containerId !== 'string') {
      throw new Error(`${file}: not a cniCacheV1 entry`);
    }
    return entry as CacheEntry;
  }
}
