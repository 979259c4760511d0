import { access, readdir, readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import ipaddr from 'ipaddr.js';
import { loadConfDir } from '../cni/conf-dir.js';
import { DEFAULT_NETWORK_JSON, DEFAULT_NETWORK_NAME } from '../cni/default-network.js';
import { lockHolder } from '../cni/lock.js';
import { findPlugin } from '../cni/plugin-path.js';
import type { NetworkConfigList } from '../cni/types.js';
import { validateConfDir } from '../cni/validate.js';
import type { CniEngine } from '../cni/engine.js';
import type { Collector, Leftover } from '../gc/collector.js';
import type { CacheEntry } from '../cni/result-cache.js';
import type { DockerClient } from '../docker/docker-client.js';
import { unsupportedEngine } from '../docker/engine-support.js';
import { describeError, PluginNotFoundError } from '../errors.js';
import type { HostCommands } from '../host-commands.js';
import { locksDir, type Paths } from '../paths.js';
import { holdsNetns, type AttachmentRecord } from '../state/attachment.js';
import type { AttachmentStore } from '../state/attachment-store.js';
import { asTarget, hostListener, hostSockets, overlaps, type HostSocket } from '../wiring/host-ports.js';
import { NETWORKS_LABEL } from '../wiring/label-keys.js';
import { parseLabels } from '../wiring/labels.js';
import type { PortMapping } from '../cni/types.js';
import type { HostLeftover } from '../gc/host-leftovers.js';
import { DEFAULT_DAEMON_JSON, DEFAULT_RUNTIME_NAME, runtimeStatus } from '../runtime/install.js';
import { identityWays } from '../wiring/kept-identity.js';

/** What the checks look at; the CLI's context provides it. */
export interface DoctorDeps {
  readonly paths: Paths;
  readonly docker: DockerClient;
  readonly engine: CniEngine;
  readonly collector: Collector;
  /** Words for leftovers, from the CLI. */
  readonly describe: { readonly leftover: (item: Leftover) => string; readonly host: (item: HostLeftover) => string;
    readonly foreign: (entries: readonly CacheEntry[]) => string };
  readonly store: Pick<AttachmentStore, 'list'>;
  readonly commands: HostCommands;
}

export type CheckStatus = 'ok' | 'warn' | 'fail';

export interface CheckResult {
  readonly check: string;
  readonly status: CheckStatus;
  readonly found: string;
  readonly fix?: string | undefined;
}

const ok = (check: string, found: string): CheckResult => ({ check, status: 'ok', found });
const warn = (check: string, found: string, fix?: string): CheckResult => ({ check, status: 'warn', found, fix });
const fail = (check: string, found: string, fix?: string): CheckResult => ({ check, status: 'fail', found, fix });

const sysctl = (key: string) => readFile(`/proc/sys/${key.replace(/\./g, '/')}`, 'utf8').then((v) => v.trim(), () => undefined);

/** Docker reachable, an engine dockcni can work beside, its firewall backend; the daemon running. */
export async function dockerChecks(ctx: Pick<DoctorDeps, 'docker' | 'paths'>): Promise<{ results: CheckResult[]; reachable: boolean }> {
  const results: CheckResult[] = [];
  let reachable = false;
  try {
    const v = await ctx.docker.engine();
    const refused = unsupportedEngine(v);
    if (refused !== undefined) {
      results.push(fail('docker', refused.message, refused.fix));
      return { results, reachable: false };
    }
    results.push(ok('docker', `Docker ${v.version}, API ${v.apiVersion}${v.firewallBackend === undefined ? '' : `, firewall backend ${v.firewallBackend}`}`));
    results.push(...firewallBackendCheck(v.firewallBackend));
    reachable = true;
  } catch (error) {
    results.push(fail('docker', describeError(error), 'start dockerd, or point --docker-host / DOCKER_HOST at it'));
  }
  const pid = lockHolder(path.join(locksDir(ctx.paths), 'daemon.lock'));
  results.push(pid ? ok('dockcni daemon', `running (pid ${pid})`)
    : warn('dockcni daemon', 'not running: containers labelled dockcni.networks are not wired, `run -d` sandboxes wait for `dockcni gc`', 'start `dockcni daemon` (examples/systemd/dockcni.service)'));
  return { results, reachable };
}

async function configChecks(ctx: DoctorDeps, networks: readonly NetworkConfigList[]): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  const listing = loadConfDir(ctx.paths.confDir);
  results.push(listing.exists ? ok('conf dir', `${ctx.paths.confDir}: ${listing.networks.length} network(s)`)
    : warn('conf dir', `${ctx.paths.confDir} does not exist: only the embedded "${DEFAULT_NETWORK_NAME}" network is available`, `mkdir -p ${ctx.paths.confDir} and add .conflist files (examples/networks/)`));
  const findings = await validateConfDir(listing, ctx.engine, ctx.paths.cniPath);
  for (const f of findings) {
    const line = `${f.source}${f.network ? ` (${f.network})` : ''}: ${f.message}`;
    results.push(f.level === 'error' ? fail('network config', line, 'fix the file; `dockcni networks validate` lists every problem') : warn('network config', line));
  }
  if (listing.networks.length > 0 && findings.length === 0) results.push(ok('network config', 'every network valid, every plugin found and speaking its version'));
  const missing: string[] = [];
  for (const p of DEFAULT_NETWORK_JSON.plugins) {
    try {
      findPlugin(p.type, ctx.paths.cniPath);
    } catch (error) {
      if (!(error instanceof PluginNotFoundError)) throw error;
      missing.push(p.type);
    }
  }
  results.push(missing.length === 0 ? ok('default network', `plugins ${DEFAULT_NETWORK_JSON.plugins.map((p) => p.type).join(', ')} found`)
    : fail('default network', `missing plugin(s) ${missing.join(', ')} in ${ctx.paths.cniPath.join(':')}`, 'apt-get install containernetworking-plugins, or set --cni-path'));
  const dhcp = networks.filter((n) => n.plugins.some((p) => (p['ipam'] as { type?: string } | undefined)?.type === 'dhcp'));
  if (dhcp.length > 0) {
    const up = await access('/run/cni/dhcp.sock').then(() => true, () => false);
    results.push(up ? ok('dhcp daemon', '/run/cni/dhcp.sock present')
      : fail('dhcp daemon', `networks ${dhcp.map((n) => n.name).join(', ')} use dhcp IPAM but /run/cni/dhcp.sock is missing`, 'start the CNI dhcp daemon: /usr/lib/cni/dhcp daemon'));
  }
  return results;
}

/**
 * Which firewall dockerd programs (Docker 28.2+ says, API 1.49): with iptables (and firewalld) CNI's
 * iptables rules sit beside Docker's, which FORWARD reaches through DOCKER-USER and DOCKER-FORWARD
 * after the firewall plugin's CNI-FORWARD accept rules. With nftables (Docker 29, experimental) there is
 * no DOCKER-USER, dockerd leaves IP forwarding to the host, and its tables judge only its own bridges.
 */
export function firewallBackendCheck(backend: string | undefined): CheckResult[] {
  if (backend === undefined || backend.startsWith('iptables')) return [];
  if (backend === 'nftables') {
    return [warn('firewall backend', 'dockerd uses nftables: it does not enable IP forwarding for you and has no DOCKER-USER chain; CNI traffic passes through the plugins\' iptables rules (iptables-nft) and the forwarding sysctls checked below',
      'keep net.ipv4.ip_forward (and IPv6 forwarding) on in /etc/sysctl.d/, and move any DOCKER-USER rules you relied on to an nftables chain (Docker\'s docs: firewall-nftables)')];
  }
  return [warn('firewall backend', `dockerd reports firewall backend "${backend}", which dockcni does not know`, 'check that traffic between containers on CNI networks passes (dockcni\'s tests assume iptables)')];
}

/** Any subnet or address in the list's config that is IPv6. */
function usesIpv6(list: NetworkConfigList): boolean {
  const values = [...JSON.stringify(list.plugins).matchAll(/"(?:subnet|address)":"([^"]+)"/g)].map((m) => m[1] ?? '');
  return values.some((v) => ipaddr.isValidCIDR(v) && ipaddr.parseCIDR(v)[0].kind() === 'ipv6');
}

async function kernelChecks(commands: HostCommands, networks: readonly NetworkConfigList[]): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  const fwd = await sysctl('net.ipv4.ip_forward');
  results.push(fwd === '1' ? ok('ip forwarding', 'net.ipv4.ip_forward = 1')
    : fail('ip forwarding', `net.ipv4.ip_forward = ${fwd ?? 'unreadable'}: the host will not route to or from containers`, 'sysctl -w net.ipv4.ip_forward=1 (persist in /etc/sysctl.d/)'));
  if (networks.some(usesIpv6)) {
    const fwd6 = await sysctl('net.ipv6.conf.all.forwarding');
    results.push(fwd6 === '1' ? ok('ipv6 forwarding', 'net.ipv6.conf.all.forwarding = 1')
      : fail('ipv6 forwarding', `net.ipv6.conf.all.forwarding = ${fwd6 ?? 'unreadable'} while a network is IPv6`, 'sysctl -w net.ipv6.conf.all.forwarding=1'));
  }
  const version = await commands.run('iptables', ['-V']);
  if (version.exitCode !== 0) {
    results.push(fail('iptables', `iptables does not run: ${version.stderr.trim()}`, 'apt-get install iptables'));
    return results;
  }
  const forward = await commands.run('iptables', ['-w', '-S', 'FORWARD']);
  const policy = /^-P FORWARD (\w+)/m.exec(forward.stdout)?.[1] ?? 'unknown';
  results.push(forward.exitCode === 0 ? ok('iptables', `${version.stdout.trim()}; FORWARD policy ${policy}`)
    : fail('iptables', `iptables -S FORWARD failed: ${forward.stderr.trim()}`, 'check the iptables backend (update-alternatives --config iptables)'));
  results.push(brNetfilterCheck(await sysctl('net.bridge.bridge-nf-call-iptables'), networks));
  // Docker 27+ sets the IPv6 FORWARD policy to DROP as well: IPv6 networks need the same accept rules.
  const forward6 = networks.some(usesIpv6) ? await commands.run('ip6tables', ['-w', '-S', 'FORWARD']) : undefined;
  const policy6 = forward6 === undefined ? undefined : /^-P FORWARD (\w+)/m.exec(forward6.stdout)?.[1];
  const exposed = (family: string, ipv6: boolean) => networks.filter((n) => (!ipv6 || usesIpv6(n)) && n.plugins.some((p) => p.type === 'bridge') && !n.plugins.some((p) => p.type === 'firewall'))
    .map((n) => warn('forward policy', `the ${family} FORWARD policy is DROP (Docker sets it) and network ${n.name} (${n.source}) has no firewall plugin: its containers cannot reach each other or the outside`,
      'add {"type": "firewall", "backend": "iptables"} after the bridge plugin'));
  if (policy === 'DROP') results.push(...exposed('IPv4', false));
  if (policy6 === 'DROP') results.push(...exposed('IPv6', true));
  return results;
}

/**
 * Without br_netfilter (or with bridge-nf-call-iptables = 0), traffic between containers on one bridge
 * never reaches iptables: the firewall plugin's isolation and portmap's hairpin DNAT do not apply.
 */
export function brNetfilterCheck(value: string | undefined, networks: readonly NetworkConfigList[]): CheckResult {
  const bridged = networks.filter((n) => n.plugins.some((p) => p.type === 'bridge')).map((n) => n.name);
  if (value === '1') return ok('br_netfilter', 'bridge-nf-call-iptables = 1: bridged traffic passes iptables');
  const found = value === undefined ? 'br_netfilter is not loaded' : `bridge-nf-call-iptables = ${value}`;
  const fix = value === undefined ? 'modprobe br_netfilter (persist in /etc/modules-load.d/)' : 'sysctl -w net.bridge.bridge-nf-call-iptables=1';
  return warn('br_netfilter', `${found}: traffic between containers on one bridge bypasses iptables (firewall rules, hairpin port mappings)${bridged.length > 0 ? `; bridge networks: ${bridged.join(', ')}` : ''}`, fix);
}

async function hostChecks(): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  const name = hostname();
  results.push(name === 'localhost' || name === '' ? fail('hostname', `"${name}"`, 'give the host a unique name (hostnamectl set-hostname …)') : ok('hostname', name));
  const byMac = new Map<string, string[]>();
  for (const iface of await readdir('/sys/class/net')) {
    const base = `/sys/class/net/${iface}`;
    // Bridges take a port's MAC and enslaved ports share by design; compare only standalone interfaces.
    if (iface === 'lo' || await access(`${base}/bridge`).then(() => true, () => false) || await access(`${base}/master`).then(() => true, () => false)) continue;
    const mac = (await readFile(`${base}/address`, 'utf8').catch(() => '')).trim();
    if (mac === '' || mac === '00:00:00:00:00:00') continue;
    byMac.set(mac, [...(byMac.get(mac) ?? []), iface]);
  }
  const dups = [...byMac.entries()].filter(([, names]) => names.length > 1);
  results.push(dups.length === 0 ? ok('mac addresses', `${byMac.size} interface(s), no duplicate`)
    : fail('mac addresses', dups.map(([mac, names]) => `${mac} on ${names.join(', ')}`).join('; '), 'give each interface its own MAC (cloned VMs keep the source\'s)'));
  return results;
}

/** Mapped host ports, from the records of wired containers: taken twice, or also listened on by a host process. */
export function portFindings(records: readonly AttachmentRecord[], sockets: readonly HostSocket[]): CheckResult[] {
  const wanted = records.filter(holdsNetns).flatMap((r) => r.networks.filter((n) => n.state !== 'failed')
    .flatMap((n) => ((n.capabilityArgs['portMappings'] as PortMapping[] | undefined) ?? []).map((mapping) => ({ container: r.name, mapping }))));
  const clashes: string[] = [];
  wanted.forEach((w, i) => {
    const twin = wanted.slice(i + 1).find((o) => overlaps(asTarget(o.mapping), asTarget(w.mapping)));
    if (twin) clashes.push(`${w.mapping.hostPort}/${w.mapping.protocol} is mapped by both ${w.container} and ${twin.container}`);
    const listener = hostListener(w.mapping, sockets);
    if (listener) clashes.push(`${w.mapping.hostPort}/${w.mapping.protocol} (container ${w.container}) is also listened on by ${listener}`);
  });
  return [clashes.length === 0 ? ok('host ports', `${wanted.length} mapped port(s), none taken twice or listened on by a host process`)
    : fail('host ports', clashes.join('; '), 'stop that process or map another host port: the DNAT rule takes its traffic')];
}

async function portChecks(ctx: DoctorDeps): Promise<CheckResult[]> {
  const results = portFindings(await ctx.store.list(), hostSockets());
  // A labelled container whose labels cannot be parsed is not wired: said once per container, the others still checked.
  for (const c of await ctx.docker.listByLabel(NETWORKS_LABEL)) {
    try {
      parseLabels(c.labels);
    } catch (error) {
      results.push(warn('labels', `container ${c.name} has bad labels: ${describeError(error)}`, 'fix its labels; `dockcni daemon` logs the same'));
    }
  }
  return results;
}

async function leftoverChecks(ctx: DoctorDeps): Promise<CheckResult[]> {
  const [inventory, host] = await Promise.all([ctx.collector.scan(), ctx.collector.hostLeftovers()]);
  const lines = [...inventory.leftovers.map(ctx.describe.leftover), ...host.map(ctx.describe.host)];
  const results = lines.length === 0 ? [ok('leftovers', 'no reservation, cache entry, pin, sandbox or chain without a live container')]
    : lines.map((line) => fail('leftovers', line, 'dockcni gc (see first: dockcni gc --dry-run)'));
  if (inventory.foreignCache.length > 0) results.push(ok('other runtimes', `${ctx.describe.foreign(inventory.foreignCache)}: read, never changed`));
  for (const s of inventory.skippedCache) results.push(warn('cni cache', `${s.path}: ${s.reason}; left alone`, 'if no runtime uses it, remove it by hand'));
  return results;
}

/** Runtime mode is optional; once daemon.json names it, dockerd must list it and it must answer. */
export async function runtimeCheck(ctx: Pick<DoctorDeps, 'docker' | 'commands'>, daemonJson = DEFAULT_DAEMON_JSON): Promise<CheckResult[]> {
  const s = await runtimeStatus(ctx.docker, ctx.commands, DEFAULT_RUNTIME_NAME, daemonJson);
  if (s.entry === undefined) return [ok('runtime', `not installed (optional: \`dockcni runtime install\` wires containers before their first instruction)`)];
  if (s.untrusted.length > 0) {
    return [fail('runtime', `dockerd runs ${s.entry.path} as root on every container start, and others can change what it runs: ${s.untrusted.join('; ')}`, 'chown root and chmod go-w the paths named, or reinstall dockcni where only root can write, then `dockcni runtime install` again')];
  }
  if (s.registered && s.answering) return [ok('runtime', `${s.name} installed${s.isDefault ? ' as the default runtime' : ''} and answering (${s.entry.path})`)];
  const why = !s.registered ? `${daemonJson} names ${s.name} but dockerd does not list it` : `${s.name} does not answer: ${s.problem ?? 'unknown'}`;
  return [fail('runtime', why, 'run `dockcni runtime install` again (it rewrites the entry and reloads dockerd); `dockcni runtime status` shows the details')];
}

/** Networks on which a repair (the health loop, `dockcni reload`) cannot ask for the addresses or MAC a container had. */
export function repairChecks(networks: readonly NetworkConfigList[]): CheckResult[] {
  const results = networks.flatMap((list) => {
    const ways = identityWays(list);
    const lost = [...(ways.address === 'none' ? ['addresses'] : []), ...(ways.mac === 'none' ? ['MACs'] : [])];
    return lost.length === 0 ? [] : [warn('repairs', `network ${list.name} (${list.source}): a repair may change its containers' ${lost.join(' and ')}: no "ips"/"mac" capability, and its plugins take no IP=/MAC= CNI_ARGS`,
      `add "capabilities": {${[...(ways.address === 'none' ? ['"ips": true'] : []), ...(ways.mac === 'none' ? ['"mac": true'] : [])].join(', ')}} to the plugin that handles them, if it supports them`)];
  });
  return results.length > 0 ? results : [ok('repairs', 'every network lets a repair keep its containers\' addresses and MACs')];
}

/** Every node check, in the order an operator would make them. */
export async function runChecks(ctx: DoctorDeps): Promise<CheckResult[]> {
  const { results, reachable } = await dockerChecks(ctx);
  const listing = loadConfDir(ctx.paths.confDir);
  const guard = async (name: string, fn: () => Promise<CheckResult[]>) => fn().catch((error: unknown) => [fail(name, `check could not run: ${describeError(error)}`)]);
  results.push(...await guard('network config', () => configChecks(ctx, listing.networks)));
  results.push(...await guard('kernel', () => kernelChecks(ctx.commands, listing.networks)));
  results.push(...await guard('host', hostChecks));
  results.push(...repairChecks(listing.networks));
  if (reachable) {
    results.push(...await guard('host ports', () => portChecks(ctx)));
    results.push(...await guard('leftovers', () => leftoverChecks(ctx)));
    results.push(...await guard('runtime', () => runtimeCheck(ctx)));
  } else {
    results.push(warn('host ports', 'skipped: needs Docker'), warn('leftovers', 'skipped: needs Docker'), warn('runtime', 'skipped: needs Docker'));
  }
  return results;
}
