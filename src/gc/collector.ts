import path from 'node:path';
import { loadConfDir, usableNetworks } from '../cni/conf-dir.js';
import { findHostLeftovers, removeHostLeftover, type HostLeftover } from './host-leftovers.js';
import type { Cni } from '../cni/cni.js';
import { runtimeConfFromCache } from '../cni/engine.js';
import type { CacheEntry, SkippedCacheFile } from '../cni/result-cache.js';
import { supportsGc } from '../cni/version.js';
import type { ContainerInfo, DockerClient } from '../docker/docker-client.js';
import { describeError, DockcniError } from '../errors.js';
import { removeIfExists, staleTempFiles } from '../fs-atomic.js';
import { CONTAINER_ID, holdsNetns, isCurrent, type AttachmentRecord } from '../state/attachment.js';
import type { AttachmentStore } from '../state/attachment-store.js';
import { NETWORKS_LABEL } from '../wiring/label-keys.js';
import type { HostFirewall } from '../wiring/host-firewall.js';
import type { NetnsPins } from '../wiring/netns-pins.js';
import type { Wirer } from '../wiring/wirer.js';

/** Something dockcni set up that no live container needs any more. */
export type Leftover =
  | { readonly kind: 'attachment'; readonly containerId: string; readonly name: string; readonly why: string; readonly networks: readonly string[] }
  | { readonly kind: 'sandbox'; readonly containerId: string; readonly name: string; readonly why: string }
  | { readonly kind: 'pin'; readonly containerId: string; readonly path: string }
  | { readonly kind: 'cache'; readonly containerId: string; readonly network: string; readonly ifName: string; readonly path: string }
  | { readonly kind: 'temp'; readonly containerId: string; readonly path: string }
  | { readonly kind: 'unreadable'; readonly containerId: string; readonly path: string };

export interface CollectorOptions {
  readonly docker: DockerClient;
  readonly wirer: Pick<Wirer, 'unwire'>;
  readonly engine: Cni;
  readonly store: AttachmentStore;
  readonly pins: NetnsPins;
  readonly confDir: string;
  readonly firewall: Pick<HostFirewall, 'containersWithRules' | 'revokePortMapped' | 'pluginChains' | 'removeChain'>;
  /** A `run` sandbox younger than this may still be waiting for its app to be created. */
  readonly sandboxGraceMs: number;
}

/** A leftover that could not be removed: names it, so a report never calls it removed. */
export class CleanupError extends DockcniError {
  override readonly name = 'CleanupError';
  constructor(readonly item: Leftover | HostLeftover, message: string, cause: unknown) {
    super('cleanup-failed', message, { cause });
  }
}

/** What a scan found: the leftovers, and what it read to find them. */
export interface Scan {
  readonly leftovers: readonly Leftover[];
  /** Containers labelled dockcni.networks, running or not. */
  readonly labelled: readonly ContainerInfo[];
  readonly records: readonly AttachmentRecord[];
  /** Files in the CNI results dir that are not usable cache entries: left alone, reported. */
  readonly skippedCache: readonly SkippedCacheFile[];
  /** Cache entries of other runtimes (containerd, CRI-O, cnitool…): read, never touched. */
  readonly foreignCache: readonly CacheEntry[];
}

/** What a GC of every network did: the DELs it ran, and what failed. */
export interface GcReport {
  readonly deleted: readonly CacheEntry[];
  readonly errors: readonly Error[];
}

/** A record of an earlier run of a container that runs again: the daemon's wiring replaces it. */
export const RESTARTED = 'container restarted since it was wired';

function whyStale(record: AttachmentRecord, container: ContainerInfo | undefined): string | undefined {
  if (!container) return 'container is gone';
  if (!container.running) return 'container is not running';
  if (!isCurrent(record, container.pid, container.startedAt)) return RESTARTED;
  return undefined;
}

/**
 * Garbage collection: finds what dockcni set up that no live container needs (records, cache entries,
 * pins, `run` sandboxes, temp files; on the host, reservations, chains and rules) and removes it. `gc`,
 * `doctor` and the daemon's reconcile share it.
 */
export class Collector {
  constructor(private readonly o: CollectorOptions) {}

  async scan(): Promise<Scan> {
    const [labelled, { records, unreadable }, pins, cache] = await Promise.all([
      this.o.docker.listByLabel(NETWORKS_LABEL), this.o.store.scan(), this.o.pins.list(), this.o.engine.cachedAttachments(),
    ]);
    const containers = new Map(labelled.map((c) => [c.id, c]));
    const known = async (id: string) => {
      if (!containers.has(id)) {
        const c = await this.o.docker.inspect(id);
        if (c) containers.set(c.id, c);
      }
      return containers.get(id);
    };
    const leftovers: Leftover[] = [];
    for (const record of records) {
      const why = whyStale(record, await known(record.containerId));
      // Also a record kept only to say why its wiring failed: its container is gone, so is the reason.
      if (why) {
        leftovers.push({ kind: 'attachment', containerId: record.containerId, name: record.name, why, networks: record.networks.map((n) => n.network) });
      }
    }
    // A `run` sandbox is dockcni's own container: its record says so, and names its app.
    for (const record of records.filter((r) => r.origin === 'run')) {
      const sandbox = containers.get(record.containerId);
      if (sandbox === undefined || !sandbox.running) continue;
      const app = record.app !== undefined && CONTAINER_ID.test(record.app) ? await known(record.app) : undefined;
      if (app?.running) continue;
      if (record.app === undefined && Date.now() - Date.parse(sandbox.createdAt) <= this.o.sandboxGraceMs) continue;
      leftovers.push({ kind: 'sandbox', containerId: sandbox.id, name: sandbox.name, why: record.app === undefined ? 'its app never started' : 'its app is not running' });
    }
    const recorded = new Set(records.filter(holdsNetns).map((r) => r.containerId));
    const owned = cache.entries.filter((e) => this.owns(e));
    // Cache entries before pins: their DEL needs the netns a pin may still hold.
    for (const entry of owned) {
      if (!recorded.has(entry.containerId)) {
        leftovers.push({ kind: 'cache', containerId: entry.containerId, network: entry.networkName, ifName: entry.ifName, path: `${entry.networkName}-${entry.containerId}-${entry.ifName}` });
      }
    }
    for (const id of pins) if (!recorded.has(id)) leftovers.push({ kind: 'pin', containerId: id, path: this.o.pins.pathFor(id) });
    for (const id of unreadable) leftovers.push({ kind: 'unreadable', containerId: id, path: this.o.store.pathFor(id) });
    for (const file of [...cache.orphanedTemps, ...await staleTempFiles(this.o.store.dir)]) {
      leftovers.push({ kind: 'temp', containerId: path.basename(file), path: file });
    }
    return { leftovers, labelled, records, skippedCache: cache.skipped, foreignCache: cache.entries.filter((e) => !this.owns(e)) };
  }

  /**
   * Reservations and iptables chains of containers no runtime knows: for `gc` and `doctor` only (it scans
   * iptables and every network's reservations, which the daemon's reconcile has no use for).
   */
  async hostLeftovers(): Promise<HostLeftover[]> {
    const [cache, records] = await Promise.all([this.o.engine.cachedAttachments(), this.o.store.list()]);
    const listing = loadConfDir(this.o.confDir);
    const known = new Set([...cache.entries.map((e) => e.containerId), ...records.map((r) => r.containerId)]);
    // Only what dockcni began to wire is its to remove: another runtime's cache may live elsewhere.
    const ours = this.o.store.remembered();
    const isKnown = async (id: string) => !ours.has(id) || known.has(id) || (/^[0-9a-f]{64}$/.test(id) && (await this.o.docker.inspect(id))?.running === true);
    return findHostLeftovers(usableNetworks(listing), isKnown, this.o.firewall);
  }

  /** Removes host leftovers; returns the errors. */
  async removeHost(items: readonly HostLeftover[]): Promise<Error[]> {
    const errors: Error[] = [];
    for (const item of items) {
      try {
        await removeHostLeftover(item, this.o.firewall);
      } catch (error) {
        errors.push(new CleanupError(item, `${item.kind} of ${item.containerId.slice(0, 12)}: ${describeError(error)}`, error));
      }
    }
    return errors;
  }

  /** Removes each leftover; returns the errors (one bad item does not stop the others). */
  async remove(leftovers: readonly Leftover[]): Promise<Error[]> {
    const errors: Error[] = [];
    for (const item of leftovers) {
      try {
        if (item.kind === 'attachment') await this.o.wirer.unwire(item.containerId);
        else if (item.kind === 'sandbox') {
          await this.o.wirer.unwire(item.containerId);
          await this.o.docker.remove(item.containerId);
        } else if (item.kind === 'pin' || item.kind === 'unreadable') await this.o.wirer.unwire(item.containerId);
        else if (item.kind === 'temp') await removeIfExists(item.path);
        else {
          const entry = await this.o.engine.cachedAttachment(item.network, item.containerId, item.ifName);
          if (entry && this.owns(entry)) await this.o.engine.del(item.network, runtimeConfFromCache(entry));
        }
      } catch (error) {
        errors.push(new CleanupError(item, `${item.kind} ${item.containerId.slice(0, 12)}: ${describeError(error)}`, error));
      }
    }
    return errors;
  }

  /**
   * Spec GC for every 1.1.0 network. What GC keeps is read while it holds the network: every
   * attachment a record holds (an ADD in flight has its intent record) and every attachment of another
   * runtime, which is not dockcni's to judge.
   */
  async cniGc(): Promise<GcReport> {
    const listing = loadConfDir(this.o.confDir);
    const deleted: CacheEntry[] = [];
    const errors: Error[] = [];
    for (const list of listing.networks.filter((n) => supportsGc(n.cniVersion))) {
      const outcome = await this.o.engine.gc(list, async (cached) => {
        const records = await this.o.store.list();
        return [
          ...records.flatMap((r) => r.networks.map((n) => ({ containerID: r.containerId, ifname: n.ifName }))),
          ...cached.filter((e) => !this.owns(e)).map((e) => ({ containerID: e.containerId, ifname: e.ifName })),
        ];
      });
      deleted.push(...outcome.deleted);
      errors.push(...outcome.errors);
    }
    return { deleted, errors };
  }

  /** dockcni's own entries: their netns is one of its pins. Another runtime's entry may have none at all. */
  private owns(entry: CacheEntry): boolean {
    return entry.netns !== undefined && path.dirname(entry.netns) === this.o.pins.dir;
  }
}
