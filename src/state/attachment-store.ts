import path from 'node:path';
import { readdirOrEmpty, readTextIfExists, removeIfExists, writeFileAtomic } from '../fs-atomic.js';
import { CONTAINER_ID, type AttachmentRecord } from './attachment.js';


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

  async read(containerId: string): Promise<AttachmentRecord | undefined> {
    const text = await readTextIfExists(this.file(containerId));
    return text === undefined ? undefined : JSON.parse(text) as AttachmentRecord;
  }

  async write(record: AttachmentRecord): Promise<void> {
    record.updatedAt = new Date().toISOString();
    await writeFileAtomic(this.file(record.containerId), `${JSON.stringify(record, null, 2)}\n`);
  }

  async remove(containerId: string): Promise<void> {
    await removeIfExists(this.file(containerId));
  }

  async list(): Promise<AttachmentRecord[]> {
    const ids = (await readdirOrEmpty(this.dir)).filter((n) => n.endsWith('.json')).map((n) => n.slice(0, -5)).filter((id) => CONTAINER_ID.test(id));
    const records = await Promise.all(ids.map((id) => this.read(id)));
    return records.filter((r): r is AttachmentRecord => r !== undefined);
  }
}
