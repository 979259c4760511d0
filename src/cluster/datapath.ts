import { succeed, type HostCommands } from '../host-commands.js';
import { BACKEND_OVERHEAD, containerMtu, contains, linkNames, nth, type ClusterNetwork, type HostRecord } from './model.js';

/**
 * A cluster network's data path on one host, as flannel builds it: the host's bridge (containers hold
 * addresses of the whole cluster subnet; the bridge answers ARP for the ones that live elsewhere), and
 * towards every other host either a VXLAN device (one per network, no learning: for each remote block
 * a route via the block's network address, a permanent neighbour entry for that address and an FDB
 * entry sending its MAC to the host's underlay address) or, with host-gw, a plain route via the remote
 * host. Containers' traffic leaving the cluster subnet is masqueraded; inside it, it keeps its source.
 */
export interface RemoteHost {
  readonly record: HostRecord;
  readonly blocks: readonly string[];
  /** Static addresses its containers hold: routed to it as /32s. */
  readonly statics: readonly string[];
}

export interface Desired {
  readonly network: ClusterNetwork;
  readonly local: HostRecord;
  readonly underlayIf: string;
  /** This host's blocks, first one first (its first address is the bridge's). */
  readonly blocks: readonly string[];
  readonly remotes: readonly RemoteHost[];
}

interface Route { readonly dst: string; readonly via: string; readonly onlink: boolean }
interface Neigh { readonly ip: string; readonly mac: string }
interface Fdb { readonly mac: string; readonly dst: string }

/** The bridge's address: the first address of the host's first block. */
export const bridgeAddress = (blocks: readonly string[]): string | undefined => (blocks[0] === undefined ? undefined : nth(blocks[0], 1));

const MASQ_COMMENT = (net: string) => `dockcni cluster ${net}: leaving the cluster subnet`;
const FORWARD_COMMENT = (net: string) => `dockcni cluster ${net}: inside the cluster subnet`;

/** What the kernel should hold: routes, neighbours and FDB entries towards the other hosts. */
export function plan(d: Desired): { routes: Route[]; neighs: Neigh[]; fdbs: Fdb[] } {
  const routes: Route[] = [];
  const neighs: Neigh[] = [];
  const fdbs: Fdb[] = [];
  for (const remote of d.remotes) {
    if (d.network.backend === 'vxlan') {
      for (const block of remote.blocks) {
        routes.push({ dst: block, via: nth(block, 0), onlink: true });
        neighs.push({ ip: nth(block, 0), mac: remote.record.vtepMac });
      }
      const vtep = remote.blocks[0];
      if (vtep !== undefined) for (const ip of remote.statics) routes.push({ dst: `${ip}/32`, via: nth(vtep, 0), onlink: true });
      if (remote.blocks.length + remote.statics.length > 0) fdbs.push({ mac: remote.record.vtepMac, dst: remote.record.address });
    } else {
      for (const dst of [...remote.blocks, ...remote.statics.map((ip) => `${ip}/32`)]) routes.push({ dst, via: remote.record.address, onlink: false });
    }
  }
  return { routes, neighs, fdbs };
}

type IpJson = Record<string, unknown>;

/** Of a device's routes, those via a gateway into the network's subnet: the ones this data path makes. */
function clusterRoutes(network: ClusterNetwork, routes: readonly IpJson[]): string[] {
  return routes.filter((r) => r['gateway'] !== undefined).map((r) => String(r['dst']))
    .filter((dst) => /^\d+\.\d+\.\d+\.\d+(\/\d+)?$/.test(dst) && contains(network.subnet, dst.includes('/') ? dst : `${dst}/32`));
}

/** A host host-gw cannot route to: the way to it goes through a router. */
export interface Unreachable {
  readonly host: string;
  readonly address: string;
  readonly via: string;
}

/** The data path of one network on this host: read, compared with what it should be, and set right. */
export class DataPath {
  constructor(private readonly commands: HostCommands) {}

  private async ipJson(args: readonly string[]): Promise<IpJson[]> {
    const r = await this.commands.run('ip', ['-j', ...args]);
    if (r.exitCode !== 0) return [];
    return r.stdout.trim() === '' ? [] : JSON.parse(r.stdout) as IpJson[];
  }

  private async link(name: string): Promise<IpJson | undefined> {
    return (await this.ipJson(['-d', 'link', 'show', 'dev', name]))[0];
  }

  /**
   * host-gw routes a block via the host that holds it, which works only when that host is on this one's
   * link: a host whose route goes via a gateway is left out (the caller says so), not routed to the router.
   */
  async reachable(d: Desired): Promise<{ desired: Desired; unreachable: Unreachable[] }> {
    if (d.network.backend !== 'host-gw') return { desired: d, unreachable: [] };
    const unreachable: Unreachable[] = [];
    for (const remote of d.remotes) {
      const [route] = await this.ipJson(['route', 'get', remote.record.address]);
      if (route?.['gateway'] !== undefined) unreachable.push({ host: remote.record.name, address: remote.record.address, via: String(route['gateway']) });
    }
    return { desired: { ...d, remotes: d.remotes.filter((r) => !unreachable.some((u) => u.address === r.record.address)) }, unreachable };
  }

  /** What is missing or wrong, in words for the log; empty when whole. */
  async check(all: Desired): Promise<string[]> {
    const missing: string[] = [];
    const { desired: d } = await this.reachable(all);
    const names = linkNames(d.network.name);
    const wanted = plan(d);
    const bridge = await this.link(names.bridge);
    if (bridge === undefined) missing.push(`bridge ${names.bridge}`);
    else if ((await this.commands.run('sysctl', ['-n', `net.ipv4.conf.${names.bridge}.proxy_arp`])).stdout.trim() !== '1') missing.push(`proxy ARP on ${names.bridge}`);
    const dev = d.network.backend === 'vxlan' ? names.vxlan : d.underlayIf;
    if (d.network.backend === 'vxlan') {
      const vx = await this.link(names.vxlan);
      if (vx === undefined) missing.push(`VXLAN device ${names.vxlan}`);
      else {
        if (vx['address'] !== d.local.vtepMac) missing.push(`VXLAN device ${names.vxlan}'s MAC ${d.local.vtepMac}`);
        if (!String(vx['operstate'] ?? '').match(/UP|UNKNOWN/)) missing.push(`VXLAN device ${names.vxlan} up`);
        const fdb = new Set((JSON.parse((await this.commands.run('bridge', ['-j', 'fdb', 'show', 'dev', names.vxlan])).stdout || '[]') as IpJson[]).map((e) => `${String(e['mac'])} ${String(e['dst'])}`));
        for (const f of wanted.fdbs) if (!fdb.has(`${f.mac} ${f.dst}`)) missing.push(`FDB ${f.mac} → ${f.dst}`);
        const neighs = new Set((await this.ipJson(['neigh', 'show', 'dev', names.vxlan])).map((n) => `${String(n['dst'])} ${String(n['lladdr'])}`));
        for (const n of wanted.neighs) if (!neighs.has(`${n.ip} ${n.mac}`)) missing.push(`neighbour ${n.ip} → ${n.mac}`);
      }
    }
    const routes = new Set((await this.ipJson(['route', 'show', 'dev', dev])).map((r) => `${String(r['dst'])} ${String(r['gateway'])}`));
    for (const r of wanted.routes) if (!routes.has(`${r.dst.replace(/\/32$/, '')} ${r.via}`)) missing.push(`route ${r.dst} via ${r.via}`);
    const nat = (await succeed(this.commands, 'iptables-save', ['-t', 'nat'])).stdout;
    if (!nat.includes(MASQ_COMMENT(d.network.name))) missing.push(`masquerade of ${d.network.subnet} leaving the cluster subnet`);
    const filter = (await succeed(this.commands, 'iptables-save', ['-t', 'filter'])).stdout;
    if (!filter.includes(FORWARD_COMMENT(d.network.name))) missing.push(`forward accept inside ${d.network.subnet}`);
    return missing;
  }

  /** Sets everything right (idempotent): links, addresses, entries, rules; stale entries of the device go. */
  async apply(all: Desired): Promise<Unreachable[]> {
    const { desired: d, unreachable } = await this.reachable(all);
    const names = linkNames(d.network.name);
    const mtu = containerMtu(d.network, d.local.underlayMtu);
    if (await this.link(names.bridge) === undefined) await succeed(this.commands, 'ip', ['link', 'add', names.bridge, 'type', 'bridge']);
    await succeed(this.commands, 'ip', ['link', 'set', names.bridge, 'mtu', String(mtu), 'up']);
    await succeed(this.commands, 'sysctl', ['-qw', `net.ipv4.conf.${names.bridge}.proxy_arp=1`]);
    const wanted = plan(d);
    let dev = d.underlayIf;
    if (d.network.backend === 'vxlan') {
      dev = names.vxlan;
      const vx = await this.link(names.vxlan);
      const info = vx?.['linkinfo'] as { info_data?: { id?: number; local?: string } } | undefined;
      if (vx !== undefined && (info?.info_data?.id !== d.network.vni || info.info_data.local !== d.local.address)) {
        await succeed(this.commands, 'ip', ['link', 'del', names.vxlan]);
      }
      if (vx === undefined || info?.info_data?.id !== d.network.vni || info.info_data.local !== d.local.address) {
        await succeed(this.commands, 'ip', ['link', 'add', names.vxlan, 'type', 'vxlan', 'id', String(d.network.vni), 'dstport', '4789', 'local', d.local.address, 'dev', d.underlayIf, 'nolearning']);
      }
      await succeed(this.commands, 'ip', ['link', 'set', names.vxlan, 'address', d.local.vtepMac, 'mtu', String(d.local.underlayMtu - BACKEND_OVERHEAD.vxlan), 'up']);
      const have = new Set((await this.ipJson(['addr', 'show', 'dev', names.vxlan])).flatMap((l) => ((l['addr_info'] ?? []) as IpJson[]).map((a) => String(a['local']))));
      for (const block of d.blocks) if (!have.has(nth(block, 0))) await succeed(this.commands, 'ip', ['addr', 'add', `${nth(block, 0)}/32`, 'dev', names.vxlan]);
      // Only what differs: a host joining the cluster costs each other host a few commands, not one per remote block.
      const fdbs = JSON.parse((await this.commands.run('bridge', ['-j', 'fdb', 'show', 'dev', names.vxlan])).stdout || '[]') as IpJson[];
      const fdbHave = new Set(fdbs.map((e) => `${String(e['mac'])} ${String(e['dst'])}`));
      for (const f of wanted.fdbs) if (!fdbHave.has(`${f.mac} ${f.dst}`)) await succeed(this.commands, 'bridge', ['fdb', 'replace', f.mac, 'dev', names.vxlan, 'dst', f.dst, 'self', 'permanent']);
      for (const e of fdbs) {
        if (e['dst'] !== undefined && !wanted.fdbs.some((f) => f.mac === e['mac'] && f.dst === e['dst'])) await this.commands.run('bridge', ['fdb', 'del', String(e['mac']), 'dev', names.vxlan, 'dst', String(e['dst']), 'self']);
      }
      const neighs = await this.ipJson(['neigh', 'show', 'dev', names.vxlan]);
      const neighHave = new Set(neighs.filter((n) => (n['state'] as string[] | undefined)?.includes('PERMANENT') ?? true).map((n) => `${String(n['dst'])} ${String(n['lladdr'])}`));
      for (const n of wanted.neighs) if (!neighHave.has(`${n.ip} ${n.mac}`)) await succeed(this.commands, 'ip', ['neigh', 'replace', n.ip, 'lladdr', n.mac, 'dev', names.vxlan, 'nud', 'permanent']);
      for (const n of neighs) {
        if (!wanted.neighs.some((w) => w.ip === n['dst'])) await this.commands.run('ip', ['neigh', 'del', String(n['dst']), 'dev', names.vxlan]);
      }
    }
    const routes = await this.ipJson(['route', 'show', 'dev', dev]);
    const routeHave = new Set(routes.map((r) => `${String(r['dst'])} ${String(r['gateway'])}`));
    for (const r of wanted.routes) {
      if (!routeHave.has(`${r.dst.replace(/\/32$/, '')} ${r.via}`)) await succeed(this.commands, 'ip', ['route', 'replace', r.dst, 'via', r.via, 'dev', dev, ...(r.onlink ? ['onlink'] : [])]);
    }
    // Routes into the cluster subnet that no host needs any more (a lost or forgotten host's).
    for (const dst of clusterRoutes(d.network, routes)) {
      if (!wanted.routes.some((w) => w.dst.replace(/\/32$/, '') === dst)) await this.commands.run('ip', ['route', 'del', dst, 'dev', dev]);
    }
    await this.rules(d, true);
    return unreachable;
  }

  /** Everything of the network on this host goes: its links, routes and rules. */
  async remove(network: ClusterNetwork, underlayIf: string): Promise<void> {
    const names = linkNames(network.name);
    if (network.backend === 'host-gw') {
      for (const dst of clusterRoutes(network, await this.ipJson(['route', 'show', 'dev', underlayIf]))) await this.commands.run('ip', ['route', 'del', dst, 'dev', underlayIf]);
    }
    for (const link of [names.vxlan, names.bridge]) if (await this.link(link) !== undefined) await succeed(this.commands, 'ip', ['link', 'del', link]);
    await this.rules({ network }, false);
  }

  /** The masquerade of traffic leaving the cluster subnet and the accept of traffic inside it: added, or removed. */
  private async rules(d: Pick<Desired, 'network'>, present: boolean): Promise<void> {
    const subnet = d.network.subnet;
    const masq = ['POSTROUTING', '-s', subnet, '!', '-d', subnet, '-m', 'comment', '--comment', MASQ_COMMENT(d.network.name), '-j', 'MASQUERADE'];
    const accept = ['CNI-ADMIN', '-s', subnet, '-d', subnet, '-m', 'comment', '--comment', FORWARD_COMMENT(d.network.name), '-j', 'ACCEPT'];
    if (present) await this.commands.run('iptables', ['-w', '-N', 'CNI-ADMIN']);
    for (const [table, rule] of [['nat', masq], ['filter', accept]] as const) {
      const has = (await this.commands.run('iptables', ['-w', '-t', table, '-C', ...rule])).exitCode === 0;
      if (present && !has) await succeed(this.commands, 'iptables', ['-w', '-t', table, '-A', ...rule]);
      if (!present && has) await succeed(this.commands, 'iptables', ['-w', '-t', table, '-D', ...rule]);
    }
  }
}
