import type { CacheEntry } from '../cni/result-cache.js';
import type { Leftover } from '../gc/collector.js';
import type { HostLeftover } from '../gc/host-leftovers.js';

/** One line for humans per leftover: what it is and why it is one. */
export function describeLeftover(item: Leftover): string {
  switch (item.kind) {
    case 'attachment': return `attachment of ${item.name} (${item.containerId.slice(0, 12)}) on ${item.networks.join(',')}: ${item.why}`;
    case 'sandbox': return `run sandbox ${item.name} (${item.containerId.slice(0, 12)}): ${item.why}`;
    case 'pin': return `pinned netns ${item.path} with no attachment`;
    case 'cache': return `cached result ${item.path} with no attachment`;
    case 'temp': return `half-written file ${item.path} of a writer that died`;
    case 'unreadable': return `attachment record ${item.path} that is not valid JSON (its pin and cache entries are cleaned on their own)`;
  }
}

export function describeHostLeftover(item: HostLeftover): string {
  switch (item.kind) {
    case 'reservation': return `host-local reservation ${item.address} on ${item.network} held by gone container ${item.containerId.slice(0, 16)} (${item.path})`;
    case 'chain': return `iptables ${item.table} chain ${item.chain} of gone container ${item.containerId.slice(0, 16)} on ${item.network}`;
    case 'rule': return `port-mapping accept rule in CNI-ADMIN of gone container ${item.containerId.slice(0, 16)}`;
  }
}

/** Other runtimes' attachments, counted per network: which network is someone else's to clean. */
export function describeForeign(entries: readonly CacheEntry[]): string {
  const byNetwork = new Map<string, number>();
  for (const e of entries) byNetwork.set(e.networkName, (byNetwork.get(e.networkName) ?? 0) + 1);
  return `${entries.length} attachment(s) of other CNI runtimes (${[...byNetwork].map(([n, c]) => `${n}: ${c}`).join(', ')})`;
}
