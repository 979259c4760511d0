import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, rmSync, unlinkSync, watch as watchDir, writeFileSync, type FSWatcher } from 'node:fs';
import { createServer, type Server } from 'node:http';
import path from 'node:path';
import { loadConfDir } from '../cni/conf-dir.js';
import { describeError, DockcniError, fixOf, InvalidInputError } from '../errors.js';
import { readTextIfExistsSync, writeFileAtomic } from '../fs-atomic.js';
import { succeed, type HostCommands } from '../host-commands.js';
import type { Logger } from '../daemon/logger.js';
import { CONTAINER_ID, holdsNetns, type AttachmentRecord } from '../state/attachment.js';
import type { AttachmentStore } from '../state/attachment-store.js';
import { agentSocket, type AgentError, type AgentRequest } from '../wiring/agent-client.js';
import { StaticTakenError, type ClusterLink, type StaticHolder } from '../wiring/cluster-link.js';
import type { RemoteName } from '../wiring/hosts-book.js';
import { listedNames } from '../wiring/host-names.js';
import { remoteNamesFile } from '../wiring/remote-names.js';
import { CLUSTER_CREATED_BY, clusterConflist, clusterConflistName, usage } from './conflist.js';
import { DataPath, type Desired, type Unreachable } from './datapath.js';
import { ClusterView, EtcdUnavailableError, type EtcdCluster, type KeptLease } from './etcd.js';
import { key, pickFreeBlock, vtepMac, type ClusterNetwork, type HostRecord, type NameRecord } from './model.js';

export interface AgentOptions {
  readonly etcd: EtcdCluster;
  /** This host: its name in the cluster, its underlay address and interface (and that interface's MTU). */
  readonly host: { readonly name: string; readonly address: string; readonly underlayIf: string; readonly underlayMtu: number };
  readonly hostTtlSeconds: number;
  readonly blockTtlSeconds: number;
  readonly confDir: string;
  readonly stateDir: string;
  readonly runDir: string;
  readonly commands: HostCommands;
  readonly store: Pick<AttachmentStore, 'list' | 'read' | 'dir'>;
  readonly log: Logger;
  /** The hosts files of local containers on these networks are rewritten (remote names changed). */
  readonly namesChanged: (networks: readonly string[]) => Promise<void>;
}

/** A block this full (used of capacity) makes the host take another before it is needed. */
const TAKE_AHEAD = 0.8;
/** A static claim with no record on its host is released once it is this old (its wiring has ended). */
const STALE_CLAIM_MS = 60_000;
/** What this host keeps of its blocks on disk: a daemon that starts while etcd is away works from it. */
interface SavedBlocks {
  readonly held: Readonly<Record<string, string[]>>;
  /** Date.now() when etcd last confirmed the block lease. */
  readonly confirmedAt: number;
}

/** How often the block lease's confirmation time is written to disk, at most. */
const CONFIRM_SAVE_MS = 60_000;
/** How long a stopping agent waits for etcd, per call. */
const STOP_GRACE_MS = 2000;
/** How often names are published and the lease confirmations looked at, at most. */
const TICK_MS = 1000;
/**
 * Other hosts' names arriving are gathered this long before this host's names file is rewritten: a
 * burst of starts elsewhere costs one rewrite, not one per container.
 */
const NAMES_GATHER_MS = 100;

/** One container's names on one cluster network, as published. */
interface NamesEntry { readonly net: string; readonly record: NameRecord; readonly text: string }

/**
 * The daemon's half of a cluster: the only process on a host with an etcd client. It registers the
 * host (presence, on a short lease), holds its blocks (on a long lease) and writes the conflist each
 * cluster network gets on this host, keeps the data path towards the other hosts (from a watch), puts
 * this host's containers' names into etcd and the other hosts' into a file the hosts files are written
 * from, and answers the wiring's requests (a block, a static address) on a local socket.
 */
export class ClusterAgent implements ClusterLink {
  private view: ClusterView | undefined;
  private presence: KeptLease | undefined;
  private blockLease: KeptLease | undefined;
  private readonly uid: string;
  private readonly record: HostRecord;
  private readonly datapath: DataPath;
  /** net → this host's blocks, in the order taken (the first gives the bridge its address). */
  private held = new Map<string, string[]>();
  /** The etcd revision at which this host last wrote its hold on each network's blocks: a view older than it has not seen that write yet. */
  private readonly heldAt = new Map<string, bigint>();
  private fenced = false;
  /** Without a block lease (etcd away since this daemon started): when etcd last confirmed the blocks, from disk. */
  private lastConfirmed = 0;
  /** The confirmation time last written to disk (rewritten at most every CONFIRM_SAVE_MS). */
  private savedConfirmed = 0;
  /** Joining in the background: etcd did not answer when the daemon started. */
  private joining: Promise<void> | undefined;
  private registered = false;
  /** What this host has in etcd's names, by key: only changes are written. */
  private readonly published = new Map<string, string>();
  private watcher: { cancel(): Promise<void> } | undefined;
  private server: Server | undefined;
  private records: FSWatcher | undefined;
  /** This host's records as last read; only the files the watch names are read again. */
  private readonly recordCache = new Map<string, AttachmentRecord>();
  private recordsDirty: Set<string> | 'all' = 'all';
  private readonly namesByRecord = new WeakMap<AttachmentRecord, { networks: string; entries: NamesEntry[] }>();
  private timer: NodeJS.Timeout | undefined;
  private reconciling: Promise<void> | undefined;
  private again = false;
  private namesRound: NodeJS.Timeout | undefined;
  private stopping = false;
  private readonly blockTurns = new Map<string, Promise<void>>();
  /** Per network, the data path last applied (as JSON): a round with nothing new changes nothing. */
  private readonly applied = new Map<string, string>();
  /** The chain of data path rounds (see exclusive()). */
  private turn: Promise<void> = Promise.resolve();
  /** The last round left something undone (etcd was away): the next tick runs another. */
  private unfinished = false;
  /** When `seen/<host>` was last written (every half host TTL). */
  private seenAt = 0;

  constructor(private readonly o: AgentOptions) {
    this.uid = this.hostUid();
    this.record = { name: o.host.name, uid: this.uid, address: o.host.address, vtepMac: vtepMac(this.uid), underlayMtu: o.host.underlayMtu, since: new Date().toISOString() };
    this.datapath = new DataPath(o.commands);
  }

  /** This machine's identity in the cluster, kept in the state dir: a restarted daemon is the same host. */
  private hostUid(): string {
    const file = path.join(this.o.stateDir, 'cluster', 'host-uid');
    const known = readTextIfExistsSync(file)?.trim();
    if (known !== undefined && known !== '') return known;
    const uid = randomUUID();
    mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    writeFileSync(file, `${uid}\n`, { mode: 0o600 });
    return uid;
  }

  private get blocksFile(): string { return path.join(this.o.stateDir, 'cluster', 'blocks.json'); }
  private get ipamDir(): string { return path.join(this.o.stateDir, 'cluster', 'ipam'); }

  /**
   * Joins the cluster. A host that never has fails here, before anything changed on the host or in
   * etcd (a wrong endpoint, a taken name). One that has (its blocks are on disk) starts without etcd
   * when etcd does not answer: its containers keep their data path, it wires from the blocks it holds
   * (fenced once their lease may have expired), and joins when etcd is back.
   */
  async start(): Promise<void> {
    const saved = this.savedBlocks();
    try {
      await this.join();
    } catch (error) {
      await this.leaveHalfJoined();
      if (!(error instanceof EtcdUnavailableError) || saved === undefined) {
        await this.stop();
        throw error;
      }
      this.held = new Map(Object.entries(saved.held));
      this.lastConfirmed = saved.confirmedAt;
      this.o.log.log('warn', 'cluster: etcd does not answer; working from this host\'s blocks until it does', { error: describeError(error), blocks: [...this.held.values()].flat().join(',') || '-' });
      this.joining = this.joinWhenEtcdAnswers();
    }
    await this.serve();
    mkdirSync(this.o.store.dir, { recursive: true, mode: 0o700 });
    this.records = watchDir(this.o.store.dir, (_event, file) => {
      // A temporary file of an atomic write is followed by the rename that names the record.
      if (typeof file === 'string' && !(file.endsWith('.json') && CONTAINER_ID.test(file.slice(0, -5)))) return;
      if (typeof file !== 'string') this.recordsDirty = 'all';
      else if (this.recordsDirty !== 'all') this.recordsDirty.add(file.slice(0, -5));
      this.schedule();
    });
    this.timer = setInterval(() => { this.tick(); }, TICK_MS);
    if (this.view !== undefined) {
      await this.exclusive(() => this.reconcile());
      this.o.log.log('info', 'joined the cluster', { host: this.record.name, address: this.record.address, networks: [...this.view.networks.keys()].join(',') || '-' });
    }
  }

  /** A join that failed half-way: its leases hold nothing yet; one etcd cannot revoke now expires on its own. */
  private async leaveHalfJoined(): Promise<void> {
    for (const lease of [this.presence, this.blockLease]) {
      await lease?.revoke().catch((revoke: unknown) => this.o.log.log('debug', 'cluster: a lease is left to expire', { error: describeError(revoke) }));
    }
    await this.watcher?.cancel().catch((cancel: unknown) => this.o.log.log('debug', 'cluster: the watch ended with an error', { error: describeError(cancel) }));
    this.presence = undefined;
    this.blockLease = undefined;
    this.watcher = undefined;
    this.view = undefined;
  }

  private async joinWhenEtcdAnswers(): Promise<void> {
    for (let delay = 1000; !this.stopping; delay = Math.min(delay * 2, 10_000)) {
      await new Promise((resolve) => { setTimeout(resolve, delay).unref(); });
      if (this.stopping) return;
      try {
        await this.join();
        this.o.log.log('info', 'joined the cluster: etcd answers again', { host: this.record.name });
        this.schedule();
        return;
      } catch (error) {
        await this.leaveHalfJoined();
        this.o.log.log(error instanceof EtcdUnavailableError ? 'debug' : 'error', 'cluster: cannot join yet', { error: describeError(error), fix: fixOf(error), retryInMs: delay });
      }
    }
  }

  /** What this host last wrote of its blocks: undefined for a host that never joined. */
  private savedBlocks(): SavedBlocks | undefined {
    const text = readTextIfExistsSync(this.blocksFile);
    return text === undefined ? undefined : JSON.parse(text) as SavedBlocks;
  }

  private async join(): Promise<void> {
    await this.o.etcd.ping();
    this.presence = await this.o.etcd.lease(this.o.hostTtlSeconds, 'presence');
    await this.o.etcd.registerHost(this.record, this.presence);
    this.registered = true;
    await this.noteSeen();
    this.blockLease = await this.o.etcd.lease(this.o.blockTtlSeconds, 'block');
    this.presence.onLost((error) => { void this.rejoin('presence', error); });
    this.blockLease.onLost((error) => { void this.rejoin('block', error); });
    const snapshot = await this.o.etcd.snapshot();
    const view = new ClusterView(snapshot);
    // Blocks this host held before (its record in etcd, or its own list if they expired while it was away).
    const held = new Map<string, string[]>(Object.entries(this.savedBlocks()?.held ?? {}));
    for (const net of snapshot.networks.keys()) {
      for (const [block, holder] of view.blocks(net)) if (holder.hostUid === this.uid && !(held.get(net) ?? []).includes(block)) held.set(net, [...held.get(net) ?? [], block]);
    }
    await this.keepBlocks(held, this.blockLease);
    this.watcher = await this.o.etcd.watch(snapshot.revision, (events) => {
      this.view?.apply(events);
      // Hosts noting when they were last seen change nothing here; other hosts' names change only the names file.
      const keys = events.map((e) => e.kv.key.toString('utf8')).filter((k) => !k.startsWith(key.seenAll()));
      if (keys.some((k) => !k.startsWith(key.names()))) this.schedule();
      else if (keys.length > 0) this.scheduleNames();
    }, (error) => this.o.log.log('warn', 'cluster watch: etcd error; the client reconnects', { error: describeError(error) }));
    this.view = view;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.timer);
    clearTimeout(this.namesRound);
    this.records?.close();
    // What needs etcd on the way out gets a few seconds: a daemon stops even when etcd has no quorum.
    const briefly = (what: string, work: Promise<unknown>) => Promise.race([
      work.catch((error: unknown) => this.o.log.log('debug', `cluster: ${what} failed on the way out`, { error: describeError(error) })),
      new Promise((resolve) => { setTimeout(resolve, STOP_GRACE_MS).unref(); }),
    ]);
    await briefly('joining', this.joining ?? Promise.resolve());
    await briefly('ending the watch', this.watcher?.cancel() ?? Promise.resolve());
    await new Promise<void>((resolve) => { if (this.server) this.server.close(() => resolve()); else resolve(); });
    await this.reconciling;
    await this.turn;
    // Only a host that holds its name: one refused for a taken name must not write over its holder's.
    if (this.registered) await briefly('noting this host as seen', this.noteSeen());
    // The leases are left to expire, not revoked: a restart within the host TTL keeps this host's routes
    // and names on its peers, and within the block TTL its blocks.
    this.presence?.release();
    this.blockLease?.release();
    this.o.etcd.close();
  }

  private blockHolder() {
    return { host: this.record.name, hostUid: this.uid, leasedAt: new Date().toISOString() };
  }

  private async keepBlocks(held: ReadonlyMap<string, readonly string[]>, lease: KeptLease): Promise<void> {
    const { kept, revision } = await this.o.etcd.keepBlocks(held, this.blockHolder(), lease);
    this.held = kept;
    for (const net of kept.keys()) this.heldAt.set(net, BigInt(revision));
    await this.saveBlocks();
  }

  private async saveBlocks(): Promise<void> {
    const confirmed = this.blockLease?.confirmedAt() ?? this.lastConfirmed;
    const saved: SavedBlocks = { held: Object.fromEntries(this.held), confirmedAt: confirmed };
    this.savedConfirmed = confirmed;
    await writeFileAtomic(this.blocksFile, `${JSON.stringify(saved)}\n`);
  }

  /** A lease was lost (etcd away past its TTL): a new one, and this host's keys put back on it. */
  private async rejoin(which: 'presence' | 'block', error: Error): Promise<void> {
    if (this.stopping) return;
    this.o.log.log('warn', `cluster: the ${which} lease was lost; taking a new one`, { error: describeError(error) });
    for (let delay = 500; !this.stopping; delay = Math.min(delay * 2, 5000)) {
      try {
        if (which === 'presence') {
          this.presence = await this.o.etcd.lease(this.o.hostTtlSeconds, 'presence');
          this.presence.onLost((e) => { void this.rejoin('presence', e); });
          await this.o.etcd.registerHost(this.record, this.presence);
          this.published.clear();
        } else {
          this.blockLease = await this.o.etcd.lease(this.o.blockTtlSeconds, 'block');
          this.blockLease.onLost((e) => { void this.rejoin('block', e); });
          await this.keepBlocks(this.held, this.blockLease);
        }
        this.schedule();
        return;
      } catch (retry) {
        this.o.log.log('warn', `cluster: cannot renew the ${which} lease yet`, { error: describeError(retry), retryInMs: delay });
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  /** Runs a reconcile soon; one running is followed by one more, never two at once. */
  private schedule(): void {
    if (this.stopping) return;
    if (this.reconciling !== undefined) {
      this.again = true;
      return;
    }
    this.reconciling = this.exclusive(() => this.reconcile()).catch((error: unknown) => {
      this.unfinished = true;
      this.o.log.log('error', 'cluster: reconcile failed', { error: describeError(error), fix: fixOf(error) });
    }).finally(() => {
      this.reconciling = undefined;
      if (this.again) {
        this.again = false;
        this.schedule();
      }
    });
  }

  /** The names file alone, once the names arriving now are in: no records read, no data path looked at. */
  private scheduleNames(): void {
    if (this.stopping || this.namesRound !== undefined) return;
    this.namesRound = setTimeout(() => {
      this.namesRound = undefined;
      // A full round that is running or queued writes the names file too.
      if (this.reconciling !== undefined) {
        this.again = true;
        return;
      }
      const view = this.view;
      if (view === undefined) return;
      this.exclusive(() => this.writeRemoteNames(view)).catch((error: unknown) => {
        this.o.log.log('error', 'cluster: could not write the other hosts\' names', { error: describeError(error) });
        this.schedule();
      });
    }, NAMES_GATHER_MS);
  }

  /** The data path is changed by one round at a time: a reconcile, or a health check's repair. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.turn.then(fn);
    this.turn = run.then(() => undefined, () => undefined);
    return run;
  }

  /** Where and when this host was last seen: what `cluster status` shows of it once it is lost. */
  private async noteSeen(): Promise<void> {
    this.seenAt = Date.now();
    await this.o.etcd.putSeen(this.record.name, { address: this.record.address, lastSeen: new Date().toISOString() });
  }

  /** Fencing: blocks whose lease etcd has not confirmed within its TTL (less a margin) are given out no more. */
  private tick(): void {
    if (Date.now() - this.seenAt > this.o.hostTtlSeconds * 500) {
      this.noteSeen().catch((error: unknown) => {
        this.seenAt = 0;
        this.o.log.log('debug', 'cluster: could not note this host as seen', { error: describeError(error) });
      });
    }
    const confirmed = this.blockLease?.confirmedAt() ?? this.lastConfirmed;
    if (confirmed - this.savedConfirmed > CONFIRM_SAVE_MS) {
      this.saveBlocks().catch((error: unknown) => this.o.log.log('warn', 'cluster: could not write this host\'s blocks to disk', { error: describeError(error) }));
    }
    const margin = Math.min(this.o.blockTtlSeconds * 250, 60_000);
    const fenced = Date.now() - confirmed > this.o.blockTtlSeconds * 1000 - margin;
    if (fenced !== this.fenced) {
      this.fenced = fenced;
      this.o.log.log(fenced ? 'warn' : 'info', fenced ? 'cluster: etcd has not confirmed this host\'s blocks in time: no address is given out until it has' : 'cluster: blocks confirmed again: addresses are given out', { host: this.record.name });
      this.schedule();
    }
    // A round that could not finish (etcd away) is tried again; otherwise rounds follow changes only.
    if (this.unfinished) this.schedule();
  }

  /** This host's records: a container start re-reads its own record, not every host's record. */
  private async localRecords(all = false): Promise<AttachmentRecord[]> {
    const dirty = all ? 'all' : this.recordsDirty;
    this.recordsDirty = new Set();
    if (dirty === 'all') {
      this.recordCache.clear();
      for (const r of await this.o.store.list()) this.recordCache.set(r.containerId, r);
    } else {
      try {
        for (const id of dirty) {
          const r = await this.o.store.read(id);
          if (r === undefined) this.recordCache.delete(id);
          else this.recordCache.set(id, r);
        }
      } catch (error) {
        // A file that does not parse: the full scan leaves such files out, as every reader of the store does.
        this.o.log.log('debug', 'cluster: a record could not be read alone; reading them all', { error: describeError(error) });
        return this.localRecords(true);
      }
    }
    return [...this.recordCache.values()];
  }

  /** Everything this host derives from the view: conflists, data path, names both ways, stale claims. */
  private async reconcile(): Promise<void> {
    const view = this.view;
    if (view === undefined) {
      await this.markFenced();
      return;
    }
    this.unfinished = false;
    const records = await this.localRecords();
    for (const network of view.networks.values()) {
      try {
        await this.reconcileNetwork(view, network, records);
      } catch (error) {
        this.unfinished = true;
        this.o.log.log('error', `cluster network ${network.name}: could not set up this host`, { error: describeError(error), fix: fixOf(error) });
      }
    }
    await this.removeGone(view);
    await this.publishNames(view, records);
    await this.writeRemoteNames(view);
  }

  private async reconcileNetwork(view: ClusterView, network: ClusterNetwork, records: readonly AttachmentRecord[]): Promise<void> {
    // Blocks etcd no longer says are this host's (forgotten while it was away) are not allocated from;
    // a block this host took after the view's revision is not in the view yet, and stays.
    const seenOwnWrite = BigInt(view.revision) >= (this.heldAt.get(network.name) ?? 0n);
    const mine = (this.held.get(network.name) ?? []).filter((b) => {
      const holder = view.blocks(network.name).get(b);
      return holder === undefined ? !seenOwnWrite : holder.hostUid === this.uid;
    });
    if (mine.length !== (this.held.get(network.name) ?? []).length) {
      this.held.set(network.name, mine);
      await this.saveBlocks();
    }
    if (mine.length === 0 && !this.fenced) {
      await this.takeBlock(network.name).catch((error: unknown) => {
        this.unfinished = true;
        this.o.log.log('warn', `cluster network ${network.name}: no block for this host yet`, { error: describeError(error) });
      });
    }
    else if (!this.fenced) await this.takeAheadIfFull(network, records);
    await this.writeConflist(network);
    // Applied when what it should be changed; drift (someone deleting a route) is the health check's to find and say.
    const desired = this.desired(view, network);
    const text = JSON.stringify(desired);
    if (this.applied.get(network.name) !== text) {
      this.applied.delete(network.name);
      this.sayUnreachable(network, await this.datapath.apply(desired));
      this.applied.set(network.name, text);
    }
    await this.releaseStaleClaims(view, network, records);
  }

  /** A block nearly full: the next is taken now, off the path of the container that would need it. */
  private async takeAheadIfFull(network: ClusterNetwork, records: readonly AttachmentRecord[]): Promise<void> {
    const blocks = this.held.get(network.name) ?? [];
    const dir = path.join(this.ipamDir, network.name);
    const reserved = existsSync(dir) ? readdirSync(dir).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f)) : [];
    const { used, capacity } = usage(network, blocks, reserved);
    if (capacity > 0 && used / capacity >= TAKE_AHEAD) {
      this.o.log.log('info', `cluster network ${network.name}: blocks ${Math.round((used / capacity) * 100)}% used, taking another`, { containers: records.length });
      await this.takeBlock(network.name).catch((error: unknown) => this.o.log.log('warn', `cluster network ${network.name}: could not take another block`, { error: describeError(error) }));
    }
  }

  private sayUnreachable(network: ClusterNetwork, unreachable: readonly Unreachable[]): void {
    for (const u of unreachable) {
      this.o.log.log('error', `cluster network ${network.name}: host ${u.host} (${u.address}) is reached through the router ${u.via}, and host-gw routes containers' traffic to the host itself; its containers are not reachable from here`,
        { fix: 'put the hosts on one link, or use a VXLAN network: dockcni networks create --scope cluster --backend vxlan' });
    }
  }

  private desired(view: ClusterView, network: ClusterNetwork): Desired {
    const remotes = [...view.hosts.values()].filter((h) => h.uid !== this.uid).map((h) => ({
      record: h,
      blocks: [...view.blocks(network.name)].filter(([, b]) => b.hostUid === h.uid).map(([block]) => block).sort(),
      statics: [...view.statics(network.name)].filter(([, c]) => c.hostUid === h.uid).map(([ip]) => ip),
    }));
    return { network, local: this.record, underlayIf: this.o.host.underlayIf, blocks: this.held.get(network.name) ?? [], remotes };
  }

  private async writeConflist(network: ClusterNetwork): Promise<void> {
    const file = path.join(this.o.confDir, clusterConflistName(network.name));
    const text = `${JSON.stringify(clusterConflist(network, this.held.get(network.name) ?? [], this.o.host.underlayMtu, this.ipamDir, this.fenced), null, 2)}\n`;
    if (readTextIfExistsSync(file) === text) return;
    // Read by every CNI runtime of the host, like the conflists `networks create` writes.
    await writeFileAtomic(file, text, { file: 0o644, dir: 0o755 });
  }

  /** Before this daemon has joined (etcd away since it started): the conflists on disk say whether their blocks are fenced. */
  private async markFenced(): Promise<void> {
    for (const list of loadConfDir(this.o.confDir).networks) {
      const raw = JSON.parse(list.bytes.toString('utf8')) as { dockcni?: { createdBy?: string; cluster?: { fenced?: boolean } } };
      const cluster = raw.dockcni?.cluster;
      if (raw.dockcni?.createdBy !== CLUSTER_CREATED_BY || cluster === undefined || cluster.fenced === this.fenced) continue;
      cluster.fenced = this.fenced;
      await writeFileAtomic(list.source, `${JSON.stringify(raw, null, 2)}\n`, { file: 0o644, dir: 0o755 });
    }
  }

  /** Networks removed from etcd: their conflist, data path, rules and reservations go from this host. */
  private async removeGone(view: ClusterView): Promise<void> {
    for (const list of loadConfDir(this.o.confDir).networks) {
      const raw = JSON.parse(list.bytes.toString('utf8')) as { dockcni?: { createdBy?: string; cluster?: { subnet: string } } };
      if (raw.dockcni?.createdBy !== CLUSTER_CREATED_BY || view.networks.has(list.name)) continue;
      const gone: ClusterNetwork = { name: list.name, subnet: raw.dockcni.cluster?.subnet ?? '0.0.0.0/32', ipRange: '0.0.0.0/32', blockSize: 32, backend: 'vxlan', vni: 0, createdAt: '' };
      await this.datapath.remove(gone, this.o.host.underlayIf);
      await this.datapath.remove({ ...gone, backend: 'host-gw' }, this.o.host.underlayIf);
      unlinkSync(list.source);
      rmSync(path.join(this.ipamDir, list.name), { recursive: true, force: true });
      this.held.delete(list.name);
      this.applied.delete(list.name);
      await this.saveBlocks();
      this.o.log.log('info', `cluster network ${list.name} was removed: its conflist, links and rules on this host are gone`);
    }
  }

  /** A claim this host made whose container it no longer has a record of (its release failed then). */
  private async releaseStaleClaims(view: ClusterView, network: ClusterNetwork, records: readonly AttachmentRecord[]): Promise<void> {
    for (const [ip, claim] of view.statics(network.name)) {
      if (claim.hostUid !== this.uid || records.some((r) => r.containerId === claim.containerId && holdsNetns(r))) continue;
      if (Date.now() - Date.parse(claim.claimedAt) < STALE_CLAIM_MS) continue;
      await this.o.etcd.releaseStatic(network.name, ip, claim);
      this.o.log.log('info', `cluster network ${network.name}: released ${ip}, claimed by container ${claim.container} which is gone`);
    }
  }

  /** This host's wired containers on cluster networks, into etcd (only what changed), on the presence lease. */
  private async publishNames(view: ClusterView, records: readonly AttachmentRecord[]): Promise<void> {
    const presence = this.presence;
    if (presence === undefined) return;
    const wanted = new Map<string, NamesEntry>();
    for (const r of records.filter(holdsNetns)) for (const entry of this.namesOf(r, view)) wanted.set(`${entry.net}/${r.containerId}`, entry);
    try {
      for (const [k, { net, record, text }] of wanted) {
        if (this.published.get(k) === text) continue;
        await this.o.etcd.putName(net, record, presence);
        this.published.set(k, text);
      }
      for (const k of [...this.published.keys()]) {
        if (wanted.has(k)) continue;
        const [net = '', id = ''] = k.split('/');
        await this.o.etcd.deleteName(net, this.record.name, id);
        this.published.delete(k);
      }
    } catch (error) {
      // Published on a later round: etcd is away, running containers are not affected.
      if (!(error instanceof EtcdUnavailableError)) throw error;
      this.unfinished = true;
    }
  }

  /** A record's names per cluster network, worked out once per record read (the cache keeps the object). */
  private namesOf(r: AttachmentRecord, view: ClusterView): NamesEntry[] {
    const networks = [...view.networks.keys()].join(',');
    const known = this.namesByRecord.get(r);
    if (known?.networks === networks) return known.entries;
    const entries = r.networks.filter((a) => a.state === 'wired' && view.networks.has(a.network)).map((a) => {
      const record: NameRecord = { host: this.record.name, containerId: r.containerId, names: listedNames(r, a, new Set()), addresses: a.addresses.map((x) => x.split('/')[0] ?? x) };
      return { net: a.network, record, text: JSON.stringify(record) };
    });
    this.namesByRecord.set(r, { networks, entries });
    return entries;
  }

  /** The other hosts' containers, for this host's hosts files: written when they change, then the files. */
  private async writeRemoteNames(view: ClusterView): Promise<void> {
    const all: Record<string, RemoteName[]> = {};
    const alive = new Set([...view.hosts.values()].map((h) => h.name));
    for (const net of view.networks.keys()) {
      all[net] = [...view.names(net).values()].filter((n) => n.host !== this.record.name && alive.has(n.host)).map((n) => ({ names: n.names, addresses: n.addresses }));
    }
    const file = remoteNamesFile(this.o.runDir);
    const text = `${JSON.stringify(all)}\n`;
    const before = readTextIfExistsSync(file);
    if (before === text) return;
    await writeFileAtomic(file, text);
    const old = JSON.parse(before ?? '{}') as Record<string, RemoteName[]>;
    const changed = Object.keys({ ...old, ...all }).filter((net) => JSON.stringify(old[net] ?? []) !== JSON.stringify(all[net] ?? []));
    if (changed.length > 0) await this.o.namesChanged(changed);
  }

  /** The data path of every network, checked (and with `repair`, set right): what was missing, per network. */
  async check(repair: boolean): Promise<{ network: string; missing: string[] }[]> {
    return this.exclusive(async () => {
      const view = this.view;
      if (view === undefined) return [];
      const out: { network: string; missing: string[] }[] = [];
      for (const network of view.networks.values()) {
        const d = this.desired(view, network);
        const missing = await this.datapath.check(d);
        if (missing.length === 0) continue;
        if (repair) {
          this.applied.delete(network.name);
          this.sayUnreachable(network, await this.datapath.apply(d));
          this.applied.set(network.name, JSON.stringify(d));
        }
        out.push({ network: network.name, missing });
      }
      return out;
    });
  }

  // ClusterLink: what the wiring asks for.

  async takeBlock(network: string): Promise<void> {
    // One at a time per network: a burst of containers finding the blocks full takes one block, not ten.
    const previous = this.blockTurns.get(network) ?? Promise.resolve();
    const before = (this.held.get(network) ?? []).length;
    const turn = previous.catch(() => undefined).then(() => ((this.held.get(network) ?? []).length > before ? undefined : this.takeOneBlock(network)));
    this.blockTurns.set(network, turn);
    await turn;
  }

  private async takeOneBlock(network: string): Promise<void> {
    const view = this.view;
    const lease = this.blockLease;
    const net = view?.networks.get(network);
    if (view === undefined || lease === undefined) throw this.notJoined(`take a block of ${network}`);
    if (net === undefined) throw new DockcniError('network-not-found', `no cluster network ${network} in etcd`, { fix: 'see `dockcni networks ls`' });
    if (this.fenced) throw new DockcniError('cluster-fenced', `cluster network ${network}: this host's blocks are not confirmed by etcd: no new block until they are`, { fix: 'check the etcd members (etcdctl endpoint health)' });
    const tried = new Set<string>();
    for (;;) {
      const block = pickFreeBlock(net, new Set(view.blocks(network).keys()), tried);
      if (block === undefined) {
        throw new DockcniError('already-exists', `cluster network ${network} has no free block left in ${net.ipRange} (blocks of /${net.blockSize})`, { fix: 'remove containers, or create a network with a larger --ip-range or smaller blocks' });
      }
      tried.add(block);
      // Another host may have taken it since the view last heard: the transaction decides.
      const revision = await this.o.etcd.takeBlock(network, block, this.blockHolder(), lease);
      if (revision !== undefined) {
        this.held.set(network, [...this.held.get(network) ?? [], block]);
        this.heldAt.set(network, BigInt(revision));
        await this.saveBlocks();
        await this.writeConflist(net);
        this.o.log.log('info', `cluster network ${network}: took block ${block}`, { host: this.record.name });
        this.schedule();
        return;
      }
    }
  }

  /** What needs etcd before this daemon could join (etcd away since it started): retryable, as etcd being away is. */
  private notJoined(what: string): EtcdUnavailableError {
    return new EtcdUnavailableError(this.o.etcd.options.endpoints, what, new Error('this host has not joined the cluster since its daemon started'));
  }

  async claimStatic(network: string, ip: string, holder: StaticHolder): Promise<void> {
    const lease = this.blockLease;
    if (lease === undefined) throw this.notJoined(`claim ${ip}`);
    const taken = await this.o.etcd.claimStatic(network, ip, { host: this.record.name, hostUid: this.uid, ...holder, claimedAt: new Date().toISOString() }, lease);
    if (taken !== undefined) throw new StaticTakenError(network, ip, taken.container, taken.host);
    this.schedule();
  }

  async releaseStatic(network: string, ip: string, holder: StaticHolder): Promise<void> {
    const claim = this.view?.statics(network).get(ip);
    if (claim === undefined || claim.containerId !== holder.containerId || claim.hostUid !== this.uid) return;
    await this.o.etcd.releaseStatic(network, ip, claim);
    this.schedule();
  }

  /** The local socket the runtime, `run` and `attach` reach the agent on. */
  private async serve(): Promise<void> {
    const socket = agentSocket(this.o.runDir);
    mkdirSync(path.dirname(socket), { recursive: true, mode: 0o700 });
    rmSync(socket, { force: true });
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        void (async () => {
          try {
            const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as AgentRequest;
            if (body.op === 'takeBlock') await this.takeBlock(body.network);
            else if (body.op === 'claimStatic') await this.claimStatic(body.network, body.ip, body.holder);
            else await this.releaseStatic(body.network, body.ip, body.holder);
            res.writeHead(204).end();
          } catch (error) {
            const answer: AgentError = error instanceof DockcniError ? { code: error.code, message: error.message, fix: error.fix } : { code: 'invalid-input', message: describeError(error) };
            res.writeHead(409, { 'content-type': 'application/json' }).end(JSON.stringify(answer));
          }
        })();
      });
    });
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(socket, () => resolve());
    });
  }

  /** For `dockcni cluster status` and the log. */
  get hostRecord(): HostRecord {
    return this.record;
  }
}

/** The address, interface and MTU of the underlay, from --advertise-address or --advertise-interface: one of this host's. */
export async function underlayOf(commands: HostCommands, wanted: { readonly address?: string | undefined; readonly iface?: string | undefined }): Promise<{ address: string; iface: string; mtu: number }> {
  const links = JSON.parse((await succeed(commands, 'ip', ['-j', '-4', 'addr', 'show'])).stdout || '[]') as { ifname: string; mtu: number; addr_info?: { local: string }[] }[];
  const match = links.find((l) => (wanted.iface !== undefined ? l.ifname === wanted.iface : (l.addr_info ?? []).some((a) => a.local === wanted.address)));
  const local = wanted.address ?? match?.addr_info?.[0]?.local;
  if (match === undefined || local === undefined) {
    const [flag, value] = wanted.iface !== undefined ? ['--advertise-interface', wanted.iface] : ['--advertise-address', wanted.address ?? ''];
    throw new InvalidInputError(flag, value, wanted.iface !== undefined ? 'no interface of this host with an IPv4 address has that name' : 'not an address of this host', 'give the address other hosts reach this one at (ip -4 addr), or --advertise-interface eth0');
  }
  return { address: local, iface: match.ifname, mtu: match.mtu };
}
