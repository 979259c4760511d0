import type { CniArgs } from '../cni/args.js';
import type { NetworkConfigList } from '../cni/types.js';
import type { NetworkAttachment } from '../state/attachment.js';

/** The reference IPAM plugins that take a requested address through CNI_ARGS `IP=` (host-local: one; static: a list). */
const IP_ARG_IPAM = new Set(['host-local', 'static']);
/** The reference plugins that take a requested MAC through CNI_ARGS `MAC=`. */
const MAC_ARG_PLUGINS = new Set(['bridge', 'macvlan']);

export interface KeptIdentity {
  /** Capability args that ask for the attachment's addresses and MAC. */
  readonly capabilityArgs: Readonly<Record<string, unknown>>;
  /** CNI_ARGS that ask for them where the network declares no capability for them. */
  readonly args: CniArgs;
  /** What cannot be asked for at all: a rebuild may change it. */
  readonly unkept: readonly ('address' | 'MAC')[];
}

const declares = (list: NetworkConfigList, cap: string) => list.plugins.some((p) => p.capabilities?.[cap] === true);
const ipamType = (list: NetworkConfigList) => list.plugins.map((p) => (p['ipam'] as { type?: unknown } | undefined)?.type).find((t): t is string => typeof t === 'string');

/** How a network can be asked for given addresses and a MAC: through its capabilities, CNI_ARGS, or not at all. */
export function identityWays(list: NetworkConfigList): { address: 'capability' | 'cni-args' | 'none'; mac: 'capability' | 'cni-args' | 'none' } {
  const ipam = ipamType(list);
  return {
    address: declares(list, 'ips') ? 'capability' : ipam !== undefined && IP_ARG_IPAM.has(ipam) ? 'cni-args' : 'none',
    mac: declares(list, 'mac') ? 'capability' : MAC_ARG_PLUGINS.has(String(list.plugins[0]?.type)) ? 'cni-args' : 'none',
  };
}

/**
 * What a rebuild of an attachment passes so that it keeps its addresses and MAC: the `ips` and `mac`
 * capabilities where the network declares them, else CNI_ARGS `IP=` and `MAC=` where its plugins read
 * those (host-local takes one address: the first IPv4 one), and the rest said as not kept.
 */
export function keptIdentity(list: NetworkConfigList, attachment: NetworkAttachment): KeptIdentity {
  const ways = identityWays(list);
  const capabilityArgs: Record<string, unknown> = { ...attachment.capabilityArgs };
  const args: [string, string][] = [];
  const unkept: ('address' | 'MAC')[] = [];
  const addresses = attachment.addresses;
  if (addresses.length > 0) {
    if (ways.address === 'capability') capabilityArgs['ips'] = [...addresses];
    else if (ways.address === 'cni-args' && ipamType(list) === 'static') args.push(['IP', addresses.join(',')]);
    else if (ways.address === 'cni-args') {
      const v4 = addresses.find((a) => !a.includes(':')) ?? addresses[0]!;
      args.push(['IP', v4.split('/')[0] ?? v4]);
      if (addresses.length > 1) unkept.push('address');
    } else unkept.push('address');
  }
  if (attachment.mac !== undefined) {
    if (ways.mac === 'capability') capabilityArgs['mac'] = attachment.mac;
    else if (ways.mac === 'cni-args') args.push(['MAC', attachment.mac]);
    else unkept.push('MAC');
  }
  return { capabilityArgs, args, unkept };
}
