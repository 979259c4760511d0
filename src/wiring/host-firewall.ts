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

  /** The chain's rules; none when the chain or the tool is missing. */
  private async rules(tool: string): Promise<string[]> {
    const r = await runFile(tool, ['-w', '-S', CHAIN]);
    return r.exitCode === 0 ? r.stdout.split('\n').filter((l) => l.startsWith(`-A ${CHAIN} `)) : [];
  }
}
