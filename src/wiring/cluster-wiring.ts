import { parseConfList } from '../cni/conf.js';
import type { NetworkConfigList } from '../cni/types.js';
import { DockcniError, InvalidInputError } from '../errors.js';
import type { AttachmentRecord, NetworkAttachment } from '../state/attachment.js';
import { addressIn, clusterConf, type ClusterConf, type ClusterLink, type StaticHolder } from './cluster-link.js';
import type { WireTarget } from './intent.js';
import type { WireRequest } from './labels.js';

const hostPart = (address: string) => address.split('/')[0] ?? address;
const staticsOf = (capabilityArgs: Readonly<Record<string, unknown>>): string[] => (Array.isArray(capabilityArgs['ips']) ? (capabilityArgs['ips'] as string[]).map(hostPart) : []);

/** The cluster's side of a wiring is not possible now, but may be soon (a fenced host, etcd away). */
export class ClusterNotReadyError extends DockcniError {
  override readonly name = 'ClusterNotReadyError';
  constructor(network: string, why: string) {
    super('cluster-fenced', `cluster network ${network}: ${why}`, { fix: 'the daemon retries; check `dockcni cluster status` and the etcd members' });
  }
}

/**
 * What a cluster network adds to a wiring: the host's blocks, taken from etcd (through the daemon's
 * agent) only when it has none or they are full; static addresses checked against the dynamic range
 * and claimed cluster-wide, released with the attachment. A local network passes through untouched.
 */
export class ClusterWiring {
  constructor(private readonly link: ClusterLink | undefined, private readonly reload: (network: string) => NetworkConfigList) {}

  private linked(network: string): ClusterLink {
    if (this.link === undefined) {
      throw new DockcniError('not-running', `network ${network} is a cluster network, and nothing on this host talks to its etcd`, { fix: 'start `dockcni daemon --etcd …` on this host: it holds the host\'s blocks and claims' });
    }
    return this.link;
  }

  /**
   * Before any claim: a fenced host allocates nothing; a static address must lie in the subnet and
   * outside the dynamic range; a host without a block takes one. The lists, re-read where it did.
   */
  async prepare(request: WireRequest, lists: readonly NetworkConfigList[]): Promise<NetworkConfigList[]> {
    const out: NetworkConfigList[] = [];
    for (const [i, list] of lists.entries()) {
      const conf = clusterConf(list);
      if (conf === undefined) {
        out.push(list);
        continue;
      }
      if (conf.fenced) throw new ClusterNotReadyError(list.name, 'this host could not confirm its address blocks with etcd in time: it gives out no address until it has');
      for (const ip of staticsOf(request.networks[i]?.capabilityArgs ?? {})) checkStatic(list.name, conf, ip);
      if (conf.blocks.length > 0) out.push(list);
      else {
        await this.linked(list.name).takeBlock(list.name);
        out.push(this.reload(list.name));
      }
    }
    return out;
  }

  /** Claims the request's static addresses on cluster networks; returns how to give them back. */
  async claim(target: WireTarget, request: WireRequest, lists: readonly NetworkConfigList[]): Promise<() => Promise<void>> {
    const claimed: { network: string; ip: string }[] = [];
    const holder: StaticHolder = { containerId: target.containerId, container: target.name };
    const release = async () => { for (const c of claimed.reverse()) await this.linked(c.network).releaseStatic(c.network, c.ip, holder); };
    try {
      for (const [i, list] of lists.entries()) {
        if (clusterConf(list) === undefined) continue;
        for (const ip of staticsOf(request.networks[i]?.capabilityArgs ?? {})) {
          await this.linked(list.name).claimStatic(list.name, ip, holder);
          claimed.push({ network: list.name, ip });
        }
      }
    } catch (error) {
      await release();
      throw error;
    }
    return release;
  }

  /** Gives back the static addresses an attachment of a cluster network held. */
  async release(record: AttachmentRecord, attachment: NetworkAttachment, list: NetworkConfigList | undefined): Promise<void> {
    if (list === undefined || clusterConf(list) === undefined) return;
    for (const ip of staticsOf(attachment.capabilityArgs)) await this.linked(list.name).releaseStatic(list.name, ip, { containerId: record.containerId, container: record.name });
  }

  /**
   * The list an ADD runs with: for a static address of a cluster network, a range of that one address
   * joins the host's blocks (its claim in etcd makes it this container's). A container wired here
   * before (a restart, the host coming back) asks for the address it had, when it is still in this
   * host's blocks. When the blocks are full, the host takes another (the agent rewrites the conflist)
   * and the ADD runs again.
   */
  async add<T>(list: NetworkConfigList, capabilityArgs: Readonly<Record<string, unknown>>, previous: readonly string[], add: (list: NetworkConfigList, capabilityArgs: Readonly<Record<string, unknown>>) => Promise<T>): Promise<T> {
    let conf = clusterConf(list);
    if (conf === undefined) return add(list, capabilityArgs);
    const statics = staticsOf(capabilityArgs);
    const kept = statics.length === 0 ? previous.filter((a) => conf!.blocks.some((b) => addressIn(b, hostPart(a)))) : [];
    if (kept.length > 0) {
      try {
        return await add(withStatics(list, conf, statics), { ...capabilityArgs, ips: kept });
      } catch (error) {
        // Taken meanwhile (by a container wired while this one was down): any address of the blocks will do.
        if (!/not available|already reserved|no IP addresses available/i.test(error instanceof Error ? error.message : '')) throw error;
      }
    }
    for (let taken = 0; ; taken++) {
      try {
        return await add(withStatics(list, conf, statics), capabilityArgs);
      } catch (error) {
        if (taken >= MAX_BLOCKS_PER_ADD || !/no IP addresses available/.test(error instanceof Error ? error.message : '')) throw error;
      }
      await this.linked(list.name).takeBlock(list.name);
      list = this.reload(list.name);
      conf = clusterConf(list) ?? conf;
    }
  }
}

/** Blocks one ADD may take when it finds them full: a burst of containers on a host takes them one at a time. */
const MAX_BLOCKS_PER_ADD = 3;

function checkStatic(network: string, conf: ClusterConf, ip: string): void {
  if (!addressIn(conf.subnet, ip)) throw new InvalidInputError(`address for cluster network ${network}`, ip, `not in its subnet ${conf.subnet}`, `pick an address of ${conf.subnet} outside ${conf.ipRange}`);
  if (addressIn(conf.ipRange, ip)) {
    const room = conf.ipRange === conf.subnet ? `the whole subnet is the dynamic range: there is no room for static addresses (create the network with --ip-range smaller than --subnet)` : `static addresses lie outside it: pick one of ${conf.subnet} outside ${conf.ipRange}`;
    throw new InvalidInputError(`address for cluster network ${network}`, ip, `inside the dynamic range ${conf.ipRange}, whose blocks hosts allocate from; ${room}`);
  }
}

/** Ranges of one address each for static addresses (outside the dynamic range): host-local hands out only what its ranges hold. */
function withStatics(list: NetworkConfigList, conf: ClusterConf, statics: readonly string[]): NetworkConfigList {
  const ips = statics.filter((ip) => !addressIn(conf.ipRange, ip));
  if (ips.length === 0) return list;
  const raw = JSON.parse(list.bytes.toString('utf8')) as { plugins: { ipam?: { ranges?: Record<string, unknown>[][] } }[] };
  const ipam = raw.plugins[0]?.ipam;
  const set = ipam?.ranges?.[0];
  if (ipam === undefined || set === undefined) return list;
  set.push(...ips.map((ip) => ({ subnet: conf.subnet, rangeStart: ip, rangeEnd: ip, gateway: conf.bridgeAddress })));
  return parseConfList(Buffer.from(JSON.stringify(raw)), list.source);
}
