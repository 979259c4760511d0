import type { Locks } from '../cni/lock.js';
import { DockcniError } from '../errors.js';
import type { AttachmentStore } from '../state/attachment-store.js';
import { underContainerLock } from './container-lock.js';

/**
 * Which app joined which `run` sandbox, in the sandbox's own record: written by `run` once Docker has
 * created the app, read by the daemon and gc before they remove a sandbox. A label never decides it.
 */
export class Sandboxes {
  constructor(private readonly store: Pick<AttachmentStore, 'read' | 'write'>, private readonly locks: Pick<Locks, 'mutex'>) {}

  /** `run` names the app that joined a sandbox. */
  async recordApp(sandboxId: string, appId: string): Promise<void> {
    await underContainerLock(this.locks, sandboxId, async () => {
      const record = await this.store.read(sandboxId);
      if (record === undefined || record.origin !== 'run') throw new DockcniError('not-a-sandbox', `container ${sandboxId.slice(0, 12)} is not a sandbox dockcni run wired`);
      record.app = appId;
      await this.store.write(record);
    });
  }

  /** Whether `run` recorded this app as the one that joined this sandbox. */
  async isSandboxOf(sandboxId: string, appId: string): Promise<boolean> {
    const record = await this.store.read(sandboxId);
    return record?.origin === 'run' && record.app === appId;
  }
}
