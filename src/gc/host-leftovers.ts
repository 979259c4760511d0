import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { hostLocalDir } from '../cni/host-local.js';
import type { NetworkConfigList } from '../cni/types.js';
import { readdirOrEmpty, removeIfExists } from '../fs-atomic.js';
import type { HostFirewall } from '../wiring/host-firewall.js';

/**
 * What plugins leave behind when a DEL never ran: host-local reservations and iptables chains whose
 * container no runtime knows any more. "Knows" means a libcni cache entry (any runtime's), a dockcni
 * record, or a running container: other runtimes sharing /var/lib/cni keep what is theirs.
 */
export type HostLeftover =
  | { readonly kind: 'reservation'; readonly network: string; readonly address: string; readonly containerId: string; readonly path: string }
  | { readonly kind: 'chain'; readonly table: 'nat'; readonly chain: string; readonly containerId: string; readonly network: string }
  | { readonly kind: 'rule'; readonly containerId: string };

const IN_FLIGHT_MS = 30_000;

async function reservations(list: NetworkConfigList): Promise<{ address: string; containerId: string; path: string }[]> {
  const dir = hostLocalDir(list);
  if (!dir) return [];
  const names = await readdirOrEmpty(dir);
  const found = [];
  for (const name of names.filter((n) => n !== 'lock' && !n.startsWith('last_reserved_ip'))) {
    const file = path.join(dir, name);
    // A fresh reservation may belong to an ADD still running, whose cache entry is not written yet.
    if (Date.now() - (await stat(file)).mtimeMs < IN_FLIGHT_MS) continue;
    const containerId = (await readFile(file, 'utf8')).split(/\r?\n/)[0]?.trim() ?? '';
    found.push({ address: name, containerId, path: file });
  }
  return found;
}

/**
 * `isKnown` answers whether some runtime still owns a container id (cache entry, record, live container).
 * `ruled` lists the containers with dockcni's own port-mapping rules.
 */
export async function findHostLeftovers(networks: readonly NetworkConfigList[], isKnown: (containerId: string) => Promise<boolean>, firewall: Pick<HostFirewall, 'containersWithRules' | 'pluginChains'>): Promise<HostLeftover[]> {
  const ruled = await firewall.containersWithRules();
  const out: HostLeftover[] = [];
  for (const id of ruled) if (!(await isKnown(id))) out.push({ kind: 'rule', containerId: id });
  for (const list of networks) {
    for (const r of await reservations(list)) {
      if (!(await isKnown(r.containerId))) out.push({ kind: 'reservation', network: list.name, ...r });
    }
  }
  for (const c of await firewall.pluginChains()) {
    if (!(await isKnown(c.containerId))) out.push({ kind: 'chain', table: 'nat', ...c });
  }
  return out;
}

/** Removes a reservation file, a container's port-mapping rules, or a chain with every rule that jumps to it. */
export async function removeHostLeftover(item: HostLeftover, firewall: Pick<HostFirewall, 'revokePortMapped' | 'removeChain'>): Promise<void> {
  if (item.kind === 'reservation') {
    await removeIfExists(item.path);
    return;
  }
  if (item.kind === 'rule') {
    await firewall.revokePortMapped(item.containerId);
    return;
  }
  await firewall.removeChain(item.chain);
}
