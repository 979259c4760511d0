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
  /** libcni 1.1.x and earlier do not write it: absent in other runtimes' entries. */
  readonly netns?: string | undefined;
  readonly cniArgs: readonly (readonly [string, string])[];
  readonly capabilityArgs: Readonly<Record<string, unknown>>;
  readonly result?: CniResult | undefined;
}

/** A file in the results dir that is not a cache entry dockcni can use: named, never touched. */
export interface SkippedCacheFile {
  readonly path: string;
  readonly reason: string;
}

export const DEFAULT_CACHE_DIR = '/var/lib/cni';

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * An entry as libcni's GetCachedAttachments reads it: kind, ids and config are needed; the rest is
 * optional, because every libcni-based runtime writes here and older ones write less.
 */
function parseEntry(text: string): CacheEntry | string {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return 'not JSON';
  }
  if (!isObject(value)) return 'not a JSON object';
  if (value['kind'] !== 'cniCacheV1') return 'not a cniCacheV1 entry (an older libcni wrote the bare result)';
  for (const key of ['containerId', 'networkName', 'ifName', 'config']) {
    if (typeof value[key] !== 'string') return `no "${key}"`;
  }
  const args = Array.isArray(value['cniArgs']) ? value['cniArgs'].filter((p): p is [string, string] => Array.isArray(p) && p.length === 2 && p.every((x) => typeof x === 'string')) : [];
  return {
    kind: 'cniCacheV1',
    containerId: value['containerId'] as string,
    config: value['config'] as string,
    ifName: value['ifName'] as string,
    networkName: value['networkName'] as string,
    netns: typeof value['netns'] === 'string' ? value['netns'] : undefined,
    cniArgs: args,
    capabilityArgs: isObject(value['capabilityArgs']) ? value['capabilityArgs'] : {},
    result: isObject(value['result']) ? value['result'] as CniResult : undefined,
  };
}

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

  /** undefined when there is no usable entry for the attachment (none, or one dockcni cannot read). */
  async read(network: string, containerId: string, ifName: string): Promise<CacheEntry | undefined> {
    const text = await readTextIfExists(this.pathFor(network, containerId, ifName));
    if (text === undefined) return undefined;
    const entry = parseEntry(text);
    return typeof entry === 'string' ? undefined : entry;
  }

  async remove(network: string, containerId: string, ifName: string): Promise<void> {
    await removeIfExists(this.pathFor(network, containerId, ifName));
  }

  async list(): Promise<CacheEntry[]> {
    return (await this.scan()).entries;
  }

  /**
   * Every entry, and every other file with the reason it was skipped: editor backups, directories,
   * empty files, bare results of libcni before 0.8. One bad file never hides the others.
   */
  async scan(): Promise<{ entries: CacheEntry[]; skipped: SkippedCacheFile[] }> {
    const names = (await readdirOrEmpty(this.resultsDir)).filter((n) => !n.includes('.tmp-'));
    const entries: CacheEntry[] = [];
    const skipped: SkippedCacheFile[] = [];
    await Promise.all(names.map(async (name) => {
      const file = path.join(this.resultsDir, name);
      let text: string | undefined;
      try {
        text = await readTextIfExists(file);
      } catch (error) {
        skipped.push({ path: file, reason: `cannot read: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}` });
        return;
      }
      if (text === undefined) return;
      const entry = parseEntry(text);
      if (typeof entry === 'string') skipped.push({ path: file, reason: entry });
      else entries.push(entry);
    }));
    return { entries, skipped };
  }
}
