import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, unlinkSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';

/**
 * Write, then rename (by default 0600 in a 0700 dir: results name containers, addresses and netns paths): a reader sees the old file or the new one, never half of one. Mode 0600. No fsync,
 * as libcni writes its cache: it guards only against power loss, after which every netns is gone and
 * reconcile/gc work from whatever survived, and on a real disk it would add milliseconds to each wiring.
 */
export async function writeFileAtomic(file: string, data: string | Buffer, modes: { file: number; dir: number } = { file: 0o600, dir: 0o700 }): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true, mode: modes.dir });
  const tmp = `${file}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  await writeFile(tmp, data, { flag: 'wx', mode: modes.file });
  try {
    await rename(tmp, file);
  } catch (error) {
    await unlink(tmp).catch(() => undefined);
    throw error;
  }
}

/** unlink that treats "already gone" as done: removal is idempotent everywhere in dockcni. */
export async function removeIfExists(file: string): Promise<boolean> {
  try {
    await unlink(file);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

/** For tiny files on tmpfs, where a synchronous call is cheaper than a trip through the thread pool. */
export function removeIfExistsSync(file: string): void {
  try {
    unlinkSync(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}

/** A directory's entries; a directory that does not exist yet is empty. */
export async function readdirOrEmpty(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
}

export function readdirOrEmptySync(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
}

/** A file's text, or undefined when it does not exist. */
export async function readTextIfExists(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

export function readTextIfExistsSync(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/** Temp files of atomic writes whose writer died (SIGKILL between write and rename). */
export async function staleTempFiles(dir: string): Promise<string[]> {
  const stale: string[] = [];
  for (const name of await readdirOrEmpty(dir)) {
    const pid = /\.tmp-(\d+)-[0-9a-f]+$/.exec(name)?.[1];
    if (pid === undefined) continue;
    const alive = await readTextIfExists(`/proc/${pid}/stat`).then((t) => t !== undefined, () => true);
    if (!alive) stale.push(path.join(dir, name));
  }
  return stale;
}
