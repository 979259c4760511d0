import type { DockerClient, DockerEvent, EventSubscription } from '../docker/docker-client.js';
import { describeError, fixOf } from '../errors.js';
import type { AttachmentStore } from '../state/attachment-store.js';
import { NETWORKS_LABEL } from '../wiring/labels.js';
import type { ContainerHandlers } from './handlers.js';
import { KeyedQueue } from './keyed-queue.js';
import type { Logger } from './logger.js';
import type { Metrics } from './metrics.js';
import type { Reconciler } from './reconciler.js';

export interface DaemonOptions {
  readonly docker: DockerClient;
  /** The records as they stand after reconcile's own cleanup: what spec GC must keep. */
  readonly store: Pick<AttachmentStore, 'list'>;
  readonly handlers: ContainerHandlers;
  readonly reconciler: Reconciler;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly concurrency: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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

  constructor(private readonly o: DaemonOptions) {
    this.queue = new KeyedQueue(o.concurrency, (key, error) => {
      o.log.log('error', 'container operation failed', { id: key.slice(0, 12), error: describeError(error) });
    });
  }

  /** Runs until stop(); reconnects to Docker with backoff. */
  async run(): Promise<void> {
    for (let delay = 500; !this.stopping; delay = Math.min(delay * 2, 10_000)) {
      try {
        const version = await this.o.docker.ping();
        this.subscription = await this.o.docker.events(this.lastEvent, (event) => this.dispatch(event));
        this.o.log.log('info', 'connected to Docker', { version: version.version, api: version.apiVersion, resumeFrom: this.lastEvent?.toString() });
        this.o.metrics.healthy = true;
        await this.reconcile();
        delay = 500;
        await this.subscription.ended;
        if (!this.stopping) this.o.log.log('warn', 'Docker event stream ended; reconnecting');
      } catch (error) {
        if (!this.stopping) this.o.log.log('error', 'Docker unavailable; retrying', { error: describeError(error), fix: fixOf(error), retryInMs: delay });
      }
      this.o.metrics.healthy = false;
      if (!this.stopping) await new Promise<void>((resolve) => { this.wake = resolve; void sleep(delay).then(() => resolve()); });
    }
    await this.queue.drain();
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
    await this.queue.drain();
    try {
      const { leftovers } = await this.o.reconciler.inventory();
      const dead = leftovers.filter((l) => l.kind === 'attachment' && l.why !== 'container restarted since it was wired');
      for (const error of await this.o.reconciler.clean(dead)) this.o.log.log('error', 'cleanup failed', { error: error.message });
    } catch (error) {
      this.o.log.log('warn', 'final cleanup skipped', { error: describeError(error) });
    }
  }

  /** Wires what is missing and removes what is stale, then spec GC. */
  async reconcile(): Promise<void> {
    const inventory = await this.o.reconciler.inventory();
    // Through the per-container queue, so a stale attachment is removed before its container is re-wired.
    // Only these tasks are awaited: events keep arriving meanwhile, and the queue may never be empty.
    const tasks = [
      ...inventory.leftovers.map((item) => this.queue.push(item.containerId, async () => {
        for (const error of await this.o.reconciler.clean([item])) this.o.log.log('error', 'cleanup failed', { error: error.message });
      })),
      ...inventory.unwired.map((c) => this.queue.push(c.id, () => this.o.handlers.started(c.id, c))),
    ];
    await Promise.all(tasks);
    for (const error of await this.o.reconciler.gcNetworks(await this.o.store.list())) {
      this.o.log.log('error', 'CNI GC failed', { error: describeError(error) });
    }
    this.o.log.log('info', 'reconciled', { wired: inventory.unwired.length, cleaned: inventory.leftovers.length });
  }

  private dispatch(event: DockerEvent): void {
    if (this.lastEvent === undefined || event.timeNano > this.lastEvent) this.lastEvent = event.timeNano;
    if (event.action === 'start' && event.labels[NETWORKS_LABEL] !== undefined) {
      void this.queue.push(event.id, () => this.o.handlers.started(event.id));
    } else if (event.action === 'die' || event.action === 'destroy') {
      void this.queue.push(event.id, () => this.o.handlers.stopped(event.id, event.labels));
    }
  }
}
