import type { Locks } from '../cni/lock.js';
import { describeError } from '../errors.js';
import type { AttachmentStore } from '../state/attachment-store.js';
import { holdsNetns, type AttachmentRecord, type NetworkAttachment } from '../state/attachment.js';
import { checkContainerFilePath, writeHosts } from './container-files.js';
import ipaddr from 'ipaddr.js';
import { listedNames, namesOf, unpublishable } from './host-names.js';

const wired = (a: NetworkAttachment) => a.state === 'wired';
const hostPart = (cidr: string) => cidr.split('/')[0] ?? cidr;

/** A container of a cluster network on another host, as its host published it (names, addresses). */
export interface RemoteName {
  readonly names: readonly string[];
  readonly addresses: readonly string[];
}

/** The containers other hosts publish on a cluster network (none for a local one). */
export type RemoteNames = (network: string) => readonly RemoteName[];

/**
 * dockcni's part of one container's /etc/hosts: its own addresses under its own names, then every
 * other live container that shares a network with it, under the names it has on that network. A peer
 * on a network this container is not on is not listed: names are per network.
 */
export function hostsEntries(self: AttachmentRecord, all: readonly AttachmentRecord[], remote: RemoteNames = () => []): string[][] {
  const mine = new Set(self.networks.filter(wired).map((a) => a.network));
  const live = [self, ...all.filter((r) => holdsNetns(r) && r.containerId !== self.containerId)];
  const on = live.flatMap((r) => r.networks.filter((a) => wired(a) && mine.has(a.network)).map((a) => ({ r, a })));
  // Per network: a claim a container's own name has taken there is left out (see host-names.ts).
  const containerNames = new Map<string, Set<string>>();
  for (const { r, a } of on) {
    const name = namesOf(r, a).name;
    if (name !== undefined) containerNames.set(a.network, (containerNames.get(a.network) ?? new Set()).add(name.toLowerCase()));
  }
  const entries: string[][] = [];
  for (const { r, a } of on) {
    const names = listedNames(r, a, containerNames.get(a.network) ?? new Set());
    if (names.length > 0) for (const address of a.addresses) entries.push([hostPart(address), ...names]);
  }
  // Other hosts' containers after this host's own: a name both have resolves here to the local one. What
  // another host published is checked again, name by name: it could not add a line of its own either.
  for (const network of mine) {
    for (const r of remote(network)) {
      const names = r.names.filter((n) => unpublishable(n) === undefined);
      if (names.length > 0) for (const address of r.addresses.filter((x) => ipaddr.isValid(x))) entries.push([address, ...names]);
    }
  }
  return [...new Map(entries.map((e) => [e.join(' '), e])).values()];
}

/**
 * Name resolution per network, through the hosts files Docker gives each container: whoever changes an
 * attachment (daemon, runtime, run, attach, detach, gc) rewrites the hosts files it affects, from the
 * records, under one host-wide lock, so the last rewrite always sees every record written before it.
 */
export class HostsBook {
  constructor(private readonly store: Pick<AttachmentStore, 'list'>, private readonly locks: Pick<Locks, 'mutex'>, private readonly onProblem: (message: string) => void, private readonly remote: RemoteNames = () => []) {}

  /**
   * Rewrites the hosts file of every live container on these networks, and of the `touched` ones (whose
   * networks changed: one with no live record left loses dockcni's lines). A peer whose file cannot be
   * written is reported, not fatal: it is that container's file, not the caller's.
   */
  async refresh(networks: Iterable<string>, touched: readonly AttachmentRecord[]): Promise<void> {
    const wanted = new Set(networks);
    const release = await this.locks.mutex('hosts');
    try {
      const live = (await this.store.list()).filter(holdsNetns);
      const targets = new Map<string, { record: AttachmentRecord; entries: string[][] }>();
      for (const r of live) if (r.networks.some((a) => wanted.has(a.network))) targets.set(r.containerId, { record: r, entries: hostsEntries(r, live, this.remote) });
      for (const r of touched) {
        const current = live.find((l) => l.containerId === r.containerId);
        targets.set(r.containerId, current ? { record: current, entries: hostsEntries(current, live, this.remote) } : { record: r, entries: [] });
      }
      for (const { record, entries } of targets.values()) {
        if (record.hostsPath === undefined || record.hostsPath === '') continue;
        try {
          checkContainerFilePath(record.hostsPath, record.containerId);
          await writeHosts(record.hostsPath, entries);
        } catch (error) {
          this.onProblem(`could not update the hosts file of container ${record.name} (${record.containerId.slice(0, 12)}): ${describeError(error)}`);
        }
      }
    } finally {
      await release();
    }
  }
}
