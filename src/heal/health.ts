import ipaddr from 'ipaddr.js';
import type { CacheEntry } from '../cni/result-cache.js';
import type { NetworkAttachment, AttachmentRecord } from '../state/attachment.js';
import type { PortMapping } from '../cni/types.js';

/**
 * What the host looks like, read once per check round: iptables rules, links, and what a container's
 * process sees of its own netns. One `iptables-save` and a few small /proc and /sys reads per container:
 * a CNI CHECK of every plugin of every attachment would start several processes per container each round.
 */
export interface HostView {
  /** `iptables-save` (and `ip6tables-save` when asked), by table. */
  rules(ipv6: boolean): Promise<ReadonlyMap<string, readonly string[]>>;
  /** The links of the host's netns. */
  hostLink(name: string): { readonly master?: string | undefined } | undefined;
  /** Inside the netns of the process: link names, IPv4 addresses (local ones), IPv6 addresses. */
  netnsOf(pid: number): { readonly links: ReadonlySet<string>; readonly addresses: ReadonlySet<string> } | undefined;
}

interface PluginConf { readonly type?: string; readonly bridge?: string; readonly ipMasq?: boolean; readonly backend?: string }

const hostPart = (cidr: string) => cidr.split('/')[0] ?? cidr;
/** As the view lists addresses: IPv6 in its shortest form. */
const normal = (cidr: string) => (ipaddr.isValid(hostPart(cidr)) ? ipaddr.parse(hostPart(cidr)).toString() : hostPart(cidr));

function pluginsOf(entry: CacheEntry): PluginConf[] {
  const parsed = JSON.parse(Buffer.from(entry.config, 'base64').toString('utf8')) as { plugins?: PluginConf[]; type?: string };
  return parsed.plugins ?? [parsed as PluginConf];
}

/**
 * What is missing of one attachment, by dockcni's own view: its interface and addresses inside the
 * netns, its veth on the bridge, and the rules its plugins make (bridge masquerade, portmap DNAT, the
 * firewall plugin's accept rules, dockcni's port-mapped rule). Empty when it is whole. Plugins of
 * other types are not judged: what they own is theirs to know.
 */
export async function missingParts(record: AttachmentRecord, attachment: NetworkAttachment, entry: CacheEntry | undefined, view: HostView): Promise<string[]> {
  if (entry === undefined) return [`no cached result for ${attachment.network}/${attachment.ifName}`];
  const missing: string[] = [];
  const inside = view.netnsOf(record.pid);
  if (inside === undefined) return []; // the process is gone: its die event does the rest
  if (!inside.links.has(attachment.ifName)) missing.push(`interface ${attachment.ifName} in the container`);
  else for (const a of attachment.addresses) if (!inside.addresses.has(normal(a))) missing.push(`address ${a} on ${attachment.ifName}`);
  const plugins = pluginsOf(entry);
  const hostIfs = (entry.result?.interfaces ?? []).filter((i) => i.sandbox === undefined || i.sandbox === '');
  const bridge = plugins.find((p) => p.type === 'bridge')?.bridge;
  for (const link of hostIfs) {
    const seen = view.hostLink(link.name);
    if (seen === undefined) missing.push(`host link ${link.name}`);
    else if (bridge !== undefined && link.name !== bridge && seen.master !== bridge) missing.push(`host link ${link.name} on bridge ${bridge}`);
  }
  const ipv6 = attachment.addresses.some((a) => a.includes(':'));
  const tables = await view.rules(ipv6);
  const nat = tables.get('nat') ?? [];
  const filter = tables.get('filter') ?? [];
  const mentions = (lines: readonly string[], ...parts: string[]) => lines.some((l) => parts.every((p) => l.includes(p)));
  if (plugins.some((p) => p.type === 'bridge' && p.ipMasq === true) && !mentions(nat, record.containerId)) missing.push('masquerade rules (nat)');
  const mappings = (attachment.capabilityArgs['portMappings'] as PortMapping[] | undefined) ?? [];
  if (mappings.length > 0 && plugins.some((p) => p.type === 'portmap')) {
    for (const m of mappings) {
      for (const a of attachment.addresses) {
        const to = a.includes(':') ? `[${hostPart(a)}]:${m.containerPort}` : `${hostPart(a)}:${m.containerPort}`;
        if (!mentions(nat, '-j DNAT', `--to-destination ${to}`)) missing.push(`port mapping ${m.hostPort}->${to} (nat)`);
      }
    }
  }
  if (plugins.some((p) => p.type === 'firewall' && (p.backend ?? 'iptables') === 'iptables')) {
    for (const a of attachment.addresses.filter((x) => !x.includes(':'))) {
      if (!mentions(filter, 'CNI-FORWARD', `${hostPart(a)}/32`)) missing.push(`forward accept rules for ${hostPart(a)} (filter)`);
    }
    if (!mentions(filter, '-A FORWARD', '-j CNI-FORWARD')) missing.push('the FORWARD jump to CNI-FORWARD (filter)');
  }
  if (mappings.length > 0) {
    for (const a of attachment.addresses.filter((x) => !x.includes(':'))) {
      if (!mentions(filter, 'CNI-ADMIN', `-d ${hostPart(a)}/32`, record.containerId)) missing.push(`dockcni's port-mapped rule for ${hostPart(a)} (filter)`);
    }
  }
  return missing;
}
