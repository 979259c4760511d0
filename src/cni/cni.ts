import type { CacheEntry, SkippedCacheFile } from './result-cache.js';
import type { CniResult, GcAttachment, NetworkConfigList, RuntimeConf } from './types.js';

/**
 * The attachments GC must keep, asked for while GC holds the network: no ADD can finish between this
 * answer and the DELs, so nothing that completes meanwhile is collected. It sees what is cached.
 */
export type GcValid = (cached: readonly CacheEntry[]) => Promise<readonly GcAttachment[]>;

export interface GcOutcome {
  /** Cached attachments that were not valid and were DELeted. */
  readonly deleted: readonly CacheEntry[];
  readonly errors: readonly Error[];
}

/** libcni's GetCachedAttachments, plus what it silently skips. */
export interface CachedAttachments {
  readonly entries: readonly CacheEntry[];
  /** Files in the results dir that are not usable entries (named so callers can say so once). */
  readonly skipped: readonly SkippedCacheFile[];
  /** Temp files of dockcni writers that died between write and rename. */
  readonly orphanedTemps: readonly string[];
}

/**
 * What consumers of the engine depend on (libcni's CNI interface): list operations and the cached
 * attachments. The implementation is CniEngine; tests use small fakes.
 */
export interface Cni {
  add(list: NetworkConfigList, rt: RuntimeConf): Promise<CniResult>;
  check(list: NetworkConfigList, rt: RuntimeConf): Promise<void>;
  /** `current` is used only when nothing is cached for the attachment. */
  del(network: string, rt: RuntimeConf, current?: NetworkConfigList): Promise<void>;
  gc(list: NetworkConfigList, valid: GcValid): Promise<GcOutcome>;
  status(list: NetworkConfigList): Promise<{ readonly supported: boolean }>;
  cachedAttachment(network: string, containerId: string, ifName: string): Promise<CacheEntry | undefined>;
  cachedAttachments(): Promise<CachedAttachments>;
}
