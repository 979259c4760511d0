import { readFileSync, readlinkSync, statSync } from 'node:fs';
import path from 'node:path';
import ipaddr from 'ipaddr.js';
import { succeed, type HostCommands } from '../host-commands.js';
import type { HostView } from './health.js';

function tables(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('*')) out.set(line.slice(1), current = out.get(line.slice(1)) ?? []);
    else if (line.startsWith('-A ') && current) current.push(line);
  }
  return out;
}

const readOrUndefined = (file: string) => {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
};

/** The host as Linux shows it: iptables-save once per round, /sys for host links, /proc/<pid>/net for a container's netns. */
export class LinuxHostView implements HostView {
  private readonly saved = new Map<boolean, Promise<Map<string, string[]>>>();

  constructor(private readonly commands: HostCommands) {}

  rules(ipv6: boolean): Promise<ReadonlyMap<string, readonly string[]>> {
    let saved = this.saved.get(ipv6);
    if (saved === undefined) {
      saved = (async () => {
        const v4 = tables((await succeed(this.commands, 'iptables-save', [])).stdout);
        if (!ipv6) return v4;
        const v6 = tables((await succeed(this.commands, 'ip6tables-save', [])).stdout);
        for (const [table, lines] of v6) v4.set(table, [...v4.get(table) ?? [], ...lines]);
        return v4;
      })();
      this.saved.set(ipv6, saved);
    }
    return saved;
  }

  hostLink(name: string): { master?: string | undefined } | undefined {
    const dir = path.join('/sys/class/net', name);
    if (!/^[^/\0]{1,15}$/.test(name) || statSync(dir, { throwIfNoEntry: false }) === undefined) return undefined;
    try {
      return { master: path.basename(readlinkSync(path.join(dir, 'master'))) };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {};
      throw error;
    }
  }

  netnsOf(pid: number): { links: ReadonlySet<string>; addresses: ReadonlySet<string> } | undefined {
    const dev = readOrUndefined(`/proc/${pid}/net/dev`);
    if (dev === undefined) return undefined;
    const links = new Set(dev.split('\n').slice(2).map((l) => l.split(':')[0]?.trim() ?? '').filter((n) => n !== ''));
    const addresses = new Set<string>();
    // IPv4: fib_trie lists each local address as "|-- ADDR" followed by "/32 host LOCAL".
    const trie = (readOrUndefined(`/proc/${pid}/net/fib_trie`) ?? '').split('\n');
    trie.forEach((line, i) => {
      const m = /\|-- (\d+\.\d+\.\d+\.\d+)$/.exec(line);
      if (m && /\/32 host LOCAL/.test(trie[i + 1] ?? '')) addresses.add(m[1]!);
    });
    for (const line of (readOrUndefined(`/proc/${pid}/net/if_inet6`) ?? '').split('\n')) {
      const hex = line.split(/\s+/)[0] ?? '';
      if (/^[0-9a-f]{32}$/.test(hex)) addresses.add(ipaddr.parse(hex.match(/.{4}/g)!.join(':')).toString());
    }
    return { links, addresses };
  }
}
