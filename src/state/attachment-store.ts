import path from 'node:path';
import { readdirOrEmpty, readTextIfExists, removeIfExists, writeFileAtomic } from '../fs-atomic.js';
import { CONTAINER_ID, type AttachmentRecord } from './attachment.js';

function parseRecord(text: string): AttachmentRecord | undefined {
  try {
    const value = JSON.parse(text) as Partial<AttachmentRecord> | null;
    const valid = typeof value === 'object' && value !== null && typeof value.containerId === 'string' && typeof value.netns === 'string' && Array.isArray(value.networks);
    return valid ? value as AttachmentRecord : undefined;
  } catch (error) {
    if (error instanceof SyntaxError) return undefined;
    throw error;
  }
}

/** Owns `<stateDir>/attachments/<container-id>.json`; callers hold the container's lock. */
export class AttachmentStore {
  readonly dir: string;

  constructor(stateDir: string) {
    this.dir = path.join(stateDir, 'attachments');
  }

  private file(containerId: string): string {
    if (!CONTAINER_ID.test(containerId)) throw new Error(`invalid container id ${JSON.stringify(containerId)}`);
    return path.join(this.dir, `${containerId}.json`);
  }

  /**
   * undefined when there is none, or when the file is not a record (truncated by a full disk, edited by
   * hand): one bad file must not stop wiring or reconcile. `unreadable()` lists those for gc.
   */
  async read(containerId: string): Promise<AttachmentRecord | undefined> {
    const text = await readTextIfExists(this.file(containerId));
    return text === undefined ? undefined : parseRecord(text);
  }

  /** Record files that cannot be parsed, by container id. */
  async unreadable(): Promise<string[]> {
    const found: string[] = [];
    for (const id of await this.ids()) {
      const text = await readTextIfExists(this.file(id));
      if (text !== undefined && parseRecord(text) === undefined) found.push(id);
    }
    return found;
  }

  pathFor(containerId: string): string {
    return this.file(containerId);
  }

  async write(record: AttachmentRecord): Promise<void> {
    record.updatedAt = new Date().toISOString();
    await writeFileAtomic(this.file(record.containerId), `${JSON.stringify(record, null, 2)}\n`);
  }

  async remove(containerId: string): Promise<void> {
    await removeIfExists(this.file(containerId));
  }

  async list(): Promise<AttachmentRecord[]> {
    const records = await Promise.all((await this.ids()).map((id) => this.read(id)));
    return records.filter((r): r is AttachmentRecord => r !== undefined);
  }

  private async ids(): Promise<string[]> {
    return (await readdirOrEmpty(this.dir)).filter((n) => n.endsWith('.json')).map((n) => n.slice(0, -5)).filter((id) => CONTAINER_ID.test(id));
  }
}
