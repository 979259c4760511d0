import path from 'node:path';
import { InvalidInputError } from '../errors.js';
import { readdirOrEmptySync, readTextIfExists, readTextIfExistsSync, removeIfExists, writeFileAtomic } from '../fs-atomic.js';
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

  pathFor(containerId: string): string {
    if (!CONTAINER_ID.test(containerId)) throw new InvalidInputError('container id', containerId, 'not a Docker container id (12-64 hex digits)');
    return path.join(this.dir, `${containerId}.json`);
  }

  /**
   * undefined when there is none, or when the file is not a record (truncated by a full disk, edited by
   * hand): one bad file must not stop wiring or reconcile. `scan()` lists those for gc.
   */
  async read(containerId: string): Promise<AttachmentRecord | undefined> {
    const text = await readTextIfExists(this.pathFor(containerId));
    return text === undefined ? undefined : parseRecord(text);
  }

  async write(record: AttachmentRecord): Promise<void> {
    record.updatedAt = new Date().toISOString();
    await writeFileAtomic(this.pathFor(record.containerId), `${JSON.stringify(record, null, 2)}\n`);
  }

  async remove(containerId: string): Promise<void> {
    await removeIfExists(this.pathFor(containerId));
  }

  async list(): Promise<AttachmentRecord[]> {
    return (await this.scan()).records;
  }

  /**
   * Every record, and the ids of record files that cannot be parsed, in one read of each file. Read
   * synchronously: small files from the page cache, read on every container start (port, address and
   * name checks), where a thread-pool round trip per file costs more than the read (`npm run bench`).
   */
  async scan(): Promise<{ records: AttachmentRecord[]; unreadable: string[] }> {
    const ids = readdirOrEmptySync(this.dir).filter((n) => n.endsWith('.json')).map((n) => n.slice(0, -5)).filter((id) => CONTAINER_ID.test(id));
    const texts = ids.map((id) => readTextIfExistsSync(this.pathFor(id)));
    const records: AttachmentRecord[] = [];
    const unreadable: string[] = [];
    texts.forEach((text, i) => {
      if (text === undefined) return;
      const record = parseRecord(text);
      if (record) records.push(record);
      else unreadable.push(ids[i]!);
    });
    return { records, unreadable };
  }
}
