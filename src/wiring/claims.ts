import type { Locks } from '../cni/lock.js';
import type { NetworkConfigList, PortMapping } from '../cni/types.js';
import { holdsNetns, type AttachmentRecord, type NetworkAttachment } from '../state/attachment.js';
import type { AttachmentStore } from '../state/attachment-store.js';
import { checkClaims, publishedNames } from './host-names.js';
import { asTarget, hostListener, hostSockets, overlaps } from './host-ports.js';
import { portMappings, type WireTarget } from './intent.js';
import type { NetnsPins } from './netns-pins.js';
import { checkRequestedAddresses, checkRequestedMac } from './requested-addresses.js';
import { PortInUseError, WireError } from './wire-errors.js';

export interface ClaimsOptions {
  readonly store: Pick<AttachmentStore, 'list'>;
  readonly pins: Pick<NetnsPins, 'isLive'>;
  readonly locks: Pick<Locks, 'mutex'>;
}

/**
 * What a container takes that others may want: its names, static addresses and MAC on each network it
 * adds, and its host ports. They are checked, and `commit` writes the record that claims them, under
 * the names lock of each of those networks (and the host-wide host-ports lock): of two containers
 * racing for one, exactly one gets it. Locks are taken in one order: networks sorted, then host ports.
 */
export class Claims {
  constructor(private readonly o: ClaimsOptions) {}

  async claim(target: WireTarget, record: AttachmentRecord, added: readonly NetworkAttachment[], lists: readonly NetworkConfigList[], commit: () => Promise<void>): Promise<void> {
    const mappings = added.flatMap(portMappings);
    const names = [...new Set(added.map((a) => `names-${a.network}`))].sort();
    if (mappings.length > 0) names.push('host-ports');
    // Twice at most: a dying container nobody is tearing down (its daemon was killed) keeps what it holds.
    for (let settled = false; ; settled = true) {
      const releases: (() => Promise<void>)[] = [];
      let dying: AttachmentRecord[];
      try {
        for (const name of names) releases.push(await this.o.locks.mutex(name));
        const others = (await this.o.store.list()).filter((r) => r.containerId !== target.containerId);
        dying = others.filter((r) => holdsNetns(r) && !this.o.pins.isLive(r.containerId, r.pid));
        if (dying.length === 0 || settled) {
          try {
            added.forEach((a, i) => {
              const published = publishedNames(target.name, target.hostname, a.aliases ?? []);
              checkClaims(a.network, { containerId: target.containerId, name: published.name, claims: published.claims, group: a.group }, others);
              const ips = a.capabilityArgs['ips'];
              if (Array.isArray(ips)) checkRequestedAddresses(lists[i]!, ips as string[], others);
              const mac = a.capabilityArgs['mac'];
              if (typeof mac === 'string') checkRequestedMac(lists[i]!, mac, others);
            });
            if (mappings.length > 0) checkPorts(target, [...record.networks.filter((n) => !added.includes(n)).flatMap(portMappings), ...mappings], others);
          } catch (error) {
            throw new WireError(target.name, undefined, error);
          }
          await commit();
          return;
        }
      } finally {
        for (const release of releases.reverse()) await release();
      }
      await this.settle(dying);
    }
  }

  /**
   * Waits for the teardowns under way: a container whose process is gone is being DELeted (the
   * runtime's delete in the background, the daemon's die handler), and the address or host port it
   * held is free once that finishes — `docker run --rm` twice in a row with the same port must work.
   * Never under the names locks: the holder of a dying container's lock may be its next incarnation's
   * wiring, which needs them.
   */
  private async settle(dying: readonly AttachmentRecord[]): Promise<void> {
    for (const r of dying) await (await this.o.locks.mutex(`ctr-${r.containerId}`))();
  }
}

/** A host port is handed out once: not twice to one container, not held by a live peer, not bound by a host process. */
function checkPorts(target: WireTarget, mappings: readonly PortMapping[], all: readonly AttachmentRecord[]): void {
  mappings.forEach((m, i) => {
    const twin = mappings.findIndex((o) => overlaps(asTarget(o), asTarget(m)));
    if (twin !== i) throw new PortInUseError(m, `another mapping of container ${target.name}`);
  });
  for (const m of mappings) {
    for (const other of all.filter(holdsNetns)) {
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
