import ipaddr from 'ipaddr.js';
import { hostLocalSubnets } from '../cni/host-local.js';
import type { NetworkConfigList } from '../cni/types.js';
import { InvalidInputError } from '../errors.js';
import { holdsClaims, type AttachmentRecord, type NetworkAttachment } from '../state/attachment.js';

const hostPart = (address: string) => address.split('/')[0] ?? address;
/** What an attachment asked for: one being added has no result yet, but its claim counts. */const asked = (n: NetworkAttachment): string[] => (n.state === 'adding' && Array.isArray(n.capabilityArgs['ips']) ? n.capabilityArgs['ips'] as string[] : []);

/**
 * A static address asked for by a label, checked before any plugin runs so the error can name the
 * network's ranges or the container holding it; plugins would say only "not available". Other IPAM
 * plugins are left to judge their own addresses.
 */
export function checkRequestedAddresses(list: NetworkConfigList, ips: readonly string[], others: readonly AttachmentRecord[]): void {
  const subnets = hostLocalSubnets(list);
  for (const requested of ips) {
    const ip = ipaddr.parse(hostPart(requested));
    const sameFamily = subnets.filter(([net]) => net.kind() === ip.kind());
    if (sameFamily.length > 0 && !sameFamily.some((range) => ip.match(range))) {
      const listed = sameFamily.map(([net, bits]) => `${net.toString()}/${bits}`).join(', ');
      throw new InvalidInputError(`address for network ${list.name}`, requested, `outside the network's range ${listed}`, `pick an address inside ${listed}, or leave it to IPAM`);
    }
    for (const other of others) {
      const held = other.networks.some((n) => n.network === list.name && holdsClaims(n)
        && [...n.addresses, ...asked(n)].some((a) => ipaddr.isValid(hostPart(a)) && ipaddr.parse(hostPart(a)).toString() === ip.toString()));
      if (held) {
        throw new InvalidInputError(`address for network ${list.name}`, requested, `already held by container ${other.name} (${other.containerId.slice(0, 12)})`,
          'pick another address, or stop that container first');
      }
    }
  }
}

/** A MAC asked for must be no other container's on the network: two interfaces with one MAC on one L2 segment break both. */
export function checkRequestedMac(list: NetworkConfigList, mac: string, others: readonly AttachmentRecord[]): void {
  const wanted = mac.toLowerCase();
  for (const other of others) {
    const held = other.networks.some((n) => n.network === list.name && holdsClaims(n)
      && (n.mac?.toLowerCase() === wanted || (n.state === 'adding' && String(n.capabilityArgs['mac'] ?? '').toLowerCase() === wanted)));
    if (held) {
      throw new InvalidInputError(`MAC address for network ${list.name}`, mac, `already used by container ${other.name} (${other.containerId.slice(0, 12)})`,
        'pick another MAC address, or leave it to the plugin');
    }
  }
}
