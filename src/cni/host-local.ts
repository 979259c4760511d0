import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import ipaddr from 'ipaddr.js';
import type { CniResult, NetworkConfigList } from './types.js';

type Address = ipaddr.IPv4 | ipaddr.IPv6;

/** What the reference host-local IPAM plugin keeps on disk, read as the plugin lays it out. */
const DEFAULT_DATA_DIR = '/var/lib/cni/networks';

const hostLocalIpam = (list: NetworkConfigList) => list.plugins.map((p) => p['ipam'] as { type?: unknown; dataDir?: unknown; ranges?: unknown; subnet?: unknown } | undefined).find((i) => i?.type === 'host-local');

/** host-local's data dir for a network, as the plugin computes it; undefined when its IPAM is another. */
export function hostLocalDir(list: NetworkConfigList): string | undefined {
  const ipam = hostLocalIpam(list);
  return ipam === undefined ? undefined : path.join(typeof ipam.dataDir === 'string' ? ipam.dataDir : DEFAULT_DATA_DIR, list.name);
}

/** host-local's subnets for the network, in both of its config shapes. */
export function hostLocalSubnets(list: NetworkConfigList): [Address, number][] {
  const subnets: [Address, number][] = [];
  for (const plugin of list.plugins) {
    const ipam = plugin['ipam'] as { type?: unknown; ranges?: unknown; subnet?: unknown } | undefined;
    if (ipam?.type !== 'host-local') continue;
    const ranges = Array.isArray(ipam.ranges) ? ipam.ranges.flat() as { subnet?: unknown }[] : [{ subnet: ipam.subnet }];
    for (const range of ranges) {
      if (typeof range.subnet === 'string' && ipaddr.isValidCIDR(range.subnet)) subnets.push(ipaddr.parseCIDR(range.subnet));
    }
  }
  return subnets;
}

/**
 * The addresses host-local reserves for one attachment (files named by address, holding the container
 * id and interface), as a result a DEL can take as prevResult when nothing was cached: an ADD cut short
 * before the cache was written (dockcni killed) still has plugins, like firewall, that remove only
 * what prevResult names.
 */
export function reservedResult(list: NetworkConfigList, containerId: string, ifName: string): CniResult | undefined {
  const dir = hostLocalDir(list);
  if (dir === undefined) return undefined;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const subnets = hostLocalSubnets(list);
  const ips: { address: string }[] = [];
  for (const name of names.filter((n) => ipaddr.isValid(n))) {
    const [id = '', iface = ''] = readFileSync(path.join(dir, name), 'utf8').split(/\r?\n/).map((l) => l.trim());
    if (id !== containerId || iface !== ifName) continue;
    const ip = ipaddr.parse(name);
    const subnet = subnets.filter(([net]) => net.kind() === ip.kind()).find((range) => ip.match(range));
    if (subnet !== undefined) ips.push({ address: `${ip.toString()}/${subnet[1]}` });
  }
  return ips.length === 0 ? undefined : { cniVersion: list.cniVersion, ips };
}
