import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

const BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

interface Histogram { buckets: number[]; sum: number; count: number }

function record(into: Map<string, Histogram>, labels: string, seconds: number): void {
  const h = into.get(labels) ?? { buckets: BUCKETS.map(() => 0), sum: 0, count: 0 };
  BUCKETS.forEach((b, i) => { if (seconds <= b) h.buckets[i] = (h.buckets[i] ?? 0) + 1; });
  h.sum += seconds;
  h.count += 1;
  into.set(labels, h);
}

function renderHistograms(name: string, from: ReadonlyMap<string, Histogram>): string[] {
  const lines: string[] = [];
  for (const [labels, h] of from) {
    BUCKETS.forEach((b, i) => lines.push(`${name}_bucket{${labels},le="${b}"} ${h.buckets[i]}`));
    lines.push(`${name}_bucket{${labels},le="+Inf"} ${h.count}`, `${name}_sum{${labels}} ${h.sum}`, `${name}_count{${labels}} ${h.count}`);
  }
  return lines;
}

/** Prometheus text for ADD/DEL counts, failures and latency; no client library needed for four series. */
export class Metrics {
  private readonly counts = new Map<string, number>();
  private readonly histograms = new Map<string, Histogram>();
  /** Keyed by `plugin="…",command="…"`: which plugin of a chain is the slow one. */
  private readonly plugins = new Map<string, Histogram>();
  healthy = false;

  observe(operation: 'add' | 'del', ok: boolean, seconds: number): void {
    const key = `operation="${operation}",result="${ok ? 'ok' : 'error'}"`;
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
    record(this.histograms, `operation="${operation}"`, seconds);
  }

  observePlugin(plugin: string, command: string, seconds: number): void {
    record(this.plugins, `plugin=${JSON.stringify(plugin)},command="${command}"`, seconds);
  }

  render(): string {
    const lines = ['# HELP dockcni_operations_total CNI list operations by result.', '# TYPE dockcni_operations_total counter'];
    for (const [labels, n] of this.counts) lines.push(`dockcni_operations_total{${labels}} ${n}`);
    lines.push('# HELP dockcni_operation_duration_seconds Time to wire (add) or unwire (del) one container.', '# TYPE dockcni_operation_duration_seconds histogram');
    lines.push(...renderHistograms('dockcni_operation_duration_seconds', this.histograms));
    lines.push('# HELP dockcni_plugin_duration_seconds Time of each plugin call.', '# TYPE dockcni_plugin_duration_seconds histogram');
    lines.push(...renderHistograms('dockcni_plugin_duration_seconds', this.plugins));
    lines.push('# TYPE dockcni_up gauge', `dockcni_up ${this.healthy ? 1 : 0}`);
    const memory = process.memoryUsage();
    lines.push('# TYPE process_resident_memory_bytes gauge', `process_resident_memory_bytes ${memory.rss}`);
    lines.push('# TYPE nodejs_heap_used_bytes gauge', `nodejs_heap_used_bytes ${memory.heapUsed}`);
    lines.push('# TYPE nodejs_heap_total_bytes gauge', `nodejs_heap_total_bytes ${memory.heapTotal}`);
    lines.push('# TYPE nodejs_external_bytes gauge', `nodejs_external_bytes ${memory.external}`);
    return `${lines.join('\n')}\n`;
  }
}

/** "9584" or "HOST:PORT"; a bare port binds loopback only. */
export function parseMetricsAddr(value: string): { host: string; port: number } {
  const m = /^(?:(.+):)?(\d+)$/.exec(value);
  const port = Number(m?.[2]);
  if (!m || port < 0 || port > 65535) throw new Error(`invalid --metrics-addr ${JSON.stringify(value)}: write PORT or HOST:PORT`);
  return { host: (m[1] ?? '127.0.0.1').replace(/^\[|\]$/g, ''), port };
}

export async function serveMetrics(metrics: Metrics, addr: string): Promise<{ server: Server; address: AddressInfo }> {
  const { host, port } = parseMetricsAddr(addr);
  const server = createServer((req, res) => {
    if (req.url === '/metrics') {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(metrics.render());
    } else if (req.url === '/healthz') {
      res.writeHead(metrics.healthy ? 200 : 503).end(metrics.healthy ? 'ok\n' : 'not connected to Docker\n');
    } else res.writeHead(404).end();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  return { server, address: server.address() as AddressInfo };
}
