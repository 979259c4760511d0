import { loadConfDir, pickNetwork, type ConfDirListing } from '../cni/conf-dir.js';
import type { Cni } from '../cni/cni.js';
import { CniPluginError } from '../cni/plugin-error.js';
import type { Locks } from '../cni/lock.js';
import type { CniDns, CniResult, NetworkConfigList, RuntimeConf } from '../cni/types.js';
import { DockcniError, describeError, NetworkNotFoundError } from '../errors.js';
import { fullyWired, sameIncarnation, type AttachmentRecord, type NetworkAttachment, type Origin } from '../state/attachment.js';
import type { AttachmentStore } from '../state/attachment-store.js';
import { checkContainerFilePath, writeResolvConf } from './container-files.js';
import { HostsBook } from './hosts-book.js';
import { asTarget, hostListener, hostSockets, overlaps } from './host-ports.js';
import { identityArgs, type PortMapping, type WireRequest } from './labels.js';
import { checkRequestedAddresses, checkRequestedMac } from './requested-addresses.js';
import { checkClaims, publishedNames } from './host-names.js';
import { keptIdentity } from './kept-identity.js';
import type { CniArgs } from '../cni/args.js';
import type { HostFirewall } from './host-firewall.js';
import type { NetnsPins } from './netns-pins.js';

/** What unwire did: DELs run, nothing was wired, or the record is a newer incarnation's (kept). */
export type UnwireOutcome = 'unwired' | 'nothing' | 'kept-newer';

/** The container as the wirer needs it; filled from Docker by the callers. */
export interface WireTarget {
  readonly containerId: string;
  readonly name: string;
  readonly pid: number;
  readonly startedAt: string;
  readonly origin: Origin;
  /** Docker's network mode: only `none` gives dockcni a netns of the container's own. */
  readonly networkMode: string;
  readonly hostname?: string | undefined;
  readonly hostsPath?: string | undefined;
  readonly resolvConfPath?: string | undefined;
}

export interface WirerOptions {
  readonly engine: Cni;
  readonly store: AttachmentStore;
  readonly pins: NetnsPins;
  readonly locks: Locks;
  readonly confDir: string;
  /** K8S_POD_NAMESPACE for every container. */
  readonly podNamespace: string;
  readonly firewall: HostFirewall;
  readonly onProgress?: ((step: string) => void) | undefined;
  /** Problems that do not fail the caller's operation: another container's hosts file that cannot be updated. */
  readonly onWarning: (message: string) => void;
  /** How long an ADD waits for a network whose plugins say (CNI STATUS) they cannot take ADDs now [default 120 s]. */
  readonly readyWaitMs?: number | undefined;
  /** How long a wiring spent updating the hosts files of its network peers (the daemon's `wired` line). */
  readonly onNamesUpdated?: ((containerId: string, ms: number) => void) | undefined;
}

/** A wiring failure: names the container and network; `cause` is the engine's error. */
export class WireError extends DockcniError {
  override readonly name = 'WireError';
  constructor(readonly containerName: string, readonly network: string | undefined, cause: unknown) {
    super('wire-failed', `container ${containerName}${network ? `, network ${network}` : ''}: ${describeError(cause)}`, { cause });
  }
}

/** A container that shares a netns with the host or another container: dockcni must not touch it. */
export class NetworkModeError extends DockcniError {
  override readonly name = 'NetworkModeError';
  constructor(readonly containerName: string, readonly mode: string) {
    super('network-mode', `container ${containerName} uses network mode "${mode}", not "none": refusing to wire it`, {
      fix: 'start it with --network none; in any other mode its netns belongs to Docker, the host or another container',
    });
  }
}

/** A host port another container or a host process already has. */
export class PortInUseError extends DockcniError {
  override readonly name = 'PortInUseError';
  constructor(readonly mapping: PortMapping, readonly holder: string) {
    super('port-in-use', `host port ${mapping.hostIP ? `${mapping.hostIP}:` : ''}${mapping.hostPort}/${mapping.protocol} is already taken by ${holder}`, {
      fix: 'map another host port, or stop what holds it',
    });
  }
}

/**
 * What happens when a container is wired, step by step (`wire`), and the reverse (`unwire`). The daemon,
 * `run` and `attach` all go through here; one container is handled by one caller at a time (a
 * cross-process lock).
 */
export class Wirer {
  private readonly hosts: HostsBook;

  constructor(private readonly options: WirerOptions) {
    this.hosts = new HostsBook(options.store, options.locks, options.onWarning);
  }

  /** Idempotent for the same incarnation; a restarted container's old attachment is DELeted first. */
  async wire(target: WireTarget, request: WireRequest): Promise<AttachmentRecord> {
    // 1. Only a netns of the container's own: anything else belongs to Docker, the host or another container.
    if (target.networkMode !== 'none') throw new NetworkModeError(target.name, target.networkMode);
    const release = await this.options.locks.mutex(`ctr-${target.containerId}`);
    try {
      // 2. Already wired, or wired in an earlier life of the container (DEL that first).
      const existing = await this.options.store.read(target.containerId);
      if (existing && sameIncarnation(existing, target.pid, target.startedAt) && fullyWired(existing)) return existing;
      const listing = loadConfDir(this.options.confDir);
      if (existing) await this.teardown(existing, listing);
      // 3. Every network, capability and address checked before anything changes.
      const lists = await this.plan(target, request, listing);
      // 4. The netns pinned and the intent recorded; names, static addresses, MACs and host ports claimed in the same step.
      const record = this.intent(target, request);
      await this.claim(target, record, record.networks, lists, () => this.pinAndRecord(target, record));
      // 5. ADD each network in order, then the host rules its port mappings need; a failure undoes them all.
      const dns = await this.addAll(target, record, lists, listing);
      await this.allowPortMapped(target, record, listing);
      // 6. Written once every network is wired: a crash before this leaves networks in `adding`, and
      // teardown DELs those as it DELs wired ones (from the cache ADD wrote). Then its resolv.conf, and
      // the hosts files of everyone on its networks (its own included).
      await this.options.store.write(record);
      const started = performance.now();
      await Promise.all([this.writeResolvConf(target, dns), this.hosts.refresh(record.networks.map((n) => n.network), [record])]);
      this.options.onNamesUpdated?.(record.containerId, performance.now() - started);
      return record;
    } finally {
      await release();
    }
  }

  /**
   * DEL every network (reverse order), unpin, forget. `ifGone`: for a container that died, whose record
   * may already be a newer incarnation's (a restart wired by the runtime before the die event was
   * handled): a record whose process still lives is kept, and says so.
   */
  async unwire(containerId: string, { ifGone = false }: { ifGone?: boolean } = {}): Promise<UnwireOutcome> {
    const release = await this.options.locks.mutex(`ctr-${containerId}`);
    try {
      const record = await this.options.store.read(containerId);
      if (ifGone && record !== undefined && this.options.pins.isLive(containerId, record.pid)) return 'kept-newer';
      if (!record) {
        await this.options.pins.unpin(containerId);
        // An unreadable record file goes too: its cache entries still let gc DEL what it held.
        await this.options.store.remove(containerId);
        return 'nothing';
      }
      const hadWork = record.netns !== '';
      await this.teardown(record, loadConfDir(this.options.confDir));
      return hadWork ? 'unwired' : 'nothing';
    } finally {
      await release();
    }
  }

  /**
   * More networks on a container this incarnation already has wired (`attach --network` on a wired
   * container): each is ADDed on the interface the request names; the networks it has stay untouched.
   * A failure DELs only what this call added.
   */
  async attachNetworks(target: WireTarget, request: WireRequest): Promise<AttachmentRecord> {
    if (target.networkMode !== 'none') throw new NetworkModeError(target.name, target.networkMode);
    const release = await this.options.locks.mutex(`ctr-${target.containerId}`);
    try {
      const record = await this.options.store.read(target.containerId);
      if (!record || record.netns === '' || !sameIncarnation(record, target.pid, target.startedAt) || !fullyWired(record)) {
        throw new DockcniError('not-wired', `container ${target.name} is not wired by dockcni in its current run`, { fix: 'wire it first (dockcni attach, or its labels under the daemon)' });
      }
      for (const n of request.networks) {
        const clash = record.networks.find((a) => a.network === n.network || a.ifName === n.ifName);
        if (clash) throw new DockcniError('already-wired', `container ${target.name} already has ${clash.ifName} on ${clash.network}`, { fix: 'name another network, or detach that one first' });
      }
      const listing = loadConfDir(this.options.confDir);
      const lists = await this.plan(target, request, listing);
      const added = this.intent(target, request).networks;
      const mappings = added.flatMap(portMappings);
      await this.claim(target, record, added, lists, async () => {
        record.networks.push(...added);
        await this.options.store.write(record);
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
      if (mappings.length > 0) await this.options.firewall.allowPortMapped(record.containerId, portMappedAddresses(added));
      await this.options.store.write(record);
      await this.hosts.refresh(added.map((n) => n.network), [record]);
      return record;
    } finally {
      await release();
    }
  }

  /**
   * Rebuilds one attachment found broken (its rules flushed, its bridge or veth deleted): DEL from the
   * cache, then ADD with the same interface, and the same addresses and MAC where the network lets
   * them be asked for (`ips`, `mac`, else CNI_ARGS IP=/MAC=: kept-identity.ts), and says when it cannot. `stillBroken` is asked again under the container's lock, so a
   * repair that someone else finished meanwhile touches nothing. A failed repair leaves the attachment
   * `failed`, with the reason, for the next round.
   */
  async repair(containerId: string, network: string, stillBroken: () => Promise<boolean>): Promise<NetworkAttachment | undefined> {
    const release = await this.options.locks.mutex(`ctr-${containerId}`);
    try {
      const record = await this.options.store.read(containerId);
      const attachment = record?.networks.find((n) => n.network === network);
      if (!record || !attachment || record.netns === '' || !this.options.pins.isLive(containerId, record.pid) || !(await stillBroken())) return undefined;
      const list = configuredNetwork(loadConfDir(this.options.confDir), network);
      const before = attachment.addresses.join(',');
      try {
        if (list === undefined) throw new NetworkNotFoundError(network, this.options.confDir);
        const kept = keptIdentity(list, attachment);
        if (kept.unkept.length > 0) {
          this.options.onWarning(`repairing container ${record.name} on network ${network}: its ${kept.unkept.join(' and ')} may change (${attachment.addresses.join(', ')}${attachment.mac === undefined ? '' : `, ${attachment.mac}`}): the network declares no "ips"/"mac" capability and its plugins take no IP=/MAC= CNI_ARGS; add "capabilities": {"ips": true, "mac": true} to its main plugin to keep them`);
        }
        await this.options.engine.del(network, this.rt(record, attachment), list);
        await this.addOne(record, attachment, list, kept.capabilityArgs, kept.args);
      } catch (error) {
        attachment.state = 'failed';
        attachment.error = `repair failed: ${describeError(error)}`;
        await this.options.store.write(record);
        throw new WireError(record.name, network, error);
      }
      attachment.error = undefined;
      attachment.repairs = (attachment.repairs ?? 0) + 1;
      attachment.lastRepair = new Date().toISOString();
      await this.options.store.write(record);
      const mapped = portMappedAddresses(record.networks);
      if (mapped.length > 0) await this.options.firewall.allowPortMapped(record.containerId, mapped);
      if (attachment.addresses.join(',') !== before) await this.hosts.refresh([network], [record]);
      return attachment;
    } finally {
      await release();
    }
  }

  /** Drops one network of a container (`detach --network`); the last one takes the whole attachment with it. */
  async detachNetwork(containerId: string, network: string): Promise<boolean> {
    const release = await this.options.locks.mutex(`ctr-${containerId}`);
    try {
      const record = await this.options.store.read(containerId);
      const attachment = record?.networks.find((n) => n.network === network);
      if (!record || !attachment || record.netns === '') return false;
      const listing = loadConfDir(this.options.confDir);
      if (record.networks.length === 1) {
        await this.teardown(record, listing);
        return true;
      }
      await this.removeOne(record, attachment, listing);
      return true;
    } finally {
      await release();
    }
  }

  /** DEL one attachment and forget it; the container's port rules follow what remains. */
  private async removeOne(record: AttachmentRecord, attachment: NetworkAttachment, listing: ConfDirListing): Promise<void> {
    const hadPorts = record.networks.some((n) => portMappings(n).length > 0);
    if (hadPorts) await this.options.firewall.revokePortMapped(record.containerId);
    attachment.state = 'deleting';
    await this.options.store.write(record);
    const pinned = this.options.pins.isPinned(record.containerId);
    try {
      await this.options.engine.del(attachment.network, { ...this.rt(record, attachment), netns: pinned ? record.netns : '' }, configuredNetwork(listing, attachment.network));
    } catch (error) {
      attachment.error = `DEL failed: ${describeError(error)}`;
      await this.options.store.write(record);
      throw new WireError(record.name, attachment.network, error);
    }
    record.networks.splice(record.networks.indexOf(attachment), 1);
    await this.options.store.write(record);
    const mapped = portMappedAddresses(record.networks);
    if (hadPorts && mapped.length > 0) await this.options.firewall.allowPortMapped(record.containerId, mapped);
    await this.hosts.refresh([attachment.network], [record]);
  }

  /** `run` names the app that joined a sandbox, once Docker has created it. */
  async recordApp(sandboxId: string, appId: string): Promise<void> {
    const release = await this.options.locks.mutex(`ctr-${sandboxId}`);
    try {
      const record = await this.options.store.read(sandboxId);
      if (record === undefined || record.origin !== 'run') throw new DockcniError('not-a-sandbox', `container ${sandboxId.slice(0, 12)} is not a sandbox dockcni run wired`);
      record.app = appId;
      await this.options.store.write(record);
    } finally {
      await release();
    }
  }

  /** Whether `run` recorded this app as the one that joined this sandbox. */
  async isSandboxOf(sandboxId: string, appId: string): Promise<boolean> {
    const record = await this.options.store.read(sandboxId);
    return record?.origin === 'run' && record.app === appId;
  }

  private async plan(target: WireTarget, request: WireRequest, listing: ConfDirListing): Promise<NetworkConfigList[]> {
    try {
      const lists = request.networks.map((n) => pickNetwork(listing, n.network));
      request.networks.forEach((n, i) => checkCapabilities(lists[i]!, n.capabilityArgs));
      // Names are checked where they enter: a hostname or alias that cannot be published fails here.
      const skipped = new Set(request.networks.flatMap((n) => publishedNames(target.name, target.hostname, n.aliases).skipped));
      if (skipped.size > 0) this.options.onWarning(`container ${target.name}: not published to its peers: ${[...skipped].join('; ')}`);
      for (const list of lists) await this.ready(target, list);
      return lists;
    } catch (error) {
      throw new WireError(target.name, undefined, error);
    }
  }

  /**
   * CNI 1.1 STATUS: a network whose plugins say they cannot take ADDs now (codes 50 and 51) holds the
   * ADD instead of failing the container — said once, through onWarning — and it proceeds as soon as
   * they can, or fails once readyWaitMs has passed. Networks before 1.1.0 have no STATUS: they pass.
   */
  private async ready(target: WireTarget, list: NetworkConfigList): Promise<void> {
    const deadline = Date.now() + (this.options.readyWaitMs ?? DEFAULT_READY_WAIT_MS);
    for (let delay = 250, said = false; ; delay = Math.min(delay * 2, 5000)) {
      try {
        await this.options.engine.status(list);
        return;
      } catch (error) {
        const notReady = error instanceof CniPluginError && (error.cniCode === 50 || error.cniCode === 51);
        if (!notReady || Date.now() + delay > deadline) throw error;
        if (!said) this.options.onWarning(`network ${list.name} is not ready (${describeError(error)}): holding the ADD of container ${target.name} until it is`);
        said = true;
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  private intent(target: WireTarget, request: WireRequest): AttachmentRecord {
    return {
      containerId: target.containerId, name: target.name, pid: target.pid, startedAt: target.startedAt, netns: this.options.pins.pathFor(target.containerId), origin: target.origin,
      hostsPath: target.hostsPath, hostname: target.hostname,
      networks: request.networks.map((n) => ({
        network: n.network, ifName: n.ifName, state: 'adding', addresses: [], aliases: n.aliases, ...(n.group === undefined ? {} : { group: n.group }),
        args: [...identityArgs(this.options.podNamespace, target.name, target.containerId), ...n.extraArgs], capabilityArgs: n.capabilityArgs,
      })),
      updatedAt: '',
    };
  }

  /**
   * What a container takes that others may want: its names, static addresses and MAC on each network
   * it adds, and its host ports. They are checked, and `commit` writes the record that claims them,
   * under the names lock of each of those networks (and the host-wide host-ports lock): of two
   * containers racing for one, exactly one gets it. Locks are taken in one order: networks sorted, then host ports.
   */
  private async claim(target: WireTarget, record: AttachmentRecord, added: readonly NetworkAttachment[], lists: readonly NetworkConfigList[], commit: () => Promise<void>): Promise<void> {
    const mappings = added.flatMap(portMappings);
    const names = [...new Set(added.map((a) => `names-${a.network}`))].sort();
    if (mappings.length > 0) names.push('host-ports');
    const releases: (() => Promise<void>)[] = [];
    try {
      for (const name of names) releases.push(await this.options.locks.mutex(name));
      try {
        const others = await this.settledOthers(target.containerId);
        added.forEach((a, i) => {
          const published = publishedNames(target.name, target.hostname, a.aliases ?? []);
          checkClaims(a.network, { containerId: target.containerId, name: published.name, claims: published.claims, group: a.group }, others);
          const ips = a.capabilityArgs['ips'];
          if (Array.isArray(ips)) checkRequestedAddresses(lists[i]!, ips as string[], others);
          const mac = a.capabilityArgs['mac'];
          if (typeof mac === 'string') checkRequestedMac(lists[i]!, mac, others);
        });
        if (mappings.length > 0) this.checkPorts(target, [...record.networks.filter((n) => !added.includes(n)).flatMap(portMappings), ...mappings], others);
      } catch (error) {
        throw new WireError(target.name, undefined, error);
      }
      await commit();
    } finally {
      for (const release of releases.reverse()) await release();
    }
  }

  private checkPorts(target: WireTarget, mappings: readonly PortMapping[], all: readonly AttachmentRecord[]): void {
    mappings.forEach((m, i) => {
      const twin = mappings.findIndex((o) => overlaps(asTarget(o), asTarget(m)));
      if (twin !== i) throw new PortInUseError(m, `another mapping of container ${target.name}`);
    });
    const others = all.filter((r) => r.netns !== '');
    for (const m of mappings) {
      for (const other of others) {
        const held = other.networks.filter((n) => n.state !== 'failed').flatMap(portMappings).find((o) => overlaps(asTarget(o), asTarget(m)));
        if (held) throw new PortInUseError(m, `container ${other.name} (${other.containerId.slice(0, 12)})`);
      }
    }
    const sockets = hostSockets();
    for (const m of mappings) {
      const holder = hostListener(m, sockets);
      if (holder) throw new PortInUseError(m, holder);
    }
  }

  /**
   * Every other container's record, once the teardowns under way are done: a container whose process
   * is gone is being DELeted in the background (the runtime's delete), and the address or host port it
   * held is free once that finishes — `docker run --rm` twice in a row with the same port must work.
   */
  private async settledOthers(containerId: string): Promise<AttachmentRecord[]> {
    const others = (await this.options.store.list()).filter((r) => r.containerId !== containerId);
    const dying = others.filter((r) => r.netns !== '' && !this.options.pins.isLive(r.containerId, r.pid));
    if (dying.length === 0) return others;
    for (const r of dying) await (await this.options.locks.mutex(`ctr-${r.containerId}`))();
    return (await this.options.store.list()).filter((r) => r.containerId !== containerId);
  }

  /**
   * ADD one network; the attachment takes the addresses and MAC of its interface from the result.
   * `capabilityArgs`: instead of the attachment's own (a repair asks for the addresses it had).
   */
  private async addOne(record: AttachmentRecord, attachment: NetworkAttachment, list: NetworkConfigList, capabilityArgs = attachment.capabilityArgs, extraArgs: CniArgs = []): Promise<CniResult> {
    const rt = this.rt(record, attachment);
    const result = await this.options.engine.add(list, { ...rt, args: [...rt.args, ...extraArgs], capabilityArgs, netnsPid: record.pid });
    const ifIndex = result.interfaces?.findIndex((f) => f.name === attachment.ifName && f.sandbox);
    attachment.addresses = (result.ips ?? []).filter((ip) => ip.interface === undefined || ip.interface === ifIndex).map((ip) => ip.address);
    attachment.mac = ifIndex === undefined || ifIndex < 0 ? undefined : result.interfaces?.[ifIndex]?.mac;
    attachment.state = 'wired';
    return result;
  }

  private async addAll(target: WireTarget, record: AttachmentRecord, lists: readonly NetworkConfigList[], listing: ConfDirListing): Promise<CniDns[]> {
    const dns: CniDns[] = [];
    for (const [i, attachment] of record.networks.entries()) {
      this.options.onProgress?.(`wiring ${attachment.ifName} on ${attachment.network}…`);
      try {
        const result = await this.addOne(record, attachment, lists[i]!);
        if (result.dns) dns.push(result.dns);
      } catch (error) {
        attachment.state = 'failed';
        attachment.error = describeError(error);
        await this.options.store.write(record);
        const failure = new WireError(target.name, attachment.network, error);
        try {
          // The daemon keeps the failed record so that `ls` can say why; `run` and `attach` report it
          // at once to the user who asked, and keep nothing.
          await this.teardown(record, listing, target.origin === 'daemon');
        } catch (cleanup) {
          // The ADD failure is the one to report; the failed cleanup travels with it.
          failure.rollbackErrors = [...failure.rollbackErrors, cleanup as Error];
        }
        throw failure;
      }
    }
    return dns;
  }

  private async allowPortMapped(target: WireTarget, record: AttachmentRecord, listing: ConfDirListing): Promise<void> {
    const mapped = portMappedAddresses(record.networks);
    if (mapped.length === 0) return;
    try {
      await this.options.firewall.allowPortMapped(record.containerId, mapped);
    } catch (error) {
      const failure = new WireError(target.name, undefined, error);
      try {
        await this.teardown(record, listing);
      } catch (cleanup) {
        failure.rollbackErrors = [...failure.rollbackErrors, cleanup as Error];
      }
      throw failure;
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
      const pinned = this.options.pins.isPinned(record.containerId);
      if (record.networks.some((n) => portMappings(n).length > 0)) await this.options.firewall.revokePortMapped(record.containerId);
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

  private rt(record: AttachmentRecord, attachment: NetworkAttachment): RuntimeConf {
    return { containerId: record.containerId, netns: record.netns, ifName: attachment.ifName, args: attachment.args, capabilityArgs: attachment.capabilityArgs };
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

const DEFAULT_READY_WAIT_MS = 120_000;

/** The addresses of the networks that map host ports: what dockcni's port-mapped accept rules name. */
const portMappedAddresses = (networks: readonly NetworkAttachment[]): string[] => networks.filter((n) => portMappings(n).length > 0).flatMap((n) => n.addresses);

const portMappings = (n: NetworkAttachment): PortMapping[] => (n.capabilityArgs['portMappings'] as PortMapping[] | undefined) ?? [];

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
