import type { CniArgs } from '../cni/args.js';
import type { Cni } from '../cni/cni.js';
import { loadConfDir, pickNetwork, type ConfDirListing } from '../cni/conf-dir.js';
import type { Locks } from '../cni/lock.js';
import type { CniDns, CniResult, NetworkConfigList } from '../cni/types.js';
import { DockcniError, describeError, NetworkNotFoundError } from '../errors.js';
import { fail, fullyWired, holdsNetns, isCurrent, type AttachmentRecord, type NetworkAttachment } from '../state/attachment.js';
import type { AttachmentStore } from '../state/attachment-store.js';
import { Claims } from './claims.js';
import type { ClusterLink } from './cluster-link.js';
import { ClusterWiring } from './cluster-wiring.js';
import { underContainerLock } from './container-lock.js';
import { checkContainerFilePath, writeResolvConf } from './container-files.js';
import type { HostFirewall } from './host-firewall.js';
import { HostsBook, type RemoteNames } from './hosts-book.js';
import { intendedAttachment, intentRecord, portMappedAddresses, portMappings, runtimeConf, type WireTarget } from './intent.js';
import { keptIdentity } from './kept-identity.js';
import type { WireRequest } from './labels.js';
import type { NetnsPins } from './netns-pins.js';
import { Preflight } from './preflight.js';
import { NetworkModeError, WireError } from './wire-errors.js';

export interface WirerOptions {
  readonly engine: Cni;
  readonly store: AttachmentStore;
  readonly pins: NetnsPins;
  readonly locks: Locks;
  readonly confDir: string;
  /** K8S_POD_NAMESPACE for every container. */
  readonly podNamespace: string;
  readonly firewall: Pick<HostFirewall, 'allowPortMapped' | 'revokePortMapped' | 'removePluginChains'>;
  readonly onProgress?: ((step: string) => void) | undefined;
  /** Problems that do not fail the caller's operation: another container's hosts file that cannot be updated. */
  readonly onWarning: (message: string) => void;
  /** How long an ADD waits for a network whose plugins say (CNI STATUS) they cannot take ADDs now [default 120 s]. */
  readonly readyWaitMs?: number | undefined;
  /** The daemon's cluster agent, for cluster networks (blocks, static claims); absent: only local networks wire. */
  readonly cluster?: ClusterLink | undefined;
  /** Containers of cluster networks on other hosts, for the hosts files. */
  readonly remoteNames?: RemoteNames | undefined;
}

/** A wiring's record, and how long it spent on its peers' hosts files (the daemon's `wired` line says it). */
export interface WireOutcome {
  readonly record: AttachmentRecord;
  readonly namesMs: number;
}

/** What unwire did: DELs run, nothing was wired, or the record is a newer incarnation's (kept). */
export type UnwireOutcome = 'unwired' | 'nothing' | 'kept-newer';

/**
 * What happens when a container is wired, step by step (`wire`), and the reverse (`unwire`). The daemon,
 * `run`, `attach` and the runtime all go through here; one container is handled by one caller at a time
 * (a cross-process lock). The checks are `Preflight`'s, the claims `Claims`', the hosts files `HostsBook`'s.
 */
export class Wirer {
  private readonly hosts: HostsBook;
  private readonly preflight: Preflight;
  private readonly claims: Claims;
  private readonly cluster: ClusterWiring;

  constructor(private readonly options: WirerOptions) {
    this.hosts = new HostsBook(options.store, options.locks, options.onWarning, options.remoteNames);
    this.preflight = new Preflight({ engine: options.engine, onWarning: options.onWarning, readyWaitMs: options.readyWaitMs });
    this.claims = new Claims({ store: options.store, pins: options.pins, locks: options.locks });
    this.cluster = new ClusterWiring(options.cluster, (network) => pickNetwork(loadConfDir(options.confDir), network));
  }

  /** Idempotent for the same incarnation; a restarted container's old attachment is DELeted first. */
  async wire(target: WireTarget, request: WireRequest): Promise<WireOutcome> {
    // 1. Only a netns of the container's own: anything else belongs to Docker, the host or another container.
    if (target.networkMode !== 'none') throw new NetworkModeError(target.name, target.networkMode);
    return this.underLock(target.containerId, async () => {
      // 2. Already wired, or wired in an earlier life of the container (DEL that first).
      const existing = await this.options.store.read(target.containerId);
      if (existing && isCurrent(existing, target.pid, target.startedAt) && fullyWired(existing)) {
        // Wired already (by the runtime, before start): Docker 26+ rewrites /etc/hosts between create
        // and start, so its own lines are put back, from the records. Unchanged, the file is not written.
        const started = performance.now();
        await this.hosts.refresh([], [existing]);
        return { record: existing, namesMs: performance.now() - started };
      }
      const listing = loadConfDir(this.options.confDir);
      // What it had, before teardown clears it: a cluster network gives the addresses back where it can.
      const had = existing?.networks.map((n) => ({ network: n.network, ifName: n.ifName, addresses: [...n.addresses] })) ?? [];
      if (existing) await this.teardown(existing, listing);
      // 3. Every network, capability, name and readiness checked before anything changes; a cluster
      // network's static addresses claimed cluster-wide.
      const lists = await this.planned(target, request, listing);
      const releaseStatics = await this.cluster.claim(target, request, lists);
      // 4. The netns pinned and the intent recorded; names, static addresses, MACs and host ports claimed in the same step.
      const record = intentRecord(target, request, this.options.pins.pathFor(target.containerId), this.options.podNamespace);
      await this.claims.claim(target, record, record.networks, lists, () => this.pinAndRecord(target, record)).catch(async (error: unknown) => {
        throw await this.undoing(error instanceof WireError ? error : new WireError(target.name, undefined, error), releaseStatics);
      });
      // 5. ADD each network in order, then the host rules its port mappings need; a failure undoes them all.
      const dns = await this.addAll(target, record, lists, listing, had);
      await this.allowPortsOrUndo(target, record, listing);
      // 6. Written once every network is wired: a crash before this leaves networks in `adding`, and
      // teardown DELs those as it DELs wired ones (from the cache ADD wrote). Then its resolv.conf, and
      // the hosts files of everyone on its networks (its own included).
      await this.options.store.write(record);
      const started = performance.now();
      await Promise.all([this.writeResolvConf(target, dns), this.hosts.refresh(record.networks.map((n) => n.network), [record])]);
      return { record, namesMs: performance.now() - started };
    });
  }

  /**
   * DEL every network (reverse order), unpin, forget. `ifGone`: for a container that died, whose record
   * may already be a newer incarnation's (a restart wired by the runtime before the die event was
   * handled): a record whose process still lives is kept, and says so.
   */
  async unwire(containerId: string, { ifGone = false }: { ifGone?: boolean } = {}): Promise<UnwireOutcome> {
    return this.underLock(containerId, async () => {
      const record = await this.options.store.read(containerId);
      if (ifGone && record !== undefined && this.options.pins.isLive(containerId, record.pid)) return 'kept-newer';
      if (!record) {
        await this.options.pins.unpin(containerId);
        // An unreadable record file goes too: its cache entries still let gc DEL what it held.
        await this.options.store.remove(containerId);
        return 'nothing';
      }
      const hadWork = holdsNetns(record);
      await this.teardown(record, loadConfDir(this.options.confDir));
      return hadWork ? 'unwired' : 'nothing';
    });
  }

  /**
   * More networks on a container this incarnation already has wired (`attach --network` on a wired
   * container): each is ADDed on the interface the request names; the networks it has stay untouched.
   * A failure DELs only what this call added.
   */
  async attachNetworks(target: WireTarget, request: WireRequest): Promise<AttachmentRecord> {
    if (target.networkMode !== 'none') throw new NetworkModeError(target.name, target.networkMode);
    return this.underLock(target.containerId, async () => {
      const record = await this.options.store.read(target.containerId);
      if (!record || !holdsNetns(record) || !isCurrent(record, target.pid, target.startedAt) || !fullyWired(record)) {
        throw new DockcniError('not-wired', `container ${target.name} is not wired by dockcni in its current run`, { fix: 'wire it first (dockcni attach, or its labels under the daemon)' });
      }
      for (const n of request.networks) {
        const clash = record.networks.find((a) => a.network === n.network || a.ifName === n.ifName);
        if (clash) throw new DockcniError('already-wired', `container ${target.name} already has ${clash.ifName} on ${clash.network}`, { fix: 'name another network, or detach that one first' });
      }
      const listing = loadConfDir(this.options.confDir);
      const lists = await this.planned(target, request, listing);
      const releaseStatics = await this.cluster.claim(target, request, lists);
      const added = request.networks.map((n) => intendedAttachment(target, n, this.options.podNamespace));
      await this.claims.claim(target, record, added, lists, async () => {
        record.networks.push(...added);
        await this.options.store.write(record);
      }).catch(async (error: unknown) => {
        throw await this.undoing(error instanceof WireError ? error : new WireError(target.name, undefined, error), releaseStatics);
      });
      for (const [i, attachment] of added.entries()) {
        try {
          await this.addOne(record, attachment, lists[i]!);
        } catch (error) {
          const failure = new WireError(target.name, attachment.network, error);
          for (const undo of added.slice(0, i).reverse()) await this.removeOne(record, undo, listing).catch((cleanup: unknown) => { failure.rollbackErrors = [...failure.rollbackErrors, cleanup as Error]; });
          for (const never of added.slice(i)) record.networks.splice(record.networks.indexOf(never), 1);
          await this.options.store.write(record);
          throw failure;
        }
      }
      await this.allowPorts(record);
      await this.options.store.write(record);
      await this.hosts.refresh(added.map((n) => n.network), [record]);
      return record;
    });
  }

  /**
   * Rebuilds one attachment found broken (its rules flushed, its bridge or veth deleted): DEL from the
   * cache, then ADD with the same interface, and the same addresses and MAC where the network lets
   * them be asked for (`ips`, `mac`, else CNI_ARGS IP=/MAC=: kept-identity.ts), and says when it
   * cannot. `stillBroken` is asked again under the container's lock, so a repair that someone else
   * finished meanwhile touches nothing. A failed repair leaves the attachment `failed`, with the reason,
   * for the next round.
   */
  async repair(containerId: string, network: string, stillBroken: () => Promise<boolean>): Promise<NetworkAttachment | undefined> {
    return this.underLock(containerId, async () => {
      const record = await this.options.store.read(containerId);
      const attachment = record?.networks.find((n) => n.network === network);
      if (!record || !attachment || !holdsNetns(record) || !this.options.pins.isLive(containerId, record.pid) || !(await stillBroken())) return undefined;
      const list = configuredNetwork(loadConfDir(this.options.confDir), network);
      const before = attachment.addresses.join(',');
      try {
        if (list === undefined) throw new NetworkNotFoundError(network, this.options.confDir);
        const kept = keptIdentity(list, attachment);
        if (kept.unkept.length > 0) {
          this.options.onWarning(`repairing container ${record.name} on network ${network}: its ${kept.unkept.join(' and ')} may change (${attachment.addresses.join(', ')}${attachment.mac === undefined ? '' : `, ${attachment.mac}`}): the network declares no "ips"/"mac" capability and its plugins take no IP=/MAC= CNI_ARGS; add "capabilities": {"ips": true, "mac": true} to its main plugin to keep them`);
        }
        await this.options.engine.del(network, runtimeConf(record, attachment), list);
        await this.addOne(record, attachment, list, kept.capabilityArgs, kept.args);
      } catch (error) {
        fail(attachment, 'failed', 'repair', describeError(error));
        await this.options.store.write(record);
        throw new WireError(record.name, network, error);
      }
      attachment.failure = undefined;
      attachment.repairs = (attachment.repairs ?? 0) + 1;
      attachment.lastRepair = new Date().toISOString();
      await this.options.store.write(record);
      await this.allowPorts(record);
      if (attachment.addresses.join(',') !== before) await this.hosts.refresh([network], [record]);
      return attachment;
    });
  }

  /** Rewrites the hosts files of the containers on these networks (the cluster's remote names changed). */
  async refreshNames(networks: readonly string[]): Promise<void> {
    await this.hosts.refresh(networks, []);
  }

  /** Drops one network of a container (`detach --network`); the last one takes the whole attachment with it. */
  async detachNetwork(containerId: string, network: string): Promise<boolean> {
    return this.underLock(containerId, async () => {
      const record = await this.options.store.read(containerId);
      const attachment = record?.networks.find((n) => n.network === network);
      if (!record || !attachment || !holdsNetns(record)) return false;
      const listing = loadConfDir(this.options.confDir);
      if (record.networks.length === 1) await this.teardown(record, listing);
      else await this.removeOne(record, attachment, listing);
      return true;
    });
  }

  private underLock<T>(containerId: string, fn: () => Promise<T>): Promise<T> {
    return underContainerLock(this.options.locks, containerId, fn);
  }

  /** Preflight's plan, and what cluster networks need before claims: a block, checked static addresses. */
  private async planned(target: WireTarget, request: WireRequest, listing: ConfDirListing): Promise<NetworkConfigList[]> {
    const lists = await this.preflight.plan(target, request, listing);
    try {
      return await this.cluster.prepare(request, lists);
    } catch (error) {
      throw new WireError(target.name, undefined, error);
    }
  }

  /** DEL one attachment and forget it; the container's port rules follow what remains. */
  private async removeOne(record: AttachmentRecord, attachment: NetworkAttachment, listing: ConfDirListing): Promise<void> {
    const hadPorts = await this.revokePorts(record);
    attachment.state = 'deleting';
    await this.options.store.write(record);
    try {
      await this.del(record, attachment, listing);
    } catch (error) {
      fail(attachment, 'deleting', 'del', describeError(error));
      await this.options.store.write(record);
      throw new WireError(record.name, attachment.network, error);
    }
    record.networks.splice(record.networks.indexOf(attachment), 1);
    await this.options.store.write(record);
    if (hadPorts) await this.allowPorts(record);
    await this.hosts.refresh([attachment.network], [record]);
  }

  /**
   * ADD one network; the attachment takes the addresses and MAC of its interface from the result.
   * `capabilityArgs`: instead of the attachment's own (a repair asks for the addresses it had).
   */
  private async addOne(record: AttachmentRecord, attachment: NetworkAttachment, list: NetworkConfigList, capabilityArgs = attachment.capabilityArgs, extraArgs: CniArgs = [], previous: readonly string[] = []): Promise<CniResult> {
    const rt = runtimeConf(record, attachment);
    const result = await this.cluster.add(list, capabilityArgs, previous, (l, caps) => this.options.engine.add(l, { ...rt, args: [...rt.args, ...extraArgs], capabilityArgs: caps, netnsPid: record.pid }));
    const ifIndex = result.interfaces?.findIndex((f) => f.name === attachment.ifName && f.sandbox);
    attachment.addresses = (result.ips ?? []).filter((ip) => ip.interface === undefined || ip.interface === ifIndex).map((ip) => ip.address);
    attachment.mac = ifIndex === undefined || ifIndex < 0 ? undefined : result.interfaces?.[ifIndex]?.mac;
    attachment.state = 'wired';
    return result;
  }

  /** `had`: what the container's earlier attachment held, whose addresses a cluster network gives it again where it can. */
  private async addAll(target: WireTarget, record: AttachmentRecord, lists: readonly NetworkConfigList[], listing: ConfDirListing, had: readonly Pick<NetworkAttachment, 'network' | 'ifName' | 'addresses'>[] = []): Promise<CniDns[]> {
    const dns: CniDns[] = [];
    for (const [i, attachment] of record.networks.entries()) {
      this.options.onProgress?.(`wiring ${attachment.ifName} on ${attachment.network}…`);
      try {
        const previous = had.find((n) => n.network === attachment.network && n.ifName === attachment.ifName)?.addresses ?? [];
        const result = await this.addOne(record, attachment, lists[i]!, attachment.capabilityArgs, [], previous);
        if (result.dns) dns.push(result.dns);
      } catch (error) {
        fail(attachment, 'failed', 'add', describeError(error));
        await this.options.store.write(record);
        // The daemon keeps the failed record so that `ls` can say why; `run` and `attach` report it
        // at once to the user who asked, and keep nothing.
        throw await this.undoing(new WireError(target.name, attachment.network, error), () => this.teardown(record, listing, target.origin === 'daemon'));
      }
    }
    return dns;
  }

  private async allowPortsOrUndo(target: WireTarget, record: AttachmentRecord, listing: ConfDirListing): Promise<void> {
    try {
      await this.allowPorts(record);
    } catch (error) {
      throw await this.undoing(new WireError(target.name, undefined, error), () => this.teardown(record, listing));
    }
  }

  /** The failure to report, with the failure of the cleanup that follows it attached. */
  private async undoing(failure: DockcniError, cleanup: () => Promise<void>): Promise<DockcniError> {
    try {
      await cleanup();
    } catch (error) {
      failure.rollbackErrors = [...failure.rollbackErrors, error as Error];
    }
    return failure;
  }

  /** dockcni's accept rules for every port-mapped address the container has now (idempotent). */
  private async allowPorts(record: AttachmentRecord): Promise<void> {
    const mapped = portMappedAddresses(record.networks);
    if (mapped.length > 0) await this.options.firewall.allowPortMapped(record.containerId, mapped);
  }

  /** Removes the container's accept rules; true when it had port mappings. */
  private async revokePorts(record: AttachmentRecord): Promise<boolean> {
    const had = record.networks.some((n) => portMappings(n).length > 0);
    if (had) await this.options.firewall.revokePortMapped(record.containerId);
    return had;
  }

  /**
   * DEL one attachment from its cached config. A pin no longer mounted (dockcni stopped between
   * unpinning and forgetting) is an ordinary file, which plugins refuse as a netns: DEL then runs as
   * for a netns that is gone.
   */
  private async del(record: AttachmentRecord, attachment: NetworkAttachment, listing: ConfDirListing): Promise<void> {
    const pinned = this.options.pins.isPinned(record.containerId);
    await this.options.engine.del(attachment.network, { ...runtimeConf(record, attachment), netns: pinned ? record.netns : '' }, configuredNetwork(listing, attachment.network));
  }

  /**
   * With keepFailed, the record stays with its failed state (no netns) so `ls` can say why. A DEL that
   * fails leaves the pin and the record in `deleting`, so a later unwire or gc can finish the job.
   */
  private async teardown(record: AttachmentRecord, listing: ConfDirListing, keepFailed = false): Promise<void> {
    if (holdsNetns(record)) {
      await this.revokePorts(record);
      for (const attachment of [...record.networks].reverse()) {
        // Marked before the DEL: once IPAM may hand the addresses out again, this record no longer
        // claims them, even if dockcni dies right after the DEL.
        if (attachment.state !== 'failed') {
          attachment.state = 'deleting';
          await this.options.store.write(record);
        }
        try {
          await this.del(record, attachment, listing);
          attachment.addresses = [];
          await this.options.store.write(record);
        } catch (error) {
          fail(attachment, 'deleting', 'del', describeError(error));
          await this.options.store.write(record);
          throw new WireError(record.name, attachment.network, error);
        }
      }
      await this.options.pins.unpin(record.containerId);
      for (const attachment of record.networks) {
        // A claim that cannot be given back now (etcd away) stays until the agent finds it has no container.
        await this.cluster.release(record, attachment, configuredNetwork(listing, attachment.network)).catch((error: unknown) => {
          this.options.onWarning(`container ${record.name}: its static address on ${attachment.network} stays claimed for now: ${describeError(error)}`);
        });
      }
      const left = await this.options.firewall.removePluginChains(record.containerId);
      if (left.length > 0) this.options.onWarning(`container ${record.name}: its plugins' DEL left ${left.join(', ')} in the nat table (the container had changed its own interface?): removed`);
    }
    if (keepFailed) await this.options.store.write({ ...record, netns: '' });
    else await this.options.store.remove(record.containerId);
    await this.hosts.refresh(record.networks.map((n) => n.network), [record]);
  }

  /**
   * The pin and the intent record are independent and both must exist before ADD, so they are made
   * together (a mount(8) process and a file write). Whichever failed, the other is undone.
   */
  private async pinAndRecord(target: WireTarget, record: AttachmentRecord): Promise<void> {
    const [pinned, recorded] = await Promise.allSettled([this.options.pins.pin(target.containerId, target.pid), this.options.store.remember(target.containerId).then(() => this.options.store.write(record))]);
    if (pinned.status === 'rejected') {
      if (recorded.status === 'fulfilled') await this.options.store.remove(target.containerId);
      throw pinned.reason;
    }
    if (recorded.status === 'rejected') {
      await this.options.pins.unpin(target.containerId);
      throw recorded.reason;
    }
  }

  /** The result's DNS into the container's resolv.conf; the paths are checked first, hosts included (it is written later, with its peers). */
  private async writeResolvConf(target: WireTarget, dns: readonly CniDns[]): Promise<void> {
    const hosts = target.hostsPath ?? '';
    const resolv = target.resolvConfPath ?? '';
    if (hosts !== '') checkContainerFilePath(hosts, target.containerId);
    if (resolv !== '') checkContainerFilePath(resolv, target.containerId);
    const withServers = dns.find((d) => (d.nameservers ?? []).length > 0);
    if (withServers) await writeResolvConf(resolv, withServers);
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
