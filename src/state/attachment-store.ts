import { appendFileSync, mkdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { InvalidInputError } from '../errors.js';
import { readdirOrEmptySync, readTextIfExists, readTextIfExistsSync, removeIfExists, writeFileAtomic } from '../fs-atomic.js';
import { CONTAINER_ID, fromDisk, type AttachmentRecord } from './attachment.js';

function parseRecord(text: string): AttachmentRecord | undefined {
  try {
    const value = JSON.parse(text) as Partial<AttachmentRecord> | null;
    const valid = typeof value === 'object' && value !== null && typeof value.containerId === 'string' && typeof value.netns === 'string' && Array.isArray(value.networks);
    return valid ? fromDisk(value as AttachmentRecord) : undefined;
  } catch (error) {
    if (error instanceof SyntaxError) return undefined;
    throw error;
  }
}

/** How many container ids the ledger keeps; past it, the oldest are forgotten (their leftovers are then left alone). */
const LEDGER_MAX = 10_000;

/**
 * Owns `<stateDir>/attachments/<container-id>.json` (callers hold the container's lock), and the
 * ledger `<stateDir>/wired-ids`: every container id dockcni ever began to wire. A reservation or an
 * iptables chain of a container no runtime knows is dockcni's to remove only if its id is there: on
 * a host shared with other runtimes, whose caches live elsewhere, everything else is theirs.
 */
export class AttachmentStore {
  readonly dir: string;
  private readonly ledger: string;

  constructor(stateDir: string) {
    this.dir = path.join(stateDir, 'attachments');
    this.ledger = path.join(stateDir, 'wired-ids');
  }

  /** Notes an id in the ledger, before any plugin runs for it; the oldest ids go past LEDGER_MAX. */
  async remember(containerId: string): Promise<void> {
    this.pathFor(containerId);
    mkdirSync(path.dirname(this.ledger), { recursive: true, mode: 0o700 });
    appendFileSync(this.ledger, `${containerId}\n`, { mode: 0o600 });
    if (statSync(this.ledger).size > LEDGER_MAX * 66) {
      const ids = (readTextIfExistsSync(this.ledger) ?? '').split('\n').filter((l) => CONTAINER_ID.test(l));
      await writeFileAtomic(this.ledger, `${[...new Set(ids)].slice(-LEDGER_MAX / 2).join('\n')}\n`);
    }
  }

  /** The ids in the ledger. */
  remembered(): Set<string> {
    return new Set((readTextIfExistsSync(this.ledger) ?? '').split('\n').filter((l) => CONTAINER_ID.test(l)));
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
