import type { PortMapping, RuntimeConf } from '../cni/types.js';
import type { AttachmentRecord, NetworkAttachment, Origin } from '../state/attachment.js';
import { identityArgs, type NetworkRequest, type WireRequest } from './labels.js';

/** The container as the wirer needs it; filled from Docker (or runc's bundle) by the callers. */
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

/** One network of the request as the record holds it before its ADD: `adding`, with the identity CNI_ARGS every plugin gets. */
export function intendedAttachment(target: WireTarget, n: NetworkRequest, podNamespace: string): NetworkAttachment {
  return {
    network: n.network, ifName: n.ifName, state: 'adding', addresses: [], aliases: n.aliases, ...(n.group === undefined ? {} : { group: n.group }),
    args: [...identityArgs(podNamespace, target.name, target.containerId), ...n.extraArgs], capabilityArgs: n.capabilityArgs,
  };
}

/** The intent record written before the first ADD: what the container asked for, and where its netns is pinned. */
export function intentRecord(target: WireTarget, request: WireRequest, netns: string, podNamespace: string): AttachmentRecord {
  return {
    containerId: target.containerId, name: target.name, pid: target.pid, startedAt: target.startedAt, netns, origin: target.origin,
    hostsPath: target.hostsPath, hostname: target.hostname,
    networks: request.networks.map((n) => intendedAttachment(target, n, podNamespace)),
    updatedAt: '',
  };
}

/** The runtime arguments of one attachment's plugin calls. */
export function runtimeConf(record: AttachmentRecord, attachment: NetworkAttachment): RuntimeConf {
  return { containerId: record.containerId, netns: record.netns, ifName: attachment.ifName, args: attachment.args, capabilityArgs: attachment.capabilityArgs };
}

export const portMappings = (n: NetworkAttachment): PortMapping[] => (n.capabilityArgs['portMappings'] as PortMapping[] | undefined) ?? [];

/** The addresses of the networks that map host ports: what dockcni's port-mapped accept rules name. */
export const portMappedAddresses = (networks: readonly NetworkAttachment[]): string[] => networks.filter((n) => portMappings(n).length > 0).flatMap((n) => n.addresses);
