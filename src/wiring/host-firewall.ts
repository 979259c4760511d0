import { execa } from 'execa';
import { DockcniError } from '../errors.js';

/** Host rules that CNI plugins do not make but Docker hosts need. */
export interface HostFirewall {
  /** Let forwarded traffic that portmap DNATed reach containers. */
  allowPortMapped(): Promise<void>;
}

const RULE = ['-m', 'conntrack', '--ctstate', 'DNAT', '-m', 'comment', '--comment', 'dockcni: accept port-mapped traffic', '-j', 'ACCEPT'];

/**
 * Docker sets the FORWARD policy to DROP. The firewall plugin accepts traffic from containers and
 * replies to it, but not new connections that portmap DNATs to a container from another host. The
 * plugin's CNI-ADMIN chain is there for rules like this one; it is added once, idempotently.
 */
export class IptablesHostFirewall implements HostFirewall {
  private done = false;

  async allowPortMapped(): Promise<void> {
    if (this.done) return;
    for (const tool of ['iptables', 'ip6tables']) {
      await execa(tool, ['-w', '-N', 'CNI-ADMIN'], { reject: false });
      const present = await execa(tool, ['-w', '-C', 'CNI-ADMIN', ...RULE], { reject: false });
      if (present.exitCode === 0) continue;
      const added = await execa(tool, ['-w', '-A', 'CNI-ADMIN', ...RULE], { reject: false });
      if (added.exitCode !== 0 && tool === 'iptables') {
        throw new DockcniError('firewall', `cannot add the port-mapping accept rule to CNI-ADMIN: ${added.stderr.trim()}`, { fix: 'check that iptables works (`dockcni doctor`)' });
      }
    }
    this.done = true;
  }
}
