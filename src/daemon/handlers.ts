import { abortableSleep, describeError, DockcniError, DockerApiError, fixOf } from '../errors.js';
import type { ContainerInfo, DockerClient } from '../docker/docker-client.js';
import { CniPluginError } from '../cni/plugin-error.js';
import { CONTAINER_ID } from '../state/attachment.js';
import { SANDBOX_LABEL } from '../wiring/label-keys.js';
import { parseLabels, type LabelOptions, type WireRequest } from '../wiring/labels.js';
import type { Sandboxes } from '../wiring/sandboxes.js';
import type { Wirer } from '../wiring/wirer.js';
import type { Logger } from './logger.js';
import type { Metrics } from './metrics.js';
import type { PluginTime } from './plugin-time.js';

export type FailurePolicy = 'stop' | 'kill' | 'ignore';

export interface HandlerOptions {
  readonly docker: DockerClient;
  readonly wirer: Pick<Wirer, 'wire' | 'unwire'>;
  readonly sandboxes: Pick<Sandboxes, 'isSandboxOf'>;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly labels: LabelOptions;
  readonly onFailure: FailurePolicy;
  /** Attempts after the first, for failures that may pass (see `retryable`), with doubling backoff from retryDelayMs. */
  readonly retries: number;
  readonly retryDelayMs: number;
  /** Shutdown: a retry waiting for its turn is given up. */
  readonly signal?: AbortSignal | undefined;
  /** Where the plugins' share of each wiring is read from, for the `wired` log line. */
  readonly pluginTime?: Pick<PluginTime, 'take'> | undefined;
}

const short = (id: string) => id.slice(0, 12);

/** What happens when a container starts, dies or is destroyed. */
export class ContainerHandlers {
  constructor(private readonly o: HandlerOptions) {}

  /** start: parse its labels, wire every network; on failure retry, then apply the failure policy. */
  async started(id: string, known?: ContainerInfo): Promise<void> {
    const container = known ?? await this.o.docker.inspect(id);
    if (!container?.running) {
      // Gone or exited between its start event and now: its die/destroy event does the cleanup.
      this.o.log.log('debug', 'not running any more; nothing to wire', { id: short(id) });
      return;
    }
    let request: WireRequest | undefined;
    try {
      request = parseLabels(container.labels, this.o.labels);
    } catch (error) {
      this.o.log.log('error', 'bad dockcni labels', { container: container.name, id: short(id), error: describeError(error), fix: fixOf(error) });
      await this.applyPolicy(container);
      return;
    }
    if (request === undefined) return;
    for (let attempt = 0; ; attempt++) {
      const started = performance.now();
      try {
        const { record, namesMs } = await this.o.wirer.wire({ ...container, containerId: id, origin: 'daemon' }, request);
        const tookMs = performance.now() - started;
        this.o.metrics.observe('add', true, tookMs / 1000);
        const timing = { tookMs: Math.round(tookMs), pluginMs: this.o.pluginTime && Math.round(this.o.pluginTime.take(id)), namesMs: Math.round(namesMs) };
        for (const n of record.networks) {
          this.o.log.log('info', 'wired', { container: container.name, id: short(id), network: n.network, ifname: n.ifName, addresses: n.addresses.join(','), ...timing });
        }
        return;
      } catch (error) {
        this.o.pluginTime?.take(id);
        this.o.metrics.observe('add', false, (performance.now() - started) / 1000);
        const plugin = firstPluginError(error);
        this.o.log.log('error', 'wiring failed', {
          container: container.name, id: short(id), attempt: attempt + 1, plugin: plugin?.plugin, cniCode: plugin?.cniCode, error: describeError(error), fix: fixOf(error),
        });
        const now = await this.o.docker.inspect(id);
        if (!now?.running || now.pid !== container.pid) return;
        if (attempt >= this.o.retries || !retryable(error)) {
          await this.applyPolicy(container);
          return;
        }
        try {
          await abortableSleep(this.o.retryDelayMs * 2 ** attempt, 'the next attempt', this.o.signal);
        } catch (aborted) {
          this.o.log.log('info', 'shutting down: wiring not retried', { container: container.name, id: short(id), error: describeError(aborted) });
          return;
        }
      }
    }
  }

  /**
   * die or destroy: DEL everything; a `run` app takes its sandbox with it. The app's label only says
   * where to look: the sandbox is removed when its own record, written by `run`, names this app.
   */
  async stopped(id: string, labels: Readonly<Record<string, string>>): Promise<void> {
    await this.unwire(id, true);
    const sandbox = labels[SANDBOX_LABEL];
    if (sandbox === undefined) return;
    if (!CONTAINER_ID.test(sandbox) || !(await this.o.sandboxes.isSandboxOf(sandbox, id))) {
      // Anyone can set the label: only the sandbox's own record, written by `run`, names its app.
      this.o.log.log('warn', `left alone the container its ${SANDBOX_LABEL} label names: no run sandbox of this container`, { id: short(id), named: sandbox.slice(0, 64) });
      return;
    }
    await this.unwire(sandbox);
    await this.o.docker.remove(sandbox);
    this.o.log.log('info', 'removed sandbox', { app: short(id), sandbox: short(sandbox) });
  }

  /** `ifGone`: the container died; a newer incarnation already wired (by the runtime) keeps its networks. */
  async unwire(id: string, ifGone = false): Promise<void> {
    const started = performance.now();
    try {
      const outcome = await this.o.wirer.unwire(id, { ifGone });
      if (outcome === 'unwired') {
        this.o.metrics.observe('del', true, (performance.now() - started) / 1000);
        this.o.log.log('info', 'unwired', { id: short(id) });
      } else {
        this.o.log.log('debug', outcome === 'kept-newer' ? 'kept: its process lives, a newer incarnation wired by the runtime' : 'nothing to unwire', { id: short(id) });
      }
    } catch (error) {
      this.o.metrics.observe('del', false, (performance.now() - started) / 1000);
      throw error;
    }
  }

  /** A container whose networking could not be repaired: the --on-failure policy, as for a failed wiring. */
  async abandon(id: string): Promise<void> {
    const container = await this.o.docker.inspect(id);
    if (container?.running) await this.applyPolicy(container);
  }

  private async applyPolicy(container: ContainerInfo): Promise<void> {
    if (this.o.onFailure === 'ignore') return;
    this.o.log.log('warn', `${this.o.onFailure === 'stop' ? 'stopping' : 'killing'} container without its CNI networking (--on-failure ${this.o.onFailure})`, { container: container.name, id: short(container.id) });
    if (this.o.onFailure === 'stop') await this.o.docker.stop(container.id, 10);
    else await this.o.docker.kill(container.id);
  }
}

/**
 * Failures that may pass on their own: the plugin said "try again later" (CNI code 11), hung or
 * crashed; Docker or a lock was busy; etcd was unreachable or the host's blocks unconfirmed (a cluster
 * network). A bad label, config, network mode or port fails at once.
 */
const PASSING: ReadonlySet<string> = new Set(['lock-timeout', 'etcd-unavailable', 'cluster-fenced']);

export function retryable(error: unknown): boolean {
  for (let e: unknown = error; e instanceof Error; e = e.cause) {
    if (e instanceof CniPluginError) return e.retryable;
    if (e instanceof DockerApiError) return true;
    if (e instanceof DockcniError && PASSING.has(e.code)) return true;
  }
  return false;
}

function firstPluginError(error: unknown): CniPluginError | undefined {
  for (let e: unknown = error; e instanceof Error; e = e.cause) if (e instanceof CniPluginError) return e;
  return undefined;
}
