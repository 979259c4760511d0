import ipaddr from 'ipaddr.js';
import type { NetworkConfigList } from '../cni/types.js';
import { DockcniError } from '../errors.js';

/**
 * What a conflist of a cluster network says about it on this host (`dockcni.cluster`, written by the
 * daemon's cluster agent from etcd): the wiring needs nothing else to allocate on the hot path.
 */
export interface ClusterConf {
  readonly subnet: string;
  readonly ipRange: string;
  /** This host's blocks: host-local allocates from them. */
  readonly blocks: readonly string[];
  /** The host could not confirm its block leases in time: no allocation until it has. */
  readonly fenced: boolean;
  readonly bridgeAddress?: string | undefined;
}

/** An IPv4 address inside a CIDR: the one test of blocks, ranges and statics, for the wiring and the agent. */
export const addressIn = (cidr: string, ip: string): boolean => ipaddr.isValid(ip) && ipaddr.parse(ip).kind() === 'ipv4' && ipaddr.parse(ip).match(ipaddr.parseCIDR(cidr));

export function clusterConf(list: NetworkConfigList): ClusterConf | undefined {
  const raw = JSON.parse(list.bytes.toString('utf8')) as { dockcni?: { cluster?: ClusterConf } };
  return raw.dockcni?.cluster;
}

/** Who holds a static address of a cluster network. */
export interface StaticHolder {
  readonly containerId: string;
  readonly container: string;
}

/**
 * What the wiring asks of the cluster, through the daemon's cluster agent (the one process with an etcd
 * client): a static address claimed cluster-wide, released, and a new block when this host's are full.
 */
export interface ClusterLink {
  /** Throws naming the holder (container and host) when another container has it. */
  claimStatic(network: string, ip: string, holder: StaticHolder): Promise<void>;
  releaseStatic(network: string, ip: string, holder: StaticHolder): Promise<void>;
  /** Another block for this host, its conflist rewritten before this resolves. */
  takeBlock(network: string): Promise<void>;
}

/** The agent's answer when a static address is someone else's. */
export class StaticTakenError extends DockcniError {
  override readonly name = 'StaticTakenError';
  constructor(readonly network: string, readonly ip: string, readonly holder: string, readonly host: string) {
    super('name-taken', `address ${ip} on cluster network ${network} is already held by container ${holder} on host ${host}`, {
      fix: 'pick another static address (dockcni cluster status lists the claims), or stop that container first',
    });
  }
}
