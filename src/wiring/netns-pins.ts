import { mkdir, open, stat } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { DockcniError } from '../errors.js';
import { readdirOrEmpty, removeIfExists } from '../fs-atomic.js';
import { CONTAINER_ID } from '../state/attachment.js';

/**
 * A container's netns kept alive, under dockcni's name, from before ADD until after DEL. DEL against a
 * netns that is already gone cannot find what to undo (the bridge plugin then leaks its masquerade
 * rules), and a /proc/<pid> path may point at another process after the pid is reused.
 */
export interface NetnsPins {
  readonly dir: string;
  pathFor(containerId: string): string;
  pin(containerId: string, pid: number): Promise<string>;
  /** Unmounts and removes; a pin already gone is not an error. */
  unpin(containerId: string): Promise<void>;
  /** Whether the pin exists and holds a namespace. */
  isPinned(containerId: string): Promise<boolean>;
  list(): Promise<string[]>;
}


/** Pins as `ip netns` does: a bind mount of /proc/<pid>/ns/net onto a file, via mount(8), no shell. */
export class BindMountPins implements NetnsPins {
  constructor(readonly dir: string) {}

  pathFor(containerId: string): string {
    if (!CONTAINER_ID.test(containerId)) throw new DockcniError('invalid-id', `refusing to pin netns for invalid container id ${JSON.stringify(containerId)}`);
    return path.join(this.dir, containerId);
  }

  async pin(containerId: string, pid: number): Promise<string> {
    if (!Number.isInteger(pid) || pid <= 0) {
      throw new DockcniError('no-pid', `container ${containerId.slice(0, 12)} has no process (pid ${pid}): it is not running, so it has no netns to wire`);
    }
    const target = this.pathFor(containerId);
    const source = `/proc/${pid}/ns/net`;
    const ns = await stat(source).catch((error: unknown) => {
      throw new DockcniError('no-netns', `cannot read ${source}: the container's process is gone`, { cause: error });
    });
    if (await this.isPinned(containerId)) {
      if ((await stat(target)).ino === ns.ino) return target;
      await this.unpin(containerId);
    }
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const handle = await open(target, 'a', 0o600);
    await handle.close();
    try {
      await execa('mount', ['--bind', source, target]);
    } catch (error) {
      await removeIfExists(target);
      throw new DockcniError('pin-failed', `cannot bind-mount ${source} onto ${target}: ${(error as Error).message}`, { cause: error });
    }
    return target;
  }

  async unpin(containerId: string): Promise<void> {
    const target = this.pathFor(containerId);
    if (await this.isPinned(containerId)) {
      await execa('umount', [target]);
    }
    await removeIfExists(target);
  }

  async isPinned(containerId: string): Promise<boolean> {
    const target = this.pathFor(containerId);
    const [file, dir] = await Promise.all([stat(target).catch(() => undefined), stat(this.dir).catch(() => undefined)]);
    // A bind-mounted netns lives on nsfs: its device differs from the directory's.
    return file !== undefined && dir !== undefined && file.dev !== dir.dev;
  }

  async list(): Promise<string[]> {
    return (await readdirOrEmpty(this.dir)).filter((n) => CONTAINER_ID.test(n));
  }
}
