import { describeError, fixOf } from '../errors.js';
import type { Broken, Healer } from '../heal/healer.js';
import type { Logger } from './logger.js';
import type { Metrics } from './metrics.js';

export interface HealthLoopOptions {
  readonly healer: Pick<Healer, 'findBroken' | 'repair'>;
  readonly log: Logger;
  readonly metrics: Pick<Metrics, 'observeRepair'>;
  /** Between rounds; 0 = no rounds but those asked for (SIGHUP). */
  readonly intervalMs: number;
  /** Failed repairs of one attachment before `giveUp` (the --on-failure policy) applies. */
  readonly retries: number;
  /** Runs a repair in the container's turn, with its events. */
  readonly enqueue: (containerId: string, task: () => Promise<void>) => Promise<void>;
  readonly giveUp: (containerId: string) => Promise<void>;
  /** The clock backoff is measured on [default: Date.now]. */
  readonly now?: (() => number) | undefined;
  /** What else each round checks and repairs (a cluster's data path): what it found, in words. */
  readonly alsoCheck?: (() => Promise<readonly { readonly what: string; readonly missing: readonly string[] }[]>) | undefined;
}

const keyOf = (b: Broken) => `${b.containerId}/${b.network}`;
/** A failing repair waits the interval times 2, 4, … 32 before the next attempt: never a hot loop. */
const MAX_BACKOFF_DOUBLINGS = 5;
/** Broken again within this many rounds of its repair: a relapse, which backs off like a failure. */
const RELAPSE_ROUNDS = 3;
/** What a container can undo itself from inside (with NET_ADMIN): its interface and addresses. */
const inside = (missing: string) => /^(interface \S+ in the container|address \S+ on \S+)$/.test(missing);

/** The daemon's check loop: every interval, find what is broken and repair it, with backoff per attachment. */
export class HealthLoop {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private readonly backoff = new Map<string, { failures: number; nextAt: number }>();
  /** The last successful repair of each attachment, and how often it broke again soon after. */
  private readonly repaired = new Map<string, { at: number; relapses: number }>();

  private readonly now: () => number;

  constructor(private readonly o: HealthLoopOptions) {
    this.now = o.now ?? Date.now;
  }

  start(): void {
    if (this.o.intervalMs > 0) this.timer = setInterval(() => { void this.round(); }, this.o.intervalMs);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  /**
   * One round now; a round already running is joined, not doubled. `asked`: someone asked for it
   * (SIGHUP, after a firewall reload say): every broken attachment is repaired, backoff or not — the
   * backoff keeps the loop from fighting whoever undoes a repair, not the operator who asks for one.
   */
  round(asked = false): Promise<void> {
    this.running ??= this.check(asked).finally(() => { this.running = undefined; });
    return this.running;
  }

  private async check(asked: boolean): Promise<void> {
    let broken: Broken[];
    try {
      broken = await this.o.healer.findBroken();
    } catch (error) {
      this.o.log.log('error', 'health check failed', { error: describeError(error), fix: fixOf(error) });
      return;
    }
    const now = this.now();
    for (const key of this.backoff.keys()) if (!broken.some((b) => keyOf(b) === key)) this.backoff.delete(key);
    for (const [key, last] of this.repaired) if (now - last.at > this.step() * RELAPSE_ROUNDS && !broken.some((b) => keyOf(b) === key)) this.repaired.delete(key);
    if (!asked) for (const b of broken) this.relapse(b, now);
    const due = asked ? broken : broken.filter((b) => (this.backoff.get(keyOf(b))?.nextAt ?? 0) <= now);
    await Promise.all(due.map((b) => this.o.enqueue(b.containerId, () => this.repair(b))));
    if (this.o.alsoCheck === undefined) return;
    try {
      for (const found of await this.o.alsoCheck()) this.o.log.log('info', 'repaired', { what: found.what, missing: found.missing.join('; ') });
    } catch (error) {
      this.o.log.log('error', 'health check failed', { error: describeError(error), fix: fixOf(error) });
    }
  }

  private step(): number {
    return Math.max(this.o.intervalMs, 1000);
  }

  /**
   * An attachment broken again soon after its repair is being undone by someone (a container with
   * NET_ADMIN that changes its own interface, a host script): repairing it every round would be a loop
   * that fights them. It backs off, doubling each time, and the log says who is likely at it.
   */
  private relapse(b: Broken, now: number): void {
    const key = keyOf(b);
    const last = this.repaired.get(key);
    if (last === undefined || this.backoff.has(key) || now - last.at > this.step() * RELAPSE_ROUNDS) return;
    const relapses = last.relapses + 1;
    this.repaired.set(key, { at: last.at, relapses });
    const retryInMs = this.step() * 2 ** Math.min(relapses, MAX_BACKOFF_DOUBLINGS);
    this.backoff.set(key, { failures: 0, nextAt: now + retryInMs });
    const who = b.missing.every(inside) ? 'the container changes its own network (it holds NET_ADMIN?)' : 'something on the host keeps undoing it';
    this.o.log.log('warn', 'broken again right after its repair: backing off', {
      container: b.name, id: b.containerId.slice(0, 12), network: b.network, ifname: b.ifName, missing: b.missing.join('; '), relapses, retryInMs, why: who,
    });
  }

  private async repair(b: Broken): Promise<void> {
    const started = performance.now();
    const fields = { container: b.name, id: b.containerId.slice(0, 12), network: b.network, ifname: b.ifName, missing: b.missing.join('; ') };
    try {
      if (!(await this.o.healer.repair(b))) return;
      this.o.metrics.observeRepair(true);
      this.backoff.delete(keyOf(b));
      this.repaired.set(keyOf(b), { at: this.now(), relapses: this.repaired.get(keyOf(b))?.relapses ?? 0 });
      this.o.log.log('info', 'repaired', { ...fields, tookMs: Math.round(performance.now() - started) });
    } catch (error) {
      this.o.metrics.observeRepair(false);
      const failures = (this.backoff.get(keyOf(b))?.failures ?? 0) + 1;
      const retryInMs = this.step() * 2 ** Math.min(failures, MAX_BACKOFF_DOUBLINGS);
      this.backoff.set(keyOf(b), { failures, nextAt: this.now() + retryInMs });
      this.o.log.log('error', 'repair failed', { ...fields, attempt: failures, retryInMs, error: describeError(error), fix: fixOf(error) });
      if (failures === this.o.retries + 1) await this.o.giveUp(b.containerId);
    }
  }
}
