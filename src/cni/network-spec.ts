import { createHash } from 'node:crypto';
import ipaddr from 'ipaddr.js';
import { InvalidInputError } from '../errors.js';
import { isValidNetworkName } from './conf.js';
import { validateIfName } from './identifiers.js';
import type { NetworkConfigList } from './types.js';

/** What `dockcni networks create` asks for, parsed from its flags. */
export interface NetworkSpec {
  readonly name: string;
  readonly driver: 'bridge' | 'macvlan' | 'ipvlan' | 'ptp';
  /** One IPv4 and/or one IPv6 subnet (both: dual stack). */
  readonly subnets: readonly string[];
  readonly gateways: readonly string[];
  readonly ipRange?: string | undefined;
  readonly parent?: string | undefined;
  readonly mtu?: number | undefined;
  /** No masquerade and no default route: containers reach each other and nothing else. */
  readonly internal: boolean;
  readonly ipam: 'host-local' | 'dhcp';
  readonly labels: Readonly<Record<string, string>>;
  /** The bridge driver's Linux bridge [default: bridgeName(name)]. */
  readonly bridge?: string | undefined;
}

/** Marks a conflist `networks create` wrote: `networks rm` removes only those without --force. */
export const CREATED_BY = 'dockcni networks create';

type Cidr = [ipaddr.IPv4 | ipaddr.IPv6, number];

const cidr = (text: string): Cidr => ipaddr.parseCIDR(text);
const family = (text: string) => (cidr(text)[0].kind() === 'ipv4' ? ipaddr.IPv4 : ipaddr.IPv6);
const first = (text: string) => family(text).networkAddressFromCIDR(text);
const last = (text: string) => family(text).broadcastAddressFromCIDR(text);
/** The address `delta` (±1) away, as bytes carry. */
function step(address: ipaddr.IPv4 | ipaddr.IPv6, delta: 1 | -1): string {
  const bytes = address.toByteArray();
  for (let i = bytes.length - 1; i >= 0; i--) {
    const next = bytes[i]! + delta;
    bytes[i] = (next + 256) % 256;
    if (next >= 0 && next <= 255) break;
  }
  return ipaddr.fromByteArray(bytes).toString();
}
const networkOf = (text: string) => `${first(text).toString()}/${cidr(text)[1]}`;

/** Whether two subnets share any address: one holds the other's first address. */
export function overlap(a: string, b: string): boolean {
  const [x, y] = [cidr(a), cidr(b)];
  if (x[0].kind() !== y[0].kind()) return false;
  return first(a).match(y) || first(b).match(x);
}

/** The subnets a list's IPAM hands out from (host-local and static), as CIDR text. */
export function subnetsOf(list: NetworkConfigList): string[] {
  const out: string[] = [];
  for (const plugin of list.plugins) {
    const ipam = plugin['ipam'] as { ranges?: unknown; subnet?: unknown; addresses?: unknown } | undefined;
    if (ipam === undefined) continue;
    const ranges = Array.isArray(ipam.ranges) ? (ipam.ranges.flat() as { subnet?: unknown }[]) : [{ subnet: ipam.subnet }];
    for (const r of ranges) if (typeof r.subnet === 'string' && ipaddr.isValidCIDR(r.subnet)) out.push(r.subnet);
    if (Array.isArray(ipam.addresses)) {
      for (const a of ipam.addresses as { address?: unknown }[]) if (typeof a.address === 'string' && ipaddr.isValidCIDR(a.address)) out.push(networkOf(a.address));
    }
  }
  return out;
}

/** The pool `networks create` picks from without --subnet: 10.220.0.0/16, one /24 at a time. */
export const SUBNET_POOL = '10.220.0.0/16';

/** The first /24 of the pool that overlaps nothing taken. */
export function pickSubnet(taken: readonly string[]): string | undefined {
  for (let third = 0; third < 256; third++) {
    const candidate = `10.220.${third}.0/24`;
    if (!taken.some((t) => overlap(t, candidate))) return candidate;
  }
  return undefined;
}

/**
 * A link name for the network's bridge within the kernel's 15 characters: `dc-`, the start of the name
 * and a hash of all of it, so that two names sharing their start (payments-internal, payments-internet)
 * never share a bridge; a name `taken` (an existing link, another network's bridge) moves to the next hash.
 */
export function bridgeName(network: string, taken: ReadonlySet<string> = new Set()): string {
  const base = `dc-${network.replace(/[^a-zA-Z0-9_-]/g, '').slice(0, 7)}-`;
  for (let n = 0; ; n++) {
    const name = `${base}${createHash('sha256').update(n === 0 ? network : `${network}#${n}`).digest('hex').slice(0, 15 - base.length)}`;
    if (!taken.has(name)) return name;
  }
}

/** The Linux bridges a network's plugins name (bridge plugin's `bridge`). */
export function bridgesOf(list: NetworkConfigList): string[] {
  return list.plugins.flatMap((p) => (typeof p['bridge'] === 'string' ? [p['bridge']] : []));
}

function check(spec: NetworkSpec): void {
  if (!isValidNetworkName(spec.name)) throw new InvalidInputError('network name', spec.name, 'use letters, digits, "_", "." and "-", starting with a letter or digit');
  const kinds = spec.subnets.map((s) => {
    if (!ipaddr.isValidCIDR(s)) throw new InvalidInputError('--subnet', s, 'not a subnet in CIDR notation', 'write e.g. --subnet 10.220.5.0/24');
    return cidr(s)[0].kind();
  });
  if (kinds.length > 2 || new Set(kinds).size !== kinds.length) throw new InvalidInputError('--subnet', spec.subnets.join(','), 'give at most one IPv4 and one IPv6 subnet', 'write --subnet 10.220.5.0/24 --subnet fd00:dc:5::/64');
  for (const g of spec.gateways) {
    if (!ipaddr.isValid(g) || !spec.subnets.some((s) => ipaddr.parse(g).kind() === cidr(s)[0].kind() && ipaddr.parse(g).match(cidr(s)))) {
      throw new InvalidInputError('--gateway', g, 'not an address inside one of the --subnet values', 'pick an address in the subnet, e.g. its .1');
    }
  }
  if (spec.ipRange !== undefined && (!ipaddr.isValidCIDR(spec.ipRange) || !spec.subnets.some((s) => cidr(spec.ipRange ?? '')[0].kind() === cidr(s)[0].kind() && cidr(spec.ipRange ?? '')[0].match(cidr(s))))) {
    throw new InvalidInputError('--ip-range', spec.ipRange, 'not a CIDR inside the --subnet', 'write e.g. --ip-range 10.220.5.128/25');
  }
  if (spec.driver === 'macvlan' || spec.driver === 'ipvlan') {
    if (spec.parent === undefined) throw new InvalidInputError('--parent', '', `the ${spec.driver} driver needs the host link to attach to`, 'write e.g. --parent eth0');
  }
  if (spec.parent !== undefined) validateIfName(spec.parent);
  if (spec.ipam === 'host-local' && spec.subnets.length === 0) throw new InvalidInputError('--subnet', '', 'no subnet', 'give --subnet, or leave it out for one from the pool');
}

/** The conflist a Docker host needs for the spec: the driver with its IPAM, firewall, portmap, bandwidth. */
export function conflistFor(spec: NetworkSpec): Record<string, unknown> {
  check(spec);
  const gatewayOf = (subnet: string) => spec.gateways.find((g) => ipaddr.parse(g).kind() === cidr(subnet)[0].kind());
  const range = (subnet: string) => {
    const r: Record<string, string> = { subnet };
    const gw = gatewayOf(subnet);
    if (gw) r['gateway'] = gw;
    if (spec.ipRange && cidr(spec.ipRange)[0].kind() === cidr(subnet)[0].kind()) {
      // Never the subnet's own network address, nor its IPv4 broadcast.
      const start = first(spec.ipRange);
      const end = last(spec.ipRange);
      r['rangeStart'] = start.toString() === first(subnet).toString() ? step(start, 1) : start.toString();
      r['rangeEnd'] = end.kind() === 'ipv4' && end.toString() === last(subnet).toString() ? step(end, -1) : end.toString();
    }
    return [r];
  };
  const ipam = spec.ipam === 'dhcp' ? { type: 'dhcp' } : {
    type: 'host-local',
    ranges: spec.subnets.map(range),
    routes: spec.internal ? [] : spec.subnets.map((s) => ({ dst: cidr(s)[0].kind() === 'ipv4' ? '0.0.0.0/0' : '::/0' })),
  };
  const mtu = spec.mtu === undefined ? {} : { mtu: spec.mtu };
  const main = {
    bridge: { type: 'bridge', bridge: spec.bridge ?? bridgeName(spec.name), isGateway: !spec.internal, ipMasq: !spec.internal, hairpinMode: true, ...mtu, capabilities: { ips: true, mac: true }, ipam },
    macvlan: { type: 'macvlan', master: spec.parent, mode: 'bridge', ...mtu, capabilities: { ips: true, mac: true }, ipam },
    ipvlan: { type: 'ipvlan', master: spec.parent, mode: 'l2', ...mtu, capabilities: { ips: true }, ipam },
    ptp: { type: 'ptp', ipMasq: !spec.internal, ...mtu, capabilities: { ips: true }, ipam },
  }[spec.driver];
  const hostSide = spec.driver === 'bridge' || spec.driver === 'ptp';
  return {
    cniVersion: '1.0.0',
    name: spec.name,
    dockcni: { createdBy: CREATED_BY, driver: spec.driver, internal: spec.internal, labels: spec.labels },
    plugins: [
      main,
      // Docker's FORWARD DROP: without it containers on the bridge cannot reach each other.
      ...(hostSide ? [{ type: 'firewall', backend: 'iptables' }] : []),
      { type: 'portmap', capabilities: { portMappings: true }, snat: true },
      { type: 'bandwidth', capabilities: { bandwidth: true } },
    ],
  };
}
