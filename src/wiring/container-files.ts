import { closeSync, constants, fstatSync, ftruncateSync, openSync, readSync, writeSync } from 'node:fs';
import path from 'node:path';
import ipaddr from 'ipaddr.js';
import type { CniDns } from '../cni/types.js';
import { DockcniError, InvalidInputError } from '../errors.js';
import { MAX_HOSTS_LINE_BYTES, unpublishable } from './host-names.js';

/** Ends every line dockcni writes into a container's files; bin/dockcni-runtime looks for it too. */
export const MARK = '# dockcni';
/** Far above any real hosts or resolv.conf; a container that grows its file past it is not read. */
export const MAX_CONTAINER_FILE_BYTES = 256 * 1024;

/**
 * Docker keeps them at `<docker root>/containers/<id>/{hosts,resolv.conf}`. Anything else is not a file
 * dockcni may write for that container.
 */
export function checkContainerFilePath(file: string, containerId: string): void {
  const dir = path.dirname(file);
  const ok = path.isAbsolute(file) && path.normalize(file) === file && ['hosts', 'resolv.conf'].includes(path.basename(file))
    && path.basename(dir) === containerId && path.basename(path.dirname(dir)) === 'containers';
  if (!ok) throw new DockcniError('container-file-path', `refusing to write ${JSON.stringify(file)}: not Docker's file for container ${containerId.slice(0, 12)}`);
}

/**
 * Rewrites a file the container can write to (it is bind-mounted inside): never through a link, only
 * a regular file of bounded size, in place (the container sees this very inode). Synchronous: a start
 * rewrites the hosts file of every peer on its networks, and a thread-pool round trip per call would
 * cost more than the small read and write.
 */
function rewrite(file: string, change: (current: string) => string | undefined): void {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDWR | constants.O_NOFOLLOW);
  } catch (error) {
    // A container removed while it was being wired has no file left, and nothing to write.
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new DockcniError('container-file', `cannot open ${file}: ${(error as Error).message}`, { cause: error });
  }
  try {
    const info = fstatSync(fd);
    if (!info.isFile()) throw new DockcniError('container-file', `${file} is not a regular file`);
    if (info.size > MAX_CONTAINER_FILE_BYTES) throw new DockcniError('container-file', `${file} is ${info.size} bytes, over the ${MAX_CONTAINER_FILE_BYTES}-byte limit`);
    const buffer = Buffer.alloc(info.size);
    const bytesRead = readSync(fd, buffer, 0, info.size, 0);
    const next = change(buffer.subarray(0, bytesRead).toString('utf8'));
    if (next === undefined) return;
    ftruncateSync(fd, 0);
    writeSync(fd, next, 0, 'utf8');
  } finally {
    closeSync(fd);
  }
}

/**
 * dockcni's lines of a container's /etc/hosts (each ends with its mark) replaced by `entries`, each an
 * address and its names; every other line kept as it was.
 */
export async function writeHosts(hostsPath: string, entries: readonly (readonly string[])[]): Promise<void> {
  if (hostsPath === '') return;
  // Checked again where the file is written: whatever a record holds, a line is one address and its names.
  const added = entries.map(([address = '', ...names]) => {
    const line = `${address}\t${names.join(' ')}\t${MARK}`;
    const bad = !ipaddr.isValid(address) ? `address ${JSON.stringify(address)}` : names.find((n) => unpublishable(n) !== undefined);
    if (bad !== undefined || names.length === 0) throw new DockcniError('container-file', `refusing to write the hosts line ${JSON.stringify(line)} to ${hostsPath}: ${bad ?? 'no name'} cannot be in a hosts file`);
    if (Buffer.byteLength(line) > MAX_HOSTS_LINE_BYTES) throw new DockcniError('container-file', `refusing to write a ${Buffer.byteLength(line)}-byte hosts line to ${hostsPath} (at most ${MAX_HOSTS_LINE_BYTES})`);
    return line;
  });
  rewrite(hostsPath, (current) => {
    const kept = current.split('\n').filter((line) => !line.endsWith(MARK) && line !== '');
    const next = `${[...kept, ...added].join('\n')}\n`;
    return next === current ? undefined : next;
  });
}

const DNS_NAME = /^(?=.{1,253}\.?$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62})(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62}))*\.?$/;
const RESOLV_OPTION = /^[A-Za-z0-9_.:-]{1,64}$/;

function checked(values: readonly string[], valid: (v: string) => boolean, what: string): string[] {
  for (const value of values) {
    if (typeof value !== 'string' || !valid(value)) throw new InvalidInputError(`${what} in the CNI result`, String(value), 'not one line of resolv.conf syntax', 'fix the plugin that returns it');
  }
  return [...values];
}

/** resolv.conf from the result's DNS: every value checked, so no value can add a line of its own. */
export function resolvConfText(dns: CniDns): string {
  const nameservers = checked(dns.nameservers ?? [], (v) => ipaddr.isValid(v), 'nameserver');
  const search = checked([...(dns.domain ? [dns.domain] : []), ...(dns.search ?? [])], (v) => DNS_NAME.test(v), 'search domain');
  const options = checked(dns.options ?? [], (v) => RESOLV_OPTION.test(v), 'resolver option');
  const lines = [`${MARK}: from the CNI result`, ...nameservers.map((n) => `nameserver ${n}`)];
  if (search.length > 0) lines.push(`search ${search.join(' ')}`);
  if (options.length > 0) lines.push(`options ${options.join(' ')}`);
  return `${lines.join('\n')}\n`;
}

export async function writeResolvConf(resolvPath: string, dns: CniDns): Promise<void> {
  if (resolvPath === '' || (dns.nameservers ?? []).length === 0) return;
  const text = resolvConfText(dns);
  rewrite(resolvPath, () => text);
}
