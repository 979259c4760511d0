import ipaddr from 'ipaddr.js';
import { DockcniError } from '../errors.js';
import { succeed, type HostCommands } from '../host-commands.js';

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
  /** The nat chains of the bridge (ipMasq) and portmap plugins, each with the container id and network in its rules' comments. */
  pluginChains(): Promise<PluginChain[]>;
  /** Removes a nat chain with every rule that jumps to it. */
  removeChain(chain: string): Promise<void>;
}

export interface PluginChain {
  readonly chain: string;
  readonly containerId: string;
  readonly network: string;
}

const COMMENT_ID = /--comment "(?:dnat )?name: \\"([^"\\]+)\\" id: \\"([^"\\]+)\\""/;
const FIX = 'check that iptables works (`dockcni doctor`)';

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
  constructor(private readonly commands: HostCommands) {}

  async allowPortMapped(containerId: string, addresses: readonly string[]): Promise<void> {
    for (const cidr of addresses) {
      const address = cidr.split('/')[0] ?? cidr;
      const tool = toolFor(address);
      await this.commands.run(tool, ['-w', '-N', CHAIN]);
      const present = await this.commands.run(tool, ['-w', '-C', CHAIN, ...rule(address, containerId)]);
      if (present.exitCode === 0) continue;
      const added = await this.commands.run(tool, ['-w', '-A', CHAIN, ...rule(address, containerId)]);
      if (added.exitCode !== 0) {
        throw new DockcniError('firewall', `cannot add the port-mapping accept rule for ${address} to ${CHAIN}: ${added.stderr.trim()}`, { fix: FIX });
      }
    }
  }

  async revokePortMapped(containerId: string): Promise<void> {
    for (const tool of ['iptables', 'ip6tables']) {
      for (const line of await this.rules(tool)) {
        if (!line.includes(`${COMMENT}${containerId}`)) continue;
        const address = / -d (\S+?)(?:\/\d+)? /.exec(line)?.[1];
        if (address === undefined) continue;
        const removed = await this.commands.run(tool, ['-w', '-D', CHAIN, ...rule(address, containerId)]);
        if (removed.exitCode !== 0) throw new DockcniError('firewall', `cannot remove the port-mapping accept rule for ${address} from ${CHAIN}: ${removed.stderr.trim()}`, { fix: FIX });
      }
    }
  }

  async containersWithRules(): Promise<string[]> {
    const lines = [...await this.rules('iptables'), ...await this.rules('ip6tables')];
    return [...new Set(lines.map((l) => new RegExp(`${COMMENT}([0-9a-f]{12,64})`).exec(l)?.[1]).filter((id): id is string => id !== undefined))];
  }

  async removePluginChains(containerId: string): Promise<string[]> {
    const left = (await this.pluginChains()).filter((c) => c.containerId === containerId);
    for (const c of left) await this.removeChain(c.chain);
    return left.map((c) => c.chain);
  }

  async pluginChains(): Promise<PluginChain[]> {
    const chains = new Map<string, PluginChain>();
    for (const line of await this.natRules()) {
      const m = COMMENT_ID.exec(line);
      if (!m) continue;
      const own = /^-A (CNI-[0-9a-f]{24}) /.exec(line)?.[1];
      const target = / -j (CNI-DN-[0-9a-f]+)/.exec(line)?.[1];
      const chain = own ?? target;
      if (chain) chains.set(chain, { chain, containerId: m[2] ?? '', network: m[1] ?? '' });
    }
    return [...chains.values()];
  }

  async removeChain(chain: string): Promise<void> {
    for (const line of (await this.natRules()).filter((l) => l.endsWith(` -j ${chain}`))) {
      const from = line.split(' ')[1] ?? '';
      const listed = await this.commands.run('iptables', ['-w', '-t', 'nat', '-S', from]);
      // Deleted by rule number: the rule text holds quoted comments that -D would need re-parsed.
      const index = listed.stdout.split('\n').filter((r) => r.startsWith('-A ')).findIndex((r) => r === line);
      if (index < 0) continue;
      await succeed(this.commands, 'iptables', ['-w', '-t', 'nat', '-D', from, String(index + 1)], { fix: FIX });
    }
    await this.commands.run('iptables', ['-w', '-t', 'nat', '-F', chain]);
    await succeed(this.commands, 'iptables', ['-w', '-t', 'nat', '-X', chain], { fix: FIX });
  }

  /** The nat table's rules. */
  private async natRules(): Promise<string[]> {
    const saved = await succeed(this.commands, 'iptables-save', ['-t', 'nat'], { fix: FIX });
    return saved.stdout.split('\n').filter((l) => l.startsWith('-A '));
  }

  /** The chain's rules; none when the chain or the tool is missing. */
  private async rules(tool: string): Promise<string[]> {
    const r = await this.commands.run(tool, ['-w', '-S', CHAIN]);
    return r.exitCode === 0 ? r.stdout.split('\n').filter((l) => l.startsWith(`-A ${CHAIN} `)) : [];
  }
}
