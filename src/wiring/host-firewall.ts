import ipaddr from 'ipaddr.js';
import { DockcniError } from '../errors.js';
import { runFile } from '../run-file.js';

/** Host rules that CNI plugins do not make but Docker hosts need; one set per container, like the plugins' own. */
export interface HostFirewall {
  /** Let forwarded traffic that portmap DNATed reach these addresses of the container. */
  allowPortMapped(containerId: string, addresses: readonly string[]): Promise<void>;
  /** Removes the container's rules; none there is not an error. */
  revokePortMapped(containerId: string): Promise<void>;
  /** Container ids that have rules, for gc. */
  containersWithRules(): Promise<string[]>;
  /**
   * Removes the nat chains the bridge (masquerade) and portmap plugins made for this container that are
   * still there after its last DEL, and returns their names. The bridge plugin finds what to remove from
   * the addresses on the container's interface at DEL time: a container that removed its own address
   * (it holds NET_ADMIN) leaves its masquerade chain behind forever.
   */
  removePluginChains(containerId: string): Promise<string[]>;
}

/** The nat chains of the bridge (ipMasq) and portmap plugins, each with the container id and network in its rules' comments. */
export async function pluginNatChains(): Promise<{ chain: string; containerId: string; network: string }[]> {
  const { exitCode, stdout, stderr } = await runFile('iptables-save', ['-t', 'nat']);
  if (exitCode !== 0) throw new DockcniError('firewall', `iptables-save -t nat failed: ${stderr.trim()}`, { fix: 'check that iptables works (`dockcni doctor`)' });
  const chains = new Map<string, { chain: string; containerId: string; network: string }>();
  for (const line of stdout.split('\n')) {
    const m = COMMENT_ID.exec(line);
    if (!m || !line.startsWith('-A ')) continue;
    const own = /^-A (CNI-[0-9a-f]{24}) /.exec(line)?.[1];
    const target = / -j (CNI-DN-[0-9a-f]+)/.exec(line)?.[1];
    const chain = own ?? target;
    if (chain) chains.set(chain, { chain, containerId: m[2] ?? '', network: m[1] ?? '' });
  }
  return [...chains.values()];
}

const COMMENT_ID = /--comment "(?:dnat )?name: \\"([^"\\]+)\\" id: \\"([^"\\]+)\\""/;

/** Removes a nat chain with every rule that jumps to it. */
export async function removeNatChain(chain: string): Promise<void> {
  const fail = (what: string, r: { stderr: string }) => new DockcniError('firewall', `cannot ${what}: ${r.stderr.trim()}`, { fix: 'check that iptables works (`dockcni doctor`)' });
  const saved = await runFile('iptables-save', ['-t', 'nat']);
  if (saved.exitCode !== 0) throw fail('read the nat table', saved);
  for (const line of saved.stdout.split('\n').filter((l) => l.startsWith('-A ') && l.endsWith(` -j ${chain}`))) {
    const from = line.split(' ')[1] ?? '';
    const listed = await runFile('iptables', ['-w', '-t', 'nat', '-S', from]);
    // Deleted by rule number: the rule text holds quoted comments that -D would need re-parsed.
    const index = listed.stdout.split('\n').filter((r) => r.startsWith('-A ')).findIndex((r) => r === line);
    if (index < 0) continue;
    const deleted = await runFile('iptables', ['-w', '-t', 'nat', '-D', from, String(index + 1)]);
    if (deleted.exitCode !== 0) throw fail(`delete the jump to ${chain} from ${from}`, deleted);
  }
  await runFile('iptables', ['-w', '-t', 'nat', '-F', chain]);
  const removed = await runFile('iptables', ['-w', '-t', 'nat', '-X', chain]);
  if (removed.exitCode !== 0) throw fail(`remove chain ${chain}`, removed);
}

const CHAIN = 'CNI-ADMIN';
const COMMENT = 'dockcni: port-mapped ';
/** The host-wide rule earlier versions added once and never removed: gc takes it away. */
export const LEGACY_COMMENT = 'dockcni: accept port-mapped traffic';

function rule(address: string, containerId: string): string[] {
  return ['-d', address, '-m', 'conntrack', '--ctstate', 'DNAT', '-m', 'comment', '--comment', `${COMMENT}${containerId}`, '-j', 'ACCEPT'];
}

const toolFor = (address: string) => (ipaddr.parse(address).kind() === 'ipv6' ? 'ip6tables' : 'iptables');

/**
 * Docker sets the FORWARD policy to DROP. The firewall plugin accepts traffic from containers and
 * replies to it, but not new connections that portmap DNATs to a container from another host. The
 * plugin's CNI-ADMIN chain is there for rules like these: one per container address, named after the
 * container, added after its ADD and removed before its DEL.
 */
export class IptablesHostFirewall implements HostFirewall {
  async allowPortMapped(containerId: string, addresses: readonly string[]): Promise<void> {
    for (const cidr of addresses) {
      const address = cidr.split('/')[0] ?? cidr;
      const tool = toolFor(address);
      await runFile(tool, ['-w', '-N', CHAIN]);
      const present = await runFile(tool, ['-w', '-C', CHAIN, ...rule(address, containerId)]);
      if (present.exitCode === 0) continue;
      const added = await runFile(tool, ['-w', '-A', CHAIN, ...rule(address, containerId)]);
      if (added.exitCode !== 0) {
        throw new DockcniError('firewall', `cannot add the port-mapping accept rule for ${address} to ${CHAIN}: ${added.stderr.trim()}`, { fix: 'check that iptables works (`dockcni doctor`)' });
      }
    }
  }

  async revokePortMapped(containerId: string): Promise<void> {
    for (const tool of ['iptables', 'ip6tables']) {
      for (const line of await this.rules(tool)) {
        if (!line.includes(`${COMMENT}${containerId}`)) continue;
        const address = / -d (\S+?)(?:\/\d+)? /.exec(line)?.[1];
        if (address === undefined) continue;
        const removed = await runFile(tool, ['-w', '-D', CHAIN, ...rule(address, containerId)]);
        if (removed.exitCode !== 0) throw new DockcniError('firewall', `cannot remove the port-mapping accept rule for ${address} from ${CHAIN}: ${removed.stderr.trim()}`, { fix: 'check that iptables works (`dockcni doctor`)' });
      }
    }
  }

  async containersWithRules(): Promise<string[]> {
    const lines = [...await this.rules('iptables'), ...await this.rules('ip6tables')];
    return [...new Set(lines.map((l) => new RegExp(`${COMMENT}([0-9a-f]{12,64})`).exec(l)?.[1]).filter((id): id is string => id !== undefined))];
  }

  async removePluginChains(containerId: string): Promise<string[]> {
    const left = (await pluginNatChains()).filter((c) => c.containerId === containerId);
    for (const c of left) await removeNatChain(c.chain);
    return left.map((c) => c.chain);
  }

  /** The chain's rules; none when the chain or the tool is missing. */
  private async rules(tool: string): Promise<string[]> {
    const r = await runFile(tool, ['-w', '-S', CHAIN]);
    return r.exitCode === 0 ? r.stdout.split('\n').filter((l) => l.startsWith(`-A ${CHAIN} `)) : [];
  }
}
