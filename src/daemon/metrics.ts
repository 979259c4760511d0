import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

const BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** Prometheus text for ADD/DEL counts, failures and latency; no client library needed for four series. */
export class Metrics {
  private readonly counts = new Map<string, number>();
  private readonly histograms = new Map<string, { buckets: number[]; sum: number; count: number }>();
  healthy = false;

  observe(operation: 'add' | 'del', ok: boolean, seconds: number): void {
    const key = `operation="${operation}",result="${ok ? 'ok' : 'error'}"`;
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
    const h = this.histograms.get(operation) ?? { buckets: BUCKETS.map(() => 0), sum: 0, count: 0 };
    BUCKETS.forEach((b, i) => { if (seconds <= b) h.buckets[i] = (h.buckets[i] ?? 0) + 1; });
    h.sum += seconds;
    h.count += 1;
    this.histograms.set(operation, h);
  }

  render(): string {
    const lines = ['# HELP dockcni_operations_total CNI list operations by result.', '# TYPE dockcni_operations_total counter'];
    for (const [labels, n] of this.counts) lines.push(`dockcni_operations_total{${labels}} ${n}`);
    lines.push('# HELP dockcni_operation_duration_seconds Time to wire (add) or unwire (del) one container.', '# TYPE dockcni_operation_duration_seconds histogram');
    for (const [op, h] of this.histograms) {
      BUCKETS.forEach((b, i) => lines.push(`dockcni_operation_duration_seconds_bucket{operation="${op}",le="${b}"} ${h.buckets[i]}`));
      lines.push(`dockcni_operation_duration_seconds_bucket{operation="${op}",le="+Inf"} ${h.count}`);
      lines.push(`dockcni_operation_duration_seconds_sum{operation="${op}"} ${h.sum}`, `dockcni_operation_duration_seconds_count{operation="${op}"} ${h.count}`);
    }
    lines.push('# TYPE dockcni_up gauge', `dockcni_up ${this.healthy ? 1 : 0}`);
    const memory = process.memoryUsage();
    lines.push('# TYPE process_resident_memory_bytes gauge', `process_resident_memory_bytes ${memory.rss}`);
    lines.push('# TYPE nodejs_heap_used_bytes gauge', `nodejs_heap_used_bytes ${memory.heapUsed}`);
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
