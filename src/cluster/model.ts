import { createHash, randomInt } from 'node:crypto';
import ipaddr from 'ipaddr.js';
import { isValidNetworkName } from '../cni/conf.js';
import { InvalidInputError } from '../errors.js';

/**
 * A cluster network and everything etcd holds for it, as plain data. Every cluster-wide fact lives
 * under one prefix, each key written in a transaction:
 *
 *   networks/<net>                 the network (subnet, dynamic range, block size, backend, VNI, MTU)
 *   hosts/<host>                   a host's presence: address, VTEP MAC — on its presence lease (--host-ttl)
 *   blocks/<net>/<block>           which host allocates from a block — created only if absent, on the
 *                                  host's block lease (--block-ttl): a host that comes back keeps them
 *   statics/<net>/<ip>             a static address and its holder — created only if absent, block lease
 *   names/<net>/<host>/<ctr>       a container's names and addresses — presence lease: gone with its host
 *   seen/<host>                    where and when a host was last seen (no lease): `cluster status`
 */
export const PREFIX = '/dockcni/v1/';
export const key = {
  network: (net: string) => `${PREFIX}networks/${net}`,
  networks: () => `${PREFIX}networks/`,
  /** Bumped by every create and remove: two creates racing on overlapping subnets cannot both win. */
  networksIndex: () => `${PREFIX}networks-index`,
  host: (host: string) => `${PREFIX}hosts/${host}`,
  hosts: () => `${PREFIX}hosts/`,
  /** No lease: where a lost host was last seen, for `cluster status`. */
  seen: (host: string) => `${PREFIX}seen/${host}`,
  seenAll: () => `${PREFIX}seen/`,
  block: (net: string, block: string) => `${PREFIX}blocks/${net}/${blockKey(block)}`,
  blocks: (net?: string) => `${PREFIX}blocks/${net === undefined ? '' : `${net}/`}`,
  static: (net: string, ip: string) => `${PREFIX}statics/${net}/${ip}`,
  statics: (net?: string) => `${PREFIX}statics/${net === undefined ? '' : `${net}/`}`,
  name: (net: string, host: string, containerId: string) => `${PREFIX}names/${net}/${host}/${containerId}`,
  names: (net?: string, host?: string) => `${PREFIX}names/${net === undefined ? '' : `${net}/${host === undefined ? '' : `${host}/`}`}`,
} as const;

/** A CIDR as an etcd key segment: `10.240.3.0-24`. */
const blockKey = (block: string) => block.replace('/', '-');
export const blockFromKey = (segment: string) => segment.replace(/-(\d+)$/, '/$1');

export type Backend = 'vxlan' | 'host-gw';
export const BACKENDS: readonly Backend[] = ['vxlan', 'host-gw'];

export interface ClusterNetwork {
  readonly name: string;
  readonly subnet: string;
  /** Where hosts take blocks from; the rest of the subnet is for static addresses. */
  readonly ipRange: string;
  readonly blockSize: number;
  readonly backend: Backend;
  readonly vni: number;
  /** The containers' MTU; undefined: the underlay's, less what the backend costs. */
  readonly mtu?: number | undefined;
  readonly createdAt: string;
}

export interface HostRecord {
  readonly name: string;
  /** Identifies one machine across daemon restarts: a name taken by another machine is refused. */
  readonly uid: string;
  /** The underlay address other hosts reach it at. */
  readonly address: string;
  readonly vtepMac: string;
  readonly underlayMtu: number;
  readonly since: string;
}

export interface SeenRecord {
  readonly address: string;
  readonly lastSeen: string;
}

export interface BlockRecord {
  readonly host: string;
  readonly hostUid: string;
  readonly leasedAt: string;
}

export interface StaticClaim {
  readonly host: string;
  readonly hostUid: string;
  readonly containerId: string;
  readonly container: string;
  /** A claim of a container this host has no record of is released, once this long ago. */
  readonly claimedAt: string;
}

/** A container as peers on other hosts resolve it. */
export interface NameRecord {
  readonly host: string;
  readonly containerId: string;
  /** Published names in the order a hosts line lists them. */
  readonly names: readonly string[];
  /** Addresses, without prefix length. */
  readonly addresses: readonly string[];
}

type V4 = ipaddr.IPv4;
const v4 = (cidr: string, what: string): [V4, number] => {
  if (!ipaddr.isValidCIDR(cidr)) throw new InvalidInputError(what, cidr, 'not a subnet in CIDR notation', 'write e.g. 10.240.0.0/16');
  const [address, bits] = ipaddr.parseCIDR(cidr);
  if (address.kind() !== 'ipv4') throw new InvalidInputError(what, cidr, 'cluster networks are IPv4', 'give an IPv4 subnet, e.g. 10.240.0.0/16');
  return [address as V4, bits];
};
const toInt = (a: V4) => a.toByteArray().reduce((n, b) => n * 256 + b, 0);
const fromInt = (n: number) => ipaddr.fromByteArray([24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256)) as V4;
/** The CIDR's network address as a number, and its size. */
export function span(cidr: string): { start: number; size: number } {
  const [address, bits] = v4(cidr, 'subnet');
  const size = 2 ** (32 - bits);
  return { start: Math.floor(toInt(address) / size) * size, size };
}
export const cidrOf = (start: number, bits: number) => `${fromInt(start).toString()}/${bits}`;
export const contains = (outer: string, inner: string) => {
  const [o, i] = [span(outer), span(inner)];
  return i.start >= o.start && i.start + i.size <= o.start + o.size;
};
export const overlaps = (a: string, b: string) => {
  const [x, y] = [span(a), span(b)];
  return x.start < y.start + y.size && y.start < x.start + x.size;
};
/** The nth address of a CIDR (0: its network address). */
export const nth = (cidr: string, n: number) => fromInt(span(cidr).start + n).toString();

/** Every block of the dynamic range, in address order. */
export function blocksOf(network: Pick<ClusterNetwork, 'ipRange' | 'blockSize'>): string[] {
  const range = span(network.ipRange);
  const size = 2 ** (32 - network.blockSize);
  return Array.from({ length: range.size / size }, (_, i) => cidrOf(range.start + i * size, network.blockSize));
}

/** A free block, picked at random so that hosts racing for one rarely meet; undefined when none is left. */
export function pickFreeBlock(network: Pick<ClusterNetwork, 'ipRange' | 'blockSize'>, taken: ReadonlySet<string>, tried: ReadonlySet<string> = new Set()): string | undefined {
  const free = blocksOf(network).filter((b) => !taken.has(b) && !tried.has(b));
  return free.length === 0 ? undefined : free[randomInt(free.length)];
}

export interface CreateClusterNetwork {
  readonly name: string;
  readonly subnet: string;
  readonly ipRange?: string | undefined;
  readonly blockSize?: number | undefined;
  readonly backend?: string | undefined;
  readonly mtu?: number | undefined;
}

/** The network record a create asks for, every value checked; `vni` is picked by the caller (unique in etcd). */
export function clusterNetworkFor(request: CreateClusterNetwork, vni: number, now = new Date()): ClusterNetwork {
  if (!isValidNetworkName(request.name)) throw new InvalidInputError('network name', request.name, 'use letters, digits, "_", "." and "-", starting with a letter or digit');
  const [, subnetBits] = v4(request.subnet, '--subnet');
  if (span(request.subnet).start !== toInt(v4(request.subnet, '--subnet')[0])) {
    throw new InvalidInputError('--subnet', request.subnet, 'has host bits set', `write its network address: ${cidrOf(span(request.subnet).start, subnetBits)}`);
  }
  const ipRange = request.ipRange ?? request.subnet;
  const [, rangeBits] = v4(ipRange, '--ip-range');
  if (!contains(request.subnet, ipRange)) throw new InvalidInputError('--ip-range', ipRange, `not inside --subnet ${request.subnet}`, `write e.g. --ip-range ${cidrOf(span(request.subnet).start, Math.min(subnetBits + 1, 30))}`);
  const blockSize = request.blockSize ?? Math.min(Math.max(rangeBits, 24), 30);
  if (!Number.isInteger(blockSize) || blockSize < rangeBits || blockSize > 29) {
    throw new InvalidInputError('--block-size', String(request.blockSize), `a block must fit the dynamic range ${ipRange} (a prefix length from ${rangeBits} to 29)`, `write e.g. --block-size ${Math.min(Math.max(rangeBits, 24), 29)}`);
  }
  const backend = request.backend ?? 'vxlan';
  if (!(BACKENDS as readonly string[]).includes(backend)) throw new InvalidInputError('--backend', backend, 'unknown backend', `use ${BACKENDS.join(' or ')}`);
  if (request.mtu !== undefined && (!Number.isInteger(request.mtu) || request.mtu < 576 || request.mtu > 9000)) {
    throw new InvalidInputError('--mtu', String(request.mtu), 'not an MTU from 576 to 9000', 'leave it out: the underlay\'s MTU, less what the backend costs');
  }
  return { name: request.name, subnet: request.subnet, ipRange, blockSize, backend: backend as Backend, vni, mtu: request.mtu, createdAt: now.toISOString() };
}

/** A host's name is a key segment in etcd: one DNS label or a dotted name, nothing else. */
export function checkHostName(name: string): string {
  if (!/^[A-Za-z0-9]([A-Za-z0-9.-]{0,61}[A-Za-z0-9])?$/.test(name)) throw new InvalidInputError('--host-name', name, 'not a host name (letters, digits, "-" and ".")', 'give --host-name node-1');
  return name;
}

/** VXLAN over IPv4 costs 50 bytes of the underlay's MTU; host-gw costs nothing. */
export const BACKEND_OVERHEAD: Readonly<Record<Backend, number>> = { vxlan: 50, 'host-gw': 0 };

export const containerMtu = (network: ClusterNetwork, underlayMtu: number) => network.mtu ?? underlayMtu - BACKEND_OVERHEAD[network.backend];

/** A VTEP MAC a host keeps across restarts: locally administered, from its uid. */
export function vtepMac(uid: string): string {
  const bytes = createHash('sha256').update(uid).digest().subarray(0, 6);
  bytes[0] = (bytes[0]! & 0xfe) | 0x02;
  return [...bytes].map((b) => b.toString(16).padStart(2, '0')).join(':');
}

/** Link names of a cluster network on each host, within the kernel's 15 characters: the same on every host. */
export function linkNames(network: string): { readonly bridge: string; readonly vxlan: string } {
  const hash = createHash('sha256').update(network).digest('hex');
  return { bridge: `dcc-${hash.slice(0, 11)}`, vxlan: `dcx-${hash.slice(0, 11)}` };
}
