import { addressIn, type ClusterConf } from '../wiring/cluster-link.js';
import { bridgeAddress } from './datapath.js';
import { containerMtu, linkNames, nth, type ClusterNetwork } from './model.js';

/** Marks a conflist the cluster agent writes: `networks rm` and the agent remove only those. */
export const CLUSTER_CREATED_BY = 'dockcni cluster';

/** The file of a cluster network in the conf dir: before hand-written ones of the same name cannot shadow it (50-…). */
export const clusterConflistName = (network: string) => `45-${network}.conflist`;

/**
 * A cluster network as this host wires it: the bridge plugin on the network's bridge (no masquerade:
 * traffic inside the cluster subnet keeps its source; the agent masquerades what leaves it), host-local
 * allocating from this host's blocks only, each with the whole cluster subnet as its prefix and the
 * bridge's address as gateway, then firewall, portmap and bandwidth as on any dockcni network.
 * Reservations live in dockcni's state dir: the blocks are this host's, not a shared host-local dir's.
 */
export function clusterConflist(network: ClusterNetwork, blocks: readonly string[], underlayMtu: number, ipamDir: string, fenced: boolean): Record<string, unknown> {
  const gateway = bridgeAddress(blocks);
  const size = 2 ** (32 - network.blockSize);
  // Each block's network address is the VTEP address other hosts route it by, the first block's first
  // address the bridge's, and the last the block's broadcast had it been a subnet: none goes to a container.
  const ranges = blocks.map((block, i) => ({ subnet: network.subnet, rangeStart: nth(block, i === 0 ? 2 : 1), rangeEnd: nth(block, size - 2), gateway }));
  const cluster: ClusterConf = { subnet: network.subnet, ipRange: network.ipRange, blocks, fenced, bridgeAddress: gateway };
  return {
    cniVersion: '1.0.0',
    name: network.name,
    dockcni: { createdBy: CLUSTER_CREATED_BY, cluster },
    plugins: [
      {
        type: 'bridge', bridge: linkNames(network.name).bridge, isGateway: true, ipMasq: false, hairpinMode: true, mtu: containerMtu(network, underlayMtu),
        capabilities: { ips: true, mac: true },
        ipam: { type: 'host-local', dataDir: ipamDir, ranges: ranges.length > 0 ? [ranges] : [], routes: [{ dst: '0.0.0.0/0' }] },
      },
      { type: 'firewall', backend: 'iptables' },
      { type: 'portmap', capabilities: { portMappings: true }, snat: true },
      { type: 'bandwidth', capabilities: { bandwidth: true } },
    ],
  };
}

/** How full this host's blocks are, from host-local's reservations: the agent takes another block early. */
export function usage(network: ClusterNetwork, blocks: readonly string[], reserved: readonly string[]): { readonly used: number; readonly capacity: number } {
  const capacity = blocks.reduce((n, _b, i) => n + 2 ** (32 - network.blockSize) - (i === 0 ? 3 : 2), 0);
  const inBlocks = reserved.filter((ip) => blocks.some((b) => addressIn(b, ip)));
  return { used: inBlocks.length, capacity };
}
