import { readFileSync, statSync, type Stats } from 'node:fs';
import { DockcniError } from '../errors.js';
import type { HostCommands } from '../host-commands.js';
import type { RuntimeConf } from './types.js';

/**
 * What the engine checks about the target netns before a plugin runs. The bridge plugin's DEL deletes
 * CNI_IFNAME in CNI_NETNS whoever made it, so an ADD into a netns that already has that link, or any
 * operation in the host's own netns, would take down links dockcni never created.
 */
export interface NetnsGuard {
  /** Throws when no plugin may run there for this command. */
  check(command: 'ADD' | 'CHECK' | 'DEL', rt: RuntimeConf): Promise<void>;
}

/** Link names of a /proc/<pid>/net/dev table. */
export function parseNetDev(text: string): string[] {
  return text.split('\n').slice(2).map((line) => line.split(':')[0]?.trim() ?? '').filter((name) => name !== '');
}

function statReadable(file: string): Stats | undefined {
  try {
    return statSync(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EACCES') return undefined;
    throw error;
  }
}

const sameNs = (a: Stats | undefined, b: Stats | undefined) => a !== undefined && b !== undefined && a.dev === b.dev && a.ino === b.ino;

/**
 * Compares namespaces by their nsfs identity (device and inode). The links of the target are read from
 * /proc/<pid>/net/dev when the caller names a process verified to live there (no process to start),
 * otherwise from inside the netns through nsenter(1).
 */
export class ProcNetnsGuard implements NetnsGuard {
  constructor(private readonly commands: HostCommands) {}

  async check(command: 'ADD' | 'CHECK' | 'DEL', rt: RuntimeConf): Promise<void> {
    // DEL of a netns that is gone: plugins clean up what they can on the host side.
    if (rt.netns === '') return;
    const target = statSync(rt.netns, { throwIfNoEntry: false });
    if (target === undefined) {
      if (command === 'ADD') throw new DockcniError('netns-missing', `network namespace ${rt.netns} does not exist`, { fix: 'pass the path of a live netns (a pinned one, or /proc/<pid>/ns/net)' });
      return;
    }
    // dockcni's own netns is where plugins put the host side of each link; init's is the host's when
    // dockcni runs elsewhere (a sidecar). Init's may be unreadable (a sandbox that hides pid 1): then
    // dockcni's own is the one compared.
    for (const own of ['/proc/self/ns/net', '/proc/1/ns/net']) {
      if (sameNs(target, statReadable(own))) {
        throw new DockcniError('host-netns', `refusing ${command} in ${rt.netns}: it is the host's own network namespace`, {
          fix: 'CNI plugins wire a container\'s netns; give the container its own (docker run --network none)',
        });
      }
    }
    if (command !== 'ADD') return;
    const links = await this.links(rt.netns, target, rt.netnsPid);
    if (links.includes(rt.ifName)) {
      throw new DockcniError('interface-exists', `interface ${rt.ifName} already exists in ${rt.netns}`, {
        fix: 'pick another interface name, or remove the attachment that created it; dockcni never replaces a link it did not create',
      });
    }
  }

  private async links(netns: string, target: Stats, pid: number | undefined): Promise<string[]> {
    if (pid !== undefined && sameNs(target, statSync(`/proc/${pid}/ns/net`, { throwIfNoEntry: false }))) {
      return parseNetDev(readFileSync(`/proc/${pid}/net/dev`, 'utf8'));
    }
    const listed = await this.commands.run('nsenter', [`--net=${netns}`, 'cat', '/proc/self/net/dev']);
    if (listed.exitCode !== 0) {
      throw new DockcniError('netns-unreadable', `cannot list the links in ${netns}: nsenter failed (exit ${listed.exitCode}): ${listed.stderr.trim()}`, { fix: 'check that nsenter (util-linux) is installed and that dockcni runs as root' });
    }
    return parseNetDev(listed.stdout);
  }
}
