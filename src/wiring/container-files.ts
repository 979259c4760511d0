import { writeFile } from 'node:fs/promises';
import { readTextIfExists } from '../fs-atomic.js';
import type { CniDns } from '../cni/types.js';

const MARK = '# dockcni';

/**
 * The container's /etc/hosts and resolv.conf, as Docker keeps them on the host. Written in place, not
 * renamed: the container sees them through bind mounts of these very inodes.
 */
export async function writeHosts(hostsPath: string, names: readonly string[], addresses: readonly string[]): Promise<void> {
  if (hostsPath === '' || addresses.length === 0) return;
  // A container removed while it was being wired has no hosts file left, and nothing to write.
  const current = await readTextIfExists(hostsPath);
  if (current === undefined) return;
  const kept = current.split('\n').filter((line) => !line.endsWith(MARK) && line !== '');
  const unique = [...new Set(names.filter((n) => n !== ''))].join(' ');
  const added = addresses.map((a) => `${a}\t${unique}\t${MARK}`);
  await writeFile(hostsPath, `${[...kept, ...added].join('\n')}\n`);
}

export async function writeResolvConf(resolvPath: string, dns: CniDns): Promise<void> {
  if (resolvPath === '' || (dns.nameservers ?? []).length === 0 || (await readTextIfExists(resolvPath)) === undefined) return;
  const lines = [`${MARK}: from the CNI result`, ...(dns.nameservers ?? []).map((n) => `nameserver ${n}`)];
  const search = [...(dns.domain ? [dns.domain] : []), ...(dns.search ?? [])];
  if (search.length > 0) lines.push(`search ${search.join(' ')}`);
  if ((dns.options ?? []).length > 0) lines.push(`options ${(dns.options ?? []).join(' ')}`);
  await writeFile(resolvPath, `${lines.join('\n')}\n`);
}
