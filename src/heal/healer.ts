import type { Cni } from '../cni/cni.js';
import type { AttachmentStore } from '../state/attachment-store.js';
import { describeFailure, holdsNetns, repairFailed, type AttachmentRecord, type NetworkAttachment } from '../state/attachment.js';
import type { Wirer } from '../wiring/wirer.js';
import { missingParts, type HostView } from './health.js';
import { LinuxHostView } from './host-view.js';
import type { HostCommands } from '../host-commands.js';

/** An attachment that is not whole, and what it lacks. */
export interface Broken {
  readonly containerId: string;
  readonly name: string;
  readonly network: string;
  readonly ifName: string;
  readonly missing: readonly string[];
}

export interface HealerOptions {
  readonly cni: Pick<Cni, 'cachedAttachment'>;
  readonly store: Pick<AttachmentStore, 'list' | 'read'>;
  readonly wirer: Pick<Wirer, 'repair'>;
  /** A fresh view of the host for each round (one iptables-save per round). */
  readonly view: () => HostView;
}

/**
 * Self-healing: finds the attachments dockcni owns that lost part of their state to someone else (a
 * flushed chain, a deleted bridge or veth), and rebuilds exactly those. Used by the daemon's check loop
 * and by `dockcni reload`.
 */
export class Healer {
  constructor(private readonly o: HealerOptions) {}

  private async missing(record: AttachmentRecord, attachment: NetworkAttachment, view: HostView): Promise<string[]> {
    if (repairFailed(attachment)) return [describeFailure(attachment.failure!)];
    if (attachment.state !== 'wired') return [];
    return missingParts(record, attachment, await this.o.cni.cachedAttachment(attachment.network, record.containerId, attachment.ifName), view);
  }

  /** Every broken attachment, of the containers named (all when none are). */
  async findBroken(only?: ReadonlySet<string>): Promise<Broken[]> {
    const view = this.o.view();
    const broken: Broken[] = [];
    for (const record of await this.o.store.list()) {
      if (!holdsNetns(record) || (only !== undefined && !only.has(record.containerId))) continue;
      for (const a of record.networks) {
        const missing = await this.missing(record, a, view);
        if (missing.length > 0) broken.push({ containerId: record.containerId, name: record.name, network: a.network, ifName: a.ifName, missing });
      }
    }
    return broken;
  }

  /** Rebuilds it, if it is still broken once its container's lock is held; false when there was nothing left to do. */
  async repair(b: Broken): Promise<boolean> {
    const stillBroken = async () => {
      const record = await this.o.store.read(b.containerId);
      const a = record?.networks.find((n) => n.network === b.network);
      return record !== undefined && a !== undefined && (await this.missing(record, a, this.o.view())).length > 0;
    };
    return (await this.o.wirer.repair(b.containerId, b.network, stillBroken)) !== undefined;
  }
}

/** The healer with its real view of the host (iptables-save, /sys, /proc): for entry points. */
export function createHealer(parts: { readonly engine: HealerOptions['cni']; readonly store: HealerOptions['store']; readonly wirer: HealerOptions['wirer']; readonly commands: HostCommands }): Healer {
  return new Healer({ cni: parts.engine, store: parts.store, wirer: parts.wirer, view: () => new LinuxHostView(parts.commands) });
}
