import { closeSync, mkdirSync, openSync, statSync } from 'node:fs';
import path from 'node:path';
import { DockcniError, InvalidInputError } from '../errors.js';
import { succeed, type HostCommands } from '../host-commands.js';
import { readdirOrEmpty, readTextIfExistsSync, removeIfExistsSync } from '../fs-atomic.js';
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
  isPinned(containerId: string): boolean;
  /** Whether `pid` is still a process of that container (not exited, not reused by another). */
  isLive(containerId: string, pid: number): boolean;
  list(): Promise<string[]>;
}


/** Pins as `ip netns` does: a bind mount of /proc/<pid>/ns/net onto a file, via mount(8), no shell. */
export class BindMountPins implements NetnsPins {
  constructor(readonly dir: string, private readonly commands: HostCommands) {}

  pathFor(containerId: string): string {
    if (!CONTAINER_ID.test(containerId)) throw new InvalidInputError('container id', containerId, 'not a Docker container id (12-64 hex digits)');
    return path.join(this.dir, containerId);
  }

  async pin(containerId: string, pid: number): Promise<string> {
    if (!Number.isInteger(pid) || pid <= 0) {
      throw new DockcniError('no-pid', `container ${containerId.slice(0, 12)} has no process (pid ${pid}): it is not running, so it has no netns to wire`);
    }
    const target = this.pathFor(containerId);
    const source = `/proc/${pid}/ns/net`;
    let ns: number;
    try {
      ns = statSync(source).ino;
    } catch (error) {
      throw new DockcniError('no-netns', `cannot read ${source}: the container's process is gone`, { cause: error });
    }
    const pinnedIno = this.pinnedIno(target);
    if (pinnedIno !== undefined && pinnedIno !== ns) await this.unpin(containerId);
    if (pinnedIno !== ns) {
      mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      closeSync(openSync(target, 'a', 0o600));
      const mounted = await this.commands.run('mount', ['--bind', source, target]);
      if (mounted.exitCode !== 0) {
        removeIfExistsSync(target);
        throw new DockcniError('pin-failed', `cannot bind-mount ${source} onto ${target}: ${mounted.stderr.trim()}`);
      }
    }
    // The pid may be minutes old (read by reconcile) and now another process's: what is pinned must be
    // the netns of a process in the container's own cgroup, and still that process's netns.
    if (!this.isLive(containerId, pid) || this.pinnedIno(target) !== statSync(source, { throwIfNoEntry: false })?.ino) {
      await this.unpin(containerId);
      throw new DockcniError('pid-reused', `process ${pid} is no longer container ${containerId.slice(0, 12)}'s: refusing to wire its netns`, {
        fix: 'the container stopped or restarted meanwhile; its next start event wires it',
      });
    }
    return target;
  }

  async unpin(containerId: string): Promise<void> {
    const target = this.pathFor(containerId);
    if (this.pinnedIno(target) !== undefined) {
      await succeed(this.commands, 'umount', [target]);
    }
    removeIfExistsSync(target);
  }

  isLive(containerId: string, pid: number): boolean {
    return pid > 0 && (readTextIfExistsSync(`/proc/${pid}/cgroup`) ?? '').includes(containerId);
  }

  isPinned(containerId: string): boolean {
    return this.pinnedIno(this.pathFor(containerId)) !== undefined;
  }

  /**
   * The inode of the namespace pinned there, or undefined when nothing is. Synchronous like FileLocks:
   * two stats on tmpfs, on every container's way to its first plugin.
   */
  private pinnedIno(target: string): number | undefined {
    const file = statSync(target, { throwIfNoEntry: false });
    const dir = statSync(this.dir, { throwIfNoEntry: false });
    // A bind-mounted netns lives on nsfs: its device differs from the directory's.
    return file !== undefined && dir !== undefined && file.dev !== dir.dev ? file.ino : undefined;
  }

  async list(): Promise<string[]> {
    return (await readdirOrEmpty(this.dir)).filter((n) => CONTAINER_ID.test(n));
  }
}
