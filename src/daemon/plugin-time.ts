import type { TraceRecord } from '../cni/invoke.js';
import type { Metrics } from './metrics.js';

/**
 * Fed by the engine's trace: each plugin call goes into the metrics, and ADD time is summed per
 * container so the `wired` log line can tell the plugins' time from dockcni's own.
 */
export class PluginTime {
  private readonly adding = new Map<string, number>();

  constructor(private readonly metrics: Metrics) {}

  readonly observe = (record: TraceRecord): void => {
    this.metrics.observePlugin(record.plugin, record.command, record.durationMs / 1000);
    const id = record.env['CNI_CONTAINERID'];
    if (record.command === 'ADD' && id !== undefined) this.adding.set(id, (this.adding.get(id) ?? 0) + record.durationMs);
  };

  /** The ADD time since the last take, and forget it: called after every wiring attempt. */
  take(containerId: string): number {
    const ms = this.adding.get(containerId) ?? 0;
    this.adding.delete(containerId);
    return ms;
  }
}
