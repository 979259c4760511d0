import { randomInt } from 'node:crypto';
import type { EtcdCluster } from '../cluster/etcd.js';
import { clusterNetworkFor, type ClusterNetwork, type CreateClusterNetwork } from '../cluster/model.js';
import { DockcniError } from '../errors.js';
import type { AttachmentRecord } from '../state/attachment.js';
import { attachedTo } from './lifecycle.js';

/** VNIs dockcni picks from: clear of the small numbers people choose by hand. */
const VNI_FIRST = 4096;
const VNI_LAST = 16_000_000;

/**
 * A cluster network is created in etcd alone, in one transaction (its name and subnet checked against
 * every other cluster network there); each host's agent then writes its conflist and sets up its data
 * path from the watch. Nothing is half-created: the record is there or it is not.
 */
export async function createClusterNetwork(etcd: EtcdCluster, request: CreateClusterNetwork): Promise<ClusterNetwork> {
  await etcd.ping();
  const taken = new Set([...(await etcd.snapshot()).networks.values()].map((n) => n.vni));
  let vni = randomInt(VNI_FIRST, VNI_LAST);
  while (taken.has(vni)) vni = randomInt(VNI_FIRST, VNI_LAST);
  const network = clusterNetworkFor(request, vni);
  await etcd.createNetwork(network);
  return network;
}

/**
 * Removed everywhere once no host has a container on it: this host's records and every host's names
 * in etcd say so. The agents remove their conflists, links and rules when they see it gone.
 */
export async function removeClusterNetwork(etcd: EtcdCluster, name: string, localRecords: readonly AttachmentRecord[]): Promise<void> {
  const snapshot = await etcd.snapshot();
  if (!snapshot.networks.has(name)) throw new DockcniError('not-found', `no cluster network ${name} in etcd`, { fix: 'see `dockcni networks ls`' });
  const local = attachedTo(name, localRecords).map((r) => `${r.name} (this host)`);
  const remote = [...(snapshot.names.get(name) ?? new Map()).values()].map((n) => `${n.containerId.slice(0, 12)} (${n.host})`);
  const on = [...new Set([...local, ...remote])];
  if (on.length > 0) throw new DockcniError('already-wired', `cluster network ${name} has ${on.length} container(s) on it: ${on.join(', ')}`, { fix: 'stop them first, on every host' });
  await etcd.removeNetwork(name);
}
