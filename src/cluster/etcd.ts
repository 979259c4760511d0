import { readFileSync } from 'node:fs';
import { Etcd3, type IKeyValue, type Lease, type Watcher } from 'etcd3';
import { DockcniError, InvalidInputError } from '../errors.js';
import { key, overlaps, PREFIX, type BlockRecord, type ClusterNetwork, type HostRecord, type NameRecord, type SeenRecord, type StaticClaim } from './model.js';

/**
 * etcd, the one place every cluster-wide fact lives: this module is the only one that talks to it, and
 * the only one that loads the etcd client (the daemon with --etcd and the cluster commands do; the
 * runtime and the wiring never do). Every write that two hosts could race on is a transaction.
 */
export interface EtcdOptions {
  readonly endpoints: readonly string[];
  /** TLS, as etcdctl names it: --cacert, --cert, --key. */
  readonly cacert?: string | undefined;
  readonly cert?: string | undefined;
  readonly key?: string | undefined;
  /** Per call (not for watches) [default 5 s]: a call to an etcd without quorum fails instead of hanging. */
  readonly timeoutMs?: number | undefined;
}

/** etcd cannot be reached, or has no quorum: what needed it fails, may pass later (CNI code 11's meaning). */
export class EtcdUnavailableError extends DockcniError {
  override readonly name = 'EtcdUnavailableError';
  constructor(readonly endpoints: readonly string[], what: string, cause: unknown) {
    super('etcd-unavailable', `etcd is unreachable or has no quorum (${endpoints.join(',')}): ${what}: ${cause instanceof Error ? cause.message : String(cause)}`, {
      cause, fix: 'check the etcd members (etcdctl endpoint health); running containers keep their networking, and what needs etcd is retried',
    });
  }
}

const json = <T>(kv: IKeyValue): T => JSON.parse(kv.value.toString('utf8')) as T;
const rest = (kv: IKeyValue, prefix: string) => kv.key.toString('utf8').slice(prefix.length);

/** Everything under the prefix at one revision. */
export interface Snapshot {
  readonly revision: string;
  readonly networks: ReadonlyMap<string, ClusterNetwork>;
  readonly hosts: ReadonlyMap<string, HostRecord>;
  /** net → block → holder. */
  readonly blocks: ReadonlyMap<string, ReadonlyMap<string, BlockRecord>>;
  /** net → ip → claim. */
  readonly statics: ReadonlyMap<string, ReadonlyMap<string, StaticClaim>>;
  /** net → `host/container` → names. */
  readonly names: ReadonlyMap<string, ReadonlyMap<string, NameRecord>>;
  readonly seen: ReadonlyMap<string, SeenRecord>;
}

/** A lease this process keeps alive, and when etcd last confirmed it. */
export interface KeptLease {
  readonly id: string;
  /** Date.now() of the grant or the last successful keepalive. */
  confirmedAt(): number;
  onLost(fn: (error: Error) => void): void;
  revoke(): Promise<void>;
  /** Stops the keepalives and leaves the lease to expire at its TTL (what a stopping daemon does). */
  release(): void;
}

export class EtcdCluster {
  private readonly client: Etcd3;

  constructor(readonly options: EtcdOptions) {
    if (options.endpoints.length === 0) throw new InvalidInputError('--etcd', '', 'no endpoint', 'give --etcd http://HOST:2379[,…] or DOCKCNI_ETCD_ENDPOINTS');
    for (const e of options.endpoints) {
      if (!/^https?:\/\/[^/\s]+$/.test(e)) throw new InvalidInputError('--etcd', e, 'not an etcd client URL', 'write e.g. http://10.0.0.1:2379 (https:// with --etcd-cacert)');
    }
    const read = (file: string | undefined, flag: string) => {
      if (file === undefined) return undefined;
      try {
        return readFileSync(file);
      } catch (error) {
        throw new InvalidInputError(flag, file, `cannot read it: ${(error as Error).message}`, 'give the path of a PEM file');
      }
    };
    const ca = read(options.cacert, '--etcd-cacert');
    const timeoutMs = options.timeoutMs ?? 5000;
    this.client = new Etcd3({
      hosts: [...options.endpoints],
      ...(ca === undefined ? {} : { credentials: { rootCertificate: ca, privateKey: read(options.key, '--etcd-key'), certChain: read(options.cert, '--etcd-cert') } }),
      // gRPC's own reconnect backoff grows to minutes: a member that comes back is used within seconds.
      grpcOptions: { 'grpc.initial_reconnect_backoff_ms': 250, 'grpc.max_reconnect_backoff_ms': 2000 },
      // Unary calls only: a watch stream has no deadline.
      defaultCallOptions: (context) => (context.isStream ? {} : { deadline: new Date(Date.now() + timeoutMs) }),
    });
  }

  close(): void {
    this.client.close();
  }

  /** Runs a call, turning what means "etcd is not there" into EtcdUnavailableError. */
  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      if (error instanceof DockcniError) throw error;
      throw new EtcdUnavailableError(this.options.endpoints, what, error);
    }
  }

  /** Checks that etcd answers (with quorum: a linearizable read), before anything is changed. */
  async ping(): Promise<void> {
    await this.call('read', () => this.client.get(`${PREFIX}ping`).exec());
  }

  async snapshot(): Promise<Snapshot> {
    const response = await this.call('read the cluster', () => this.client.getAll().prefix(PREFIX).exec());
    return { revision: response.header.revision, ...decode(response.kvs) };
  }

  /**
   * Creates a network if its name is free and its subnet overlaps no other cluster network's, in one
   * transaction with the index every create and remove bumps: two creates racing cannot both pass.
   */
  async createNetwork(network: ClusterNetwork): Promise<void> {
    for (;;) {
      const index = await this.call('read the networks', () => this.client.get(key.networksIndex()).exec());
      const snapshot = await this.snapshot();
      const clash = [...snapshot.networks.values()].find((n) => n.name === network.name || overlaps(n.subnet, network.subnet));
      if (clash?.name === network.name) throw new DockcniError('already-exists', `cluster network ${network.name} already exists (${clash.subnet})`, { fix: 'pick another name, or remove it first (dockcni networks rm)' });
      if (clash) throw new InvalidInputError('--subnet', network.subnet, `overlaps ${clash.subnet} of cluster network ${clash.name}`, 'pick a subnet no cluster network uses');
      if ([...snapshot.networks.values()].some((n) => n.vni === network.vni)) throw new DockcniError('already-exists', `VNI ${network.vni} is taken`, { fix: 'try again' });
      const mod = index.kvs[0]?.mod_revision ?? '0';
      const done = await this.call('create the network', () => this.client.if(key.networksIndex(), 'Mod', '==', mod)
        .and(key.network(network.name), 'Create', '==', 0)
        .then(this.client.put(key.network(network.name)).value(JSON.stringify(network)), this.client.put(key.networksIndex()).value(network.name))
        .commit());
      if (done.succeeded) return;
    }
  }

  /** Removes a network, its blocks and static claims, if it still is the one `expected` (its create revision). */
  async removeNetwork(name: string): Promise<void> {
    await this.call('remove the network', () => this.client.if(key.network(name), 'Create', '>', 0)
      .then(this.client.delete().key(key.network(name)), this.client.delete().prefix(key.blocks(name)), this.client.delete().prefix(key.statics(name)), this.client.delete().prefix(key.names(name)),
        this.client.put(key.networksIndex()).value(`-${name}`))
      .commit());
  }

  /** A lease kept alive by this process from now on. */
  async lease(ttlSeconds: number, what: string): Promise<KeptLease> {
    const lease: Lease = this.client.lease(ttlSeconds, { autoKeepAlive: true });
    const id = await this.call(`grant the ${what} lease`, () => lease.grant());
    let confirmed = Date.now();
    lease.on('keepaliveSucceeded', () => { confirmed = Date.now(); });
    // Errors also come as 'lost'; without a listener an emitter would throw them.
    const lost: ((error: Error) => void)[] = [];
    lease.on('lost', (error) => { for (const fn of lost) fn(error); });
    return {
      id, confirmedAt: () => confirmed, onLost: (fn) => { lost.push(fn); },
      revoke: async () => { await this.call(`revoke the ${what} lease`, () => lease.revoke()); },
      release: () => { lease.release(); },
    };
  }

  /**
   * Registers a host's presence on its lease: refused when another machine (another uid) holds the
   * name and is alive; the same machine (a restarted daemon) takes its key back.
   */
  async registerHost(record: HostRecord, lease: KeptLease): Promise<void> {
    const k = key.host(record.name);
    const current = await this.call('read the host', () => this.client.get(k).exec());
    const kv = current.kvs[0];
    if (kv !== undefined && json<HostRecord>(kv).uid !== record.uid) {
      const other = json<HostRecord>(kv);
      throw new InvalidInputError('--host-name', record.name, `is taken by a live host at ${other.address} (since ${other.since})`, 'give this host another name (--host-name), or stop the other one; its name frees when its presence lease expires');
    }
    const compare = kv === undefined ? this.client.if(k, 'Create', '==', 0) : this.client.if(k, 'Mod', '==', kv.mod_revision);
    const done = await this.call('register the host', () => compare.then(this.client.put(k).value(JSON.stringify(record)).lease(lease.id)).commit());
    if (!done.succeeded) await this.registerHost(record, lease);
  }

  /** Takes a block if nobody holds it: the revision of the write when this host got it. */
  async takeBlock(net: string, block: string, holder: BlockRecord, lease: KeptLease): Promise<string | undefined> {
    const k = key.block(net, block);
    const done = await this.call(`lease block ${block}`, () => this.client.if(key.network(net), 'Create', '>', 0)
      .and(k, 'Create', '==', 0)
      .then(this.client.put(k).value(JSON.stringify(holder)).lease(lease.id)).commit());
    return done.succeeded ? done.header.revision : undefined;
  }

  /**
   * Puts this host's blocks of every network on a new lease (a restarted daemon's), and takes back the
   * ones that expired meanwhile if nobody took them. Returns the blocks it holds now, per network, and
   * the revision of the last write.
   */
  async keepBlocks(held: ReadonlyMap<string, readonly string[]>, holder: BlockRecord, lease: KeptLease): Promise<{ kept: Map<string, string[]>; revision: string }> {
    const kept = new Map<string, string[]>();
    let revision = '0';
    for (const [net, blocks] of held) {
      for (const block of blocks) {
        const k = key.block(net, block);
        const current = (await this.call('read a block', () => this.client.get(k).exec())).kvs[0];
        const ours = current !== undefined && json<BlockRecord>(current).hostUid === holder.hostUid;
        if (current !== undefined && !ours) continue;
        const compare = current === undefined ? this.client.if(k, 'Create', '==', 0) : this.client.if(k, 'Mod', '==', current.mod_revision);
        const done = await this.call(`keep block ${block}`, () => compare.and(key.network(net), 'Create', '>', 0).then(this.client.put(k).value(JSON.stringify(holder)).lease(lease.id)).commit());
        if (done.succeeded) {
          kept.set(net, [...kept.get(net) ?? [], block]);
          revision = done.header.revision;
        }
      }
    }
    return { kept, revision };
  }

  /** Claims a static address cluster-wide: the holder when another container has it, undefined when this one got it. */
  async claimStatic(net: string, ip: string, claim: StaticClaim, lease: KeptLease): Promise<StaticClaim | undefined> {
    const k = key.static(net, ip);
    const done = await this.call(`claim ${ip}`, () => this.client.if(k, 'Create', '==', 0).then(this.client.put(k).value(JSON.stringify(claim)).lease(lease.id)).else(this.client.get(k)).commit());
    if (done.succeeded) return undefined;
    const holder = done.responses[0]?.response_range?.kvs[0];
    const held = holder === undefined ? undefined : json<StaticClaim>(holder);
    // The same container asking again (a restart, a retry) holds it already.
    return held?.containerId === claim.containerId ? undefined : held;
  }

  /** Releases a static address if this container still holds it. */
  async releaseStatic(net: string, ip: string, claim: StaticClaim): Promise<void> {
    const k = key.static(net, ip);
    await this.call(`release ${ip}`, () => this.client.if(k, 'Value', '==', JSON.stringify(claim)).then(this.client.delete().key(k)).commit());
  }

  /** Where this host is and when it was there: kept after its presence expires. */
  async putSeen(host: string, record: SeenRecord): Promise<void> {
    await this.call('note the host as seen', () => this.client.put(key.seen(host)).value(JSON.stringify(record)).exec());
  }

  async putName(net: string, record: NameRecord, lease: KeptLease): Promise<void> {
    await this.call('publish names', () => this.client.put(key.name(net, record.host, record.containerId)).value(JSON.stringify(record)).lease(lease.id).exec());
  }

  async deleteName(net: string, host: string, containerId: string): Promise<void> {
    await this.call('withdraw names', () => this.client.delete().key(key.name(net, host, containerId)).exec());
  }

  /** Every key of a host (blocks, statics, names), once its presence is gone: `cluster forget`. */
  async forgetHost(host: string, snapshot: Snapshot): Promise<number> {
    const keys = [
      ...[...snapshot.blocks].flatMap(([net, blocks]) => [...blocks].filter(([, b]) => b.host === host).map(([block]) => key.block(net, block))),
      ...[...snapshot.statics].flatMap(([net, claims]) => [...claims].filter(([, c]) => c.host === host).map(([ip]) => key.static(net, ip))),
      ...[...snapshot.names].flatMap(([net, names]) => [...names.values()].filter((n) => n.host === host).map((n) => key.name(net, host, n.containerId))),
    ];
    // Only while the host has no presence: a host that came back meanwhile keeps everything.
    const done = await this.call(`forget ${host}`, () => this.client.if(key.host(host), 'Create', '==', 0).then(...keys.map((k) => this.client.delete().key(k)), this.client.delete().key(key.seen(host))).commit());
    if (!done.succeeded) throw new DockcniError('already-exists', `host ${host} is alive again: nothing forgotten`, { fix: 'forget only a host whose presence has expired (dockcni cluster status says lost)' });
    return keys.length;
  }

  /**
   * Follows every change under the prefix from a revision on: `changed` runs after each batch. The
   * client reconnects on its own and resumes where it stopped.
   */
  async watch(fromRevision: string, changed: (events: readonly WatchEvent[]) => void, onError: (error: Error) => void): Promise<{ cancel(): Promise<void> }> {
    const watcher: Watcher = await this.call('watch the cluster', () => this.client.watch().prefix(PREFIX).startRevision(String(BigInt(fromRevision) + 1n)).create());
    watcher.on('data', (res) => changed((res.events ?? []).map((e) => ({ type: e.type === 'Delete' ? 'delete' : 'put', kv: e.kv }))));
    watcher.on('error', onError);
    return { cancel: async () => { await watcher.cancel(); } };
  }
}

export interface WatchEvent {
  readonly type: 'put' | 'delete';
  readonly kv: IKeyValue;
}

type Maps = { -readonly [K in keyof Omit<Snapshot, 'revision'>]: Snapshot[K] extends ReadonlyMap<string, ReadonlyMap<string, infer V>> ? Map<string, Map<string, V>> : Snapshot[K] extends ReadonlyMap<string, infer V> ? Map<string, V> : never };

/** Applies one key-value (put) or its removal (delete) to the snapshot's maps. */
function apply(maps: Maps, type: 'put' | 'delete', kv: IKeyValue): void {
  const k = kv.key.toString('utf8');
  const nested = <T>(map: Map<string, Map<string, T>>, outer: string, inner: string, value: T | undefined) => {
    const m = map.get(outer) ?? map.set(outer, new Map()).get(outer)!;
    if (value === undefined) m.delete(inner);
    else m.set(inner, value);
    if (m.size === 0) map.delete(outer);
  };
  const value = <T>() => (type === 'put' ? json<T>(kv) : undefined);
  if (k.startsWith(key.networks())) {
    const name = rest(kv, key.networks());
    const v = value<ClusterNetwork>();
    if (v === undefined) maps.networks.delete(name);
    else maps.networks.set(name, v);
  } else if (k.startsWith(key.hosts())) {
    const name = rest(kv, key.hosts());
    const v = value<HostRecord>();
    if (v === undefined) maps.hosts.delete(name);
    else maps.hosts.set(name, v);
  } else if (k.startsWith(key.blocks())) {
    const [net = '', block = ''] = rest(kv, key.blocks()).split('/');
    nested(maps.blocks, net, block.replace(/-(\d+)$/, '/$1'), value<BlockRecord>());
  } else if (k.startsWith(key.statics())) {
    const [net = '', ip = ''] = rest(kv, key.statics()).split('/');
    nested(maps.statics, net, ip, value<StaticClaim>());
  } else if (k.startsWith(key.names())) {
    const [net = '', host = '', id = ''] = rest(kv, key.names()).split('/');
    nested(maps.names, net, `${host}/${id}`, value<NameRecord>());
  } else if (k.startsWith(key.seenAll())) {
    const name = rest(kv, key.seenAll());
    const v = value<SeenRecord>();
    if (v === undefined) maps.seen.delete(name);
    else maps.seen.set(name, v);
  }
}

/** The snapshot's maps from etcd's key-values. */
export function decode(kvs: readonly IKeyValue[]): Maps {
  const maps: Maps = { networks: new Map(), hosts: new Map(), blocks: new Map(), statics: new Map(), names: new Map(), seen: new Map() };
  for (const kv of kvs) apply(maps, 'put', kv);
  return maps;
}

/**
 * What this host knows of the cluster: a snapshot, kept current by the watch's events. Every decision
 * of the agent reads it; nothing waits for etcd to answer.
 */
export class ClusterView {
  private readonly maps: Maps;
  revision: string;

  constructor(snapshot: Snapshot) {
    this.maps = { networks: new Map(snapshot.networks), hosts: new Map(snapshot.hosts), blocks: new Map([...snapshot.blocks].map(([k, v]) => [k, new Map(v)])),
      statics: new Map([...snapshot.statics].map(([k, v]) => [k, new Map(v)])), names: new Map([...snapshot.names].map(([k, v]) => [k, new Map(v)])), seen: new Map(snapshot.seen) };
    this.revision = snapshot.revision;
  }

  apply(events: readonly WatchEvent[]): void {
    for (const e of events) {
      apply(this.maps, e.type, e.kv);
      if (BigInt(e.kv.mod_revision) > BigInt(this.revision)) this.revision = e.kv.mod_revision;
    }
  }

  get networks(): ReadonlyMap<string, ClusterNetwork> { return this.maps.networks; }
  get hosts(): ReadonlyMap<string, HostRecord> { return this.maps.hosts; }
  blocks(net: string): ReadonlyMap<string, BlockRecord> { return this.maps.blocks.get(net) ?? new Map(); }
  statics(net: string): ReadonlyMap<string, StaticClaim> { return this.maps.statics.get(net) ?? new Map(); }
  names(net: string): ReadonlyMap<string, NameRecord> { return this.maps.names.get(net) ?? new Map(); }
}
