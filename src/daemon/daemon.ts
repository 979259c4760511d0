import type { DockerClient, DockerEvent, EventSubscription } from '../docker/docker-client.js';
import { describeError, DockcniError, fixOf } from '../errors.js';
import { unsupportedEngine } from '../docker/engine-support.js';
import { NETWORKS_LABEL } from '../wiring/label-keys.js';
import type { ContainerHandlers } from './handlers.js';
import { KeyedQueue } from './keyed-queue.js';
import type { Logger } from './logger.js';
import type { Metrics } from './metrics.js';
import { RESTARTED, type Collector } from '../gc/collector.js';
import { fullyWired, isCurrent } from '../state/attachment.js';
import { HealthLoop, type HealthLoopOptions } from './health-loop.js';

export interface DaemonOptions {
  readonly docker: DockerClient;
  readonly handlers: ContainerHandlers;
  readonly collector: Collector;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly concurrency: number;
  /** The check loop, if on: the daemon runs its repairs in each container's turn. */
  readonly health?: Omit<HealthLoopOptions, 'log' | 'metrics' | 'enqueue' | 'giveUp'> | undefined;
}

/**
 * Follows Docker events and keeps every labelled container wired. On each (re)connection it subscribes
 * first, from the last event seen, and then reconciles, so nothing that happened while it was away or
 * disconnected is missed.
 */
export class Daemon {
  private readonly queue: KeyedQueue;
  private lastEvent: bigint | undefined;
  private subscription: EventSubscription | undefined;
  private stopping = false;
  private wake: (() => void) | undefined;
  /** Cache files already warned about: once per file, not on every reconcile. */
  private readonly reported = new Set<string>();
  private readonly health: HealthLoop | undefined;

  constructor(private readonly o: DaemonOptions) {
    this.queue = new KeyedQueue(o.concurrency, (key, error) => {
      o.log.log('error', 'container operation failed', { id: key.slice(0, 12), error: describeError(error) });
    });
    this.health = o.health && new HealthLoop({
      ...o.health, log: o.log, metrics: o.metrics, enqueue: (id, task) => this.queue.push(id, task), giveUp: (id) => o.handlers.abandon(id),
    });
  }

  /** A check round now (SIGHUP): after a firewall reload, say; backoff does not hold back what it finds. */
  checkNow(): Promise<void> {
    return this.health?.round(true) ?? Promise.resolve();
  }

  /**
   * Runs until stop(); reconnects to Docker with backoff. Exactly one event subscription is live at a
   * time; a reconcile that fails is retried on its own, while events keep being handled.
   */
  async run(): Promise<void> {
    this.health?.start();
    let refused: DockcniError | undefined;
    for (let delay = 500; !this.stopping; delay = Math.min(delay * 2, 10_000)) {
      let reconciling: Promise<void> | undefined;
      try {
        const version = await this.o.docker.engine();
        refused = unsupportedEngine(version);
        if (refused !== undefined) {
          this.o.log.log('error', 'refusing to wire containers of this Docker engine', { error: refused.message, fix: refused.fix });
          break;
        }
        this.subscription = await this.o.docker.events(this.lastEvent, (event) => this.dispatch(event), (line, error) => {
          this.o.log.log('warn', 'skipped an event Docker sent that is not JSON', { line: line.slice(0, 200), error: describeError(error) });
        });
        this.o.log.log('info', 'connected to Docker', { version: version.version, api: version.apiVersion, resumeFrom: this.lastEvent?.toString() });
        this.o.metrics.healthy = true;
        delay = 500;
        const subscription = this.subscription;
        reconciling = this.reconcileWhile(() => this.subscription === subscription);
        await subscription.ended;
        if (!this.stopping) this.o.log.log('warn', 'Docker event stream ended; reconnecting');
      } catch (error) {
        if (!this.stopping) this.o.log.log('error', 'Docker unavailable; retrying', { error: describeError(error), fix: fixOf(error), retryInMs: delay });
      } finally {
        this.subscription?.close();
        this.subscription = undefined;
      }
      this.o.metrics.healthy = false;
      await reconciling;
      if (!this.stopping) await this.pause(delay);
    }
    await this.health?.stop();
    await this.queue.drain();
    if (refused !== undefined) throw refused;
  }

  /** Retries reconcile with its own backoff for as long as `live()`: its failure is not Docker's. */
  private async reconcileWhile(live: () => boolean): Promise<void> {
    for (let delay = 1000; live() && !this.stopping; delay = Math.min(delay * 2, 30_000)) {
      try {
        await this.reconcile();
        return;
      } catch (error) {
        if (!live() || this.stopping) return;
        this.o.log.log('error', 'reconcile failed; retrying', { error: describeError(error), fix: fixOf(error), retryInMs: delay });
      }
      await this.pause(delay);
    }
  }

  private pause(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wake = () => { clearTimeout(timer); resolve(); };
    });
  }

  /**
   * Finishes what is in flight, then removes attachments of containers that are gone or stopped (their
   * die events may not have arrived yet, e.g. under `docker-compose down`). Running containers keep
   * their networking.
   */
  async stop(): Promise<void> {
    this.stopping = true;
    this.subscription?.close();
    this.wake?.();
    await this.health?.stop();
    await this.queue.drain();
    try {
      const { leftovers } = await this.o.collector.scan();
      const dead = leftovers.filter((l) => l.kind === 'attachment' && l.why !== RESTARTED);
      for (const error of await this.o.collector.remove(dead)) this.o.log.log('error', 'cleanup failed', { error: error.message });
    } catch (error) {
      this.o.log.log('warn', 'final cleanup skipped', { error: describeError(error) });
    }
  }

  /**
   * Decides which of its containers to wire (running, labelled, this incarnation not fully wired) and
   * has the collector remove what is stale, then spec GC.
   */
  async reconcile(): Promise<void> {
    const scan = await this.o.collector.scan();
    const unwired = scan.labelled.filter((c) => c.running && !scan.records.some(
      (r) => r.containerId === c.id && isCurrent(r, c.pid, c.startedAt) && fullyWired(r)));
    for (const skipped of scan.skippedCache) {
      if (this.reported.has(skipped.path)) continue;
      this.reported.add(skipped.path);
      this.o.log.log('warn', 'left alone a file in the CNI cache that dockcni cannot read', { file: skipped.path, why: skipped.reason });
    }
    // Through the per-container queue, so a stale attachment is removed before its container is re-wired.
    // Only these tasks are awaited: events keep arriving meanwhile, and the queue may never be empty.
    // A restarted container's earlier attachment is its wiring's to replace: wire() DELs it first, and
    // a cluster network gives the container its address again (a host that comes back keeps them).
    const rewired = new Set(unwired.map((c) => c.id));
    const leftovers = scan.leftovers.filter((l) => !(l.kind === 'attachment' && l.why === RESTARTED && rewired.has(l.containerId)));
    const tasks = [
      ...leftovers.map((item) => this.queue.push(item.containerId, async () => {
        for (const error of await this.o.collector.remove([item])) this.o.log.log('error', 'cleanup failed', { error: error.message });
      }, 'del')),
      ...unwired.map((c) => this.queue.push(c.id, () => this.o.handlers.started(c.id, c))),
    ];
    await Promise.all(tasks);
    const gc = await this.o.collector.cniGc();
    for (const entry of gc.deleted) this.o.log.log('info', 'CNI GC removed a stale attachment', { network: entry.networkName, id: entry.containerId.slice(0, 12), ifname: entry.ifName });
    for (const error of gc.errors) this.o.log.log('error', 'CNI GC failed', { error: describeError(error) });
    this.o.log.log('info', 'reconciled', { wired: unwired.length, cleaned: leftovers.length });
  }

  private dispatch(event: DockerEvent): void {
    if (this.lastEvent === undefined || event.timeNano > this.lastEvent) this.lastEvent = event.timeNano;
    if (event.action === 'start' && event.labels[NETWORKS_LABEL] !== undefined) {
      void this.queue.push(event.id, () => this.o.handlers.started(event.id));
    } else if (event.action === 'die' || event.action === 'destroy') {
      void this.queue.push(event.id, () => this.o.handlers.stopped(event.id, event.labels), 'del');
    }
  }
}
