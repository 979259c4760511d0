import { existsSync, readdirSync, rmSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import { loadConfDir, usableNetworks } from '../cni/conf-dir.js';
import { DEFAULT_NETWORK_NAME } from '../cni/default-network.js';
import { hostLocalDir } from '../cni/host-local.js';
import { bridgeName, bridgesOf, CREATED_BY, conflistFor, overlap, pickSubnet, SUBNET_POOL, subnetsOf, type NetworkSpec } from '../cni/network-spec.js';
import type { NetworkConfigList } from '../cni/types.js';
import type { DockerClient } from '../docker/docker-client.js';
import { DockcniError, InvalidInputError } from '../errors.js';
import { writeFileAtomic } from '../fs-atomic.js';
import { succeed, type HostCommands } from '../host-commands.js';
import { holdsNetns, type AttachmentRecord } from '../state/attachment.js';
import type { AttachmentStore } from '../state/attachment-store.js';
import { hostRoutes } from '../wiring/host-routes.js';
import type { Wirer } from '../wiring/wirer.js';

/** A subnet something on this host already uses, and what. */
export interface TakenSubnet {
  readonly subnet: string;
  readonly by: string;
}

/** Every subnet already in use, named: other CNI networks, Docker's networks, the host's routes. */
export async function takenSubnets(networks: readonly NetworkConfigList[], docker: Pick<DockerClient, 'networkSubnets'>): Promise<TakenSubnet[]> {
  return [
    ...networks.flatMap((n) => subnetsOf(n).map((subnet) => ({ subnet, by: `CNI network ${n.name} (${n.source})` }))),
    ...(await docker.networkSubnets()).map((d) => ({ subnet: d.subnet, by: `Docker network ${d.network}` })),
    ...hostRoutes().map((r) => ({ subnet: r.subnet, by: `a route of the host via ${r.dev}` })),
  ];
}

/** What `networks create` asks for: the spec without what create decides (a free subnet, a bridge of its own). */
export type CreateRequest = Omit<NetworkSpec, 'bridge'>;

export interface Created {
  readonly name: string;
  readonly driver: NetworkSpec['driver'];
  readonly subnets: readonly string[];
  readonly file: string;
  readonly bridge?: string | undefined;
}

/** Links of the host, by name: a new bridge must take none of them. */
const hostLinks = (): string[] => readdirSync('/sys/class/net');

/**
 * Writes the conflist of a new network into the conf dir: a free /24 of the pool when no subnet is
 * given, a bridge name no link and no other network has, and only after every check passed.
 */
export async function createNetwork(request: CreateRequest, deps: { readonly confDir: string; readonly docker: Pick<DockerClient, 'networkSubnets'> }): Promise<Created> {
  const listing = loadConfDir(deps.confDir);
  const existing = listing.networks.find((n) => n.name === request.name);
  if (existing || request.name === DEFAULT_NETWORK_NAME) {
    throw new DockcniError('already-exists', `network ${request.name} already exists (${existing?.source ?? 'embedded'})`, { fix: 'pick another name, or remove it first (dockcni networks rm)' });
  }
  const networks = usableNetworks(listing);
  const taken = await takenSubnets(networks, deps.docker);
  const subnets = request.subnets.length > 0 || request.ipam === 'dhcp' ? request.subnets : [pickSubnet(taken.map((x) => x.subnet)) ?? ''];
  if (subnets.includes('')) throw new DockcniError('already-exists', `no free /24 left in ${SUBNET_POOL}`, { fix: 'give --subnet' });
  // A bridge of its own: no link of the host and no other network's bridge has its name.
  const bridge = request.driver === 'bridge' ? bridgeName(request.name, new Set([...hostLinks(), ...networks.flatMap(bridgesOf)])) : undefined;
  const spec: NetworkSpec = { ...request, subnets, bridge };
  const conf = conflistFor(spec);
  for (const subnet of subnets) {
    const clash = taken.find((x) => overlap(x.subnet, subnet));
    if (clash) throw new InvalidInputError('--subnet', subnet, `overlaps ${clash.subnet} of ${clash.by}`, 'pick a subnet nothing on this host uses, or leave --subnet out');
  }
  if (request.parent !== undefined && !existsSync(`/sys/class/net/${request.parent}`)) {
    throw new InvalidInputError('--parent', request.parent, 'no such link on this host', 'name a link `ip link` lists, e.g. eth0');
  }
  const file = path.join(deps.confDir, `50-${request.name}.conflist`);
  if (existsSync(file)) throw new DockcniError('already-exists', `${file} already exists`, { fix: 'remove it, or pick another name' });
  // Config files are read by every CNI runtime of the host: world-readable, like the examples.
  await writeFileAtomic(file, `${JSON.stringify(conf, null, 2)}\n`, { file: 0o644, dir: 0o755 });
  return { name: request.name, driver: request.driver, subnets, file, ...(bridge === undefined ? {} : { bridge }) };
}

export interface Removed {
  readonly name: string;
  readonly file: string;
  /** Containers detached first (--force). */
  readonly detached: readonly string[];
  /** What was left in place, and why (a bridge another network or an interface still uses, a reservation). */
  readonly kept: readonly string[];
}

export interface RemoveDeps {
  readonly confDir: string;
  readonly store: Pick<AttachmentStore, 'list'>;
  readonly commands: HostCommands;
  /** The wirer, only built when containers must be detached. */
  readonly wirer: () => Promise<Pick<Wirer, 'unwire'>>;
}

/**
 * Removes a network `networks create` wrote (any file with `force`), refusing while containers are
 * attached unless `force`, which detaches them first. Its bridge and host-local's bookkeeping go too,
 * unless something still uses them.
 */
export async function removeNetwork(name: string, force: boolean, deps: RemoveDeps): Promise<Removed> {
  const listing = loadConfDir(deps.confDir);
  const list = listing.networks.find((n) => n.name === name);
  if (list === undefined) throw new DockcniError('not-found', `no network ${name} in ${deps.confDir}`, { fix: 'see `dockcni networks ls`' });
  const created = (JSON.parse(list.bytes.toString('utf8')) as { dockcni?: { createdBy?: string } }).dockcni?.createdBy === CREATED_BY;
  if (!created && !force) {
    throw new DockcniError('not-found', `${list.source} was not written by dockcni networks create: left alone`, { fix: 'remove it by hand, or pass --force' });
  }
  const attached = attachedTo(name, await deps.store.list());
  if (attached.length > 0 && !force) {
    throw new DockcniError('already-wired', `network ${name} has ${attached.length} container(s) attached: ${attached.map((r) => r.name).join(', ')}`, { fix: 'stop them first, or pass --force to detach them' });
  }
  if (attached.length > 0) {
    const wirer = await deps.wirer();
    for (const r of attached) await wirer.unwire(r.containerId);
  }
  unlinkSync(list.source);
  const kept: string[] = [];
  if (created) {
    // The bridge the plugin made for this network goes with it (the plugin never deletes it), unless
    // another network names it too or an interface is still on it (a container, or what someone else put there).
    for (const bridge of bridgesOf(list)) {
      if (!existsSync(`/sys/class/net/${bridge}`)) continue;
      const sharers = listing.networks.filter((n) => n.name !== name && bridgesOf(n).includes(bridge)).map((n) => `network ${n.name}`);
      const ports = readdirSync(`/sys/class/net/${bridge}/brif`).map((p) => `interface ${p}`);
      if (sharers.length + ports.length > 0) kept.push(`kept bridge ${bridge}: used by ${[...sharers, ...ports].join(', ')}`);
      else await succeed(deps.commands, 'ip', ['link', 'del', bridge]);
    }
    // host-local's bookkeeping for the network (its lock and last-reserved files) goes too; a
    // reservation still in it is someone's address, and keeps the directory.
    const ipamDir = hostLocalDir(list);
    if (ipamDir !== undefined && existsSync(ipamDir)) {
      const held = readdirSync(ipamDir).filter((f) => f !== 'lock' && !f.startsWith('last_reserved_ip'));
      if (held.length === 0) rmSync(ipamDir, { recursive: true });
      else kept.push(`kept ${ipamDir}: it still reserves ${held.join(', ')}`);
    }
  }
  return { name, file: list.source, detached: attached.map((r) => r.name), kept };
}

/** The live records with an attachment on the network. */
export function attachedTo(network: string, records: readonly AttachmentRecord[]): AttachmentRecord[] {
  return records.filter((r) => holdsNetns(r) && r.networks.some((n) => n.network === network));
}
