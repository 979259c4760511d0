import { readdirSync, readlinkSync } from 'node:fs';
import ipaddr from 'ipaddr.js';
import { readTextIfExistsSync } from '../fs-atomic.js';
import type { PortMapping } from '../cni/types.js';

/** A socket of the host listening on (TCP) or bound to (UDP) a port. */
export interface HostSocket {
  readonly protocol: 'tcp' | 'udp';
  readonly address: string;
  readonly port: number;
  readonly inode: string;
}

const TABLES = [['tcp', 'tcp', '0A'], ['tcp6', 'tcp', '0A'], ['udp', 'udp', '07'], ['udp6', 'udp', '07']] as const;

/** /proc/net's hex address: IPv4 as one little-endian word, IPv6 as four of them. */
function decodeAddress(hex: string): string {
  const words = hex.match(/.{8}/g) ?? [];
  const bytes = words.flatMap((w) => (w.match(/../g) ?? []).reverse().map((b) => parseInt(b, 16)));
  return ipaddr.fromByteArray(bytes).toString();
}

/** Listening TCP and bound UDP sockets of this process's netns (the host's, for dockcni). */
export function hostSockets(): HostSocket[] {
  const sockets: HostSocket[] = [];
  for (const [file, protocol, state] of TABLES) {
    const text = readTextIfExistsSync(`/proc/net/${file}`) ?? '';
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols[3] !== state) continue;
      const [addr = '', port = '0'] = (cols[1] ?? '').split(':');
      sockets.push({ protocol, address: decodeAddress(addr), port: parseInt(port, 16), inode: cols[9] ?? '' });
    }
  }
  return sockets;
}

const unspecified = (address: string | undefined) => address === undefined || address === '' || ipaddr.parse(address).range() === 'unspecified';

/**
 * Whether traffic for one would reach the other: same protocol and port, and one of them on every
 * address or both on the same one (portmap's DNAT matches every local address when no host IP is given).
 */
export function overlaps(a: { protocol: string; port: number; address?: string | undefined }, b: { protocol: string; port: number; address?: string | undefined }): boolean {
  if (a.protocol !== b.protocol || a.port !== b.port) return false;
  if (unspecified(a.address) || unspecified(b.address)) return true;
  return ipaddr.process(a.address ?? '').toString() === ipaddr.process(b.address ?? '').toString();
}

export const asTarget = (m: PortMapping) => ({ protocol: m.protocol, port: m.hostPort, address: m.hostIP });

/** "pid 1234 (sshd)" for the process holding a socket inode, found through /proc/<pid>/fd. */
export function socketHolder(inode: string): string | undefined {
  const link = `socket:[${inode}]`;
  for (const pid of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue; // exited meanwhile, or not ours to read
    }
    for (const fd of fds) {
      let target: string;
      try {
        target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        continue; // closed meanwhile
      }
      if (target === link) {
        const comm = readTextIfExistsSync(`/proc/${pid}/comm`)?.trim();
        return `pid ${pid}${comm ? ` (${comm})` : ''}`;
      }
    }
  }
  return undefined;
}

/** The host process listening where a mapping would take traffic, described; undefined when none. */
export function hostListener(mapping: PortMapping, sockets: readonly HostSocket[] = hostSockets()): string | undefined {
  if (mapping.protocol === 'sctp') return undefined;
  const socket = sockets.find((s) => overlaps(asTarget(mapping), s));
  if (socket === undefined) return undefined;
  const holder = socketHolder(socket.inode);
  return `${holder ?? 'a host process'} on ${socket.address.includes(':') ? `[${socket.address}]` : socket.address}:${socket.port}/${socket.protocol}`;
}
