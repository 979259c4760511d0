import { loadConfDir, pickNetwork, type ConfDirListing } from '../cni/conf-dir.js';
import type { CniEngine } from '../cni/engine.js';
import type { Locks } from '../cni/lock.js';
import type { CniDns, NetworkConfigList, RuntimeConf } from '../cni/types.js';
import { DockcniError, describeError, NetworkNotFoundError } from '../errors.js';
import { fullyWired, sameIncarnation, type AttachmentRecord, type NetworkAttachment, type Origin } from '../state/attachment.js';
import type { AttachmentStore } from '../state/attachment-store.js';
import { writeHosts, writeResolvConf } from './container-files.js';
import type { WireRequest } from './labels.js';
import { checkRequestedAddresses } from './requested-addresses.js';
import type { HostFirewall } from './host-firewall.js';
import type { NetnsPins } from './netns-pins.js';

/** The container as the wirer needs it; filled from Docker by the callers. */
export interface WireTarget {
  readonly containerId: string;
  readonly name: string;
  readonly pid: number;
  readonly startedAt: string;
  readonly origin: Origin;
  readonly hostname?: string | undefined;
  readonly hostsPath?: string | undefined;
  readonly resolvConfPath?: string | undefined;
}

export interface WirerOptions {
  readonly engine: CniEngine;
  readonly store: AttachmentStore;
  readonly pins: NetnsPins;
  readonly locks: Locks;
  readonly confDir: string;
  /** K8S_POD_NAMESPACE for every container. */
  readonly podNamespace: string;
  readonly firewall: HostFirewall;
  readonly onProgress?: ((step: string) => void) | undefined;
}

/** A wiring failure: names the container and network; `cause` is the engine's error. */
export class WireError extends DockcniError {
  override readonly name = 'WireError';
  constructor(readonly containerName: string, readonly network: string | undefined, cause: unknown) {
    super('wire-failed', `container ${containerName}${network ? `, network ${network}` : ''}: ${describeError(cause)}`, { cause });
  }
}

/**
 * Pin → record intent → ADD per network → record, and the reverse. The daemon, `run` and `attach` all
 * go through here; one container is handled by one caller at a time (a cross-process lock).
 */
export class Wirer {
  constructor(private readonly options: WirerOptions) {}

  /** Idempotent for the same incarnation; a restarted container's old attachment is DELeted first. */
  async wire(target: WireTarget, request: WireRequest): Promise<AttachmentRecord> {
    const release = await this.options.locks.mutex(`ctr-${target.containerId}`);
    try {
      const existing = await this.options.store.read(target.containerId);
      if (existing && sameIncarnation(existing, target.pid, target.startedAt) && fullyWired(existing)) return existing;
      const listing = await loadConfDir(this.options.confDir);
      if (existing) await this.teardown(existing, listing);
      let lists: NetworkConfigList[];
      try {
        lists = request.networks.map((n) => pickNetwork(listing, n.network));
        request.networks.forEach((n, i) => checkCapabilities(lists[i]!, n.capabilityArgs));
        await this.checkAddresses(target.containerId, request, lists);
      } catch (error) {
        throw new WireError(target.name, undefined, error);
      }
      if (request.networks.some((n) => n.capabilityArgs['portMappings'] !== undefined)) await this.options.firewall.allowPortMapped();
      const record: AttachmentRecord = {
        containerId: target.containerId, name: target.name, pid: target.pid, startedAt: target.startedAt, netns: this.options.pins.pathFor(target.containerId), origin: target.origin,
        networks: request.networks.map((n) => ({
          network: n.network, ifName: n.ifName, state: 'adding', addresses: [],
          args: [['IgnoreUnknown', '1'], ['K8S_POD_NAMESPACE', this.options.podNamespace], ['K8S_POD_NAME', target.name],
            ['K8S_POD_INFRA_CONTAINER_ID', target.containerId], ...n.extraArgs],
          capabilityArgs: n.capabilityArgs,
        })),
        updatedAt: '',
      };
      await this.pinAndRecord(target, record);
      const dns: CniDns[] = [];
      for (const [i, attachment] of record.networks.entries()) {
        this.options.onProgress?.(`wiring ${attachment.ifName} on ${attachment.network}…`);
        try {
          const result = await this.options.engine.add(lists[i]!, this.rt(record, attachment));
          const ifIndex = result.interfaces?.findIndex((f) => f.name === attachment.ifName && f.sandbox);
          attachment.addresses = (result.ips ?? []).filter((ip) => ip.interface === undefined || ip.interface === ifIndex).map((ip) => ip.address);
          attachment.mac = ifIndex === undefined || ifIndex < 0 ? undefined : result.interfaces?.[ifIndex]?.mac;
          attachment.state = 'wired';
          if (result.dns) dns.push(result.dns);
        } catch (error) {
          attachment.state = 'failed';
          attachment.error = describeError(error);
          await this.options.store.write(record);
          const failure = new WireError(target.name, attachment.network, error);
          try {
            await this.teardown(record, listing, true);
          } catch (cleanup) {
            // The ADD failure is the one to report; the failed cleanup travels with it.
            failure.rollbackErrors = [...failure.rollbackErrors, cleanup as Error];
          }
          throw failure;
        }
      }
      // Written once, when every network is wired: a crash before this leaves networks in `adding`,
      // and teardown DELs those as it DELs wired ones (from the cache ADD wrote).
      await Promise.all([this.options.store.write(record), this.writeContainerFiles(target, record, dns)]);
      return record;
    } finally {
      await release();
    }
  }

  /** DEL every network (reverse order), unpin, forget. false when there was nothing to undo. */
  async unwire(containerId: string): Promise<boolean> {
    const release = await this.options.locks.mutex(`ctr-${containerId}`);
    try {
      const record = await this.options.store.read(containerId);
      if (!record) {
        await this.options.pins.unpin(containerId);
        // An unreadable record file goes too: its cache entries still let gc DEL what it held.
        await this.options.store.remove(containerId);
        return false;
      }
      const hadWork = record.netns !== '';
      await this.teardown(record, await loadConfDir(this.options.confDir));
      return hadWork;
    } finally {
      await release();
    }
  }

  /**
   * With keepFailed, the record stays with its failed state (no netns) so `ls` can say why. A DEL that
   * fails leaves the pin and the record in `deleting`, so a later unwire or gc can finish the job.
   */
  private async teardown(record: AttachmentRecord, listing: ConfDirListing, keepFailed = false): Promise<void> {
    if (record.netns !== '') {
      // A pin no longer mounted (dockcni stopped between unpinning and forgetting) is an ordinary file,
      // which plugins refuse as a netns: DEL then runs as for a netns that is gone.
      const pinned = await this.options.pins.isPinned(record.containerId);
      for (const attachment of [...record.networks].reverse()) {
        const current = configuredNetwork(listing, attachment.network);
        // Marked before the DEL: once IPAM may hand the addresses out again, this record no longer
        // claims them, even if dockcni dies right after the DEL.
        if (attachment.state !== 'failed') {
          attachment.state = 'deleting';
          await this.options.store.write(record);
        }
        try {
          await this.options.engine.del(attachment.network, { ...this.rt(record, attachment), netns: pinned ? record.netns : '' }, current);
          attachment.addresses = [];
          await this.options.store.write(record);
        } catch (error) {
          attachment.state = 'deleting';
          attachment.error = `DEL failed: ${describeError(error)}`;
          await this.options.store.write(record);
          throw new WireError(record.name, attachment.network, error);
        }
      }
      await this.options.pins.unpin(record.containerId);
    }
    if (keepFailed) await this.options.store.write({ ...record, netns: '' });
    else await this.options.store.remove(record.containerId);
  }

  /**
   * The pin and the intent record are independent and both must exist before ADD, so they are made
   * together (a mount(8) process and a file write). Whichever failed, the other is undone.
   */
  private async pinAndRecord(target: WireTarget, record: AttachmentRecord): Promise<void> {
    const [pinned, recorded] = await Promise.allSettled([this.options.pins.pin(target.containerId, target.pid), this.options.store.write(record)]);
    if (pinned.status === 'rejected') {
      if (recorded.status === 'fulfilled') await this.options.store.remove(target.containerId);
      throw pinned.reason;
    }
    if (recorded.status === 'rejected') {
      await this.options.pins.unpin(target.containerId);
      throw recorded.reason;
    }
  }

  private async checkAddresses(self: string, request: WireRequest, lists: readonly NetworkConfigList[]): Promise<void> {
    const asked = request.networks.map((n) => n.capabilityArgs['ips']);
    if (asked.every((ips) => ips === undefined)) return;
    const others = (await this.options.store.list()).filter((r) => r.containerId !== self);
    asked.forEach((ips, i) => { if (Array.isArray(ips)) checkRequestedAddresses(lists[i]!, ips as string[], others); });
  }

  private rt(record: AttachmentRecord, attachment: NetworkAttachment): RuntimeConf {
    return { containerId: record.containerId, netns: record.netns, ifName: attachment.ifName, args: attachment.args, capabilityArgs: attachment.capabilityArgs };
  }

  private async writeContainerFiles(target: WireTarget, record: AttachmentRecord, dns: readonly CniDns[]): Promise<void> {
    const addresses = record.networks.flatMap((n) => n.addresses.map((a) => a.split('/')[0] ?? a));
    await writeHosts(target.hostsPath ?? '', [target.hostname ?? '', target.name], addresses.slice(0, 1));
    const withServers = dns.find((d) => (d.nameservers ?? []).length > 0);
    if (withServers) await writeResolvConf(target.resolvConfPath ?? '', withServers);
  }
}

/** An address, MAC or port asked for must reach a plugin that applies it, never be dropped silently. */
function checkCapabilities(list: NetworkConfigList, capabilityArgs: Readonly<Record<string, unknown>>): void {
  for (const key of Object.keys(capabilityArgs)) {
    if (!list.plugins.some((p) => p.capabilities?.[key] === true)) {
      throw new DockcniError('capability-missing', `network "${list.name}" has no plugin that declares the "${key}" capability, so the requested ${key} cannot be applied`, {
        fix: `add "capabilities": {"${key}": true} to the plugin that handles it in ${list.source}, or drop the option`,
      });
    }
  }
}

/** undefined for a network no longer configured: DEL then runs from the cached config alone. */
function configuredNetwork(listing: ConfDirListing, name: string): NetworkConfigList | undefined {
  try {
    return pickNetwork(listing, name);
  } catch (error) {
    if (error instanceof NetworkNotFoundError) return undefined;
    throw error;
  }
}
