import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { InvalidInputError } from '../errors.js';

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

  private readonly repairs = new Map<string, number>();

  observeRepair(ok: boolean): void {
    const key = `result="${ok ? 'ok' : 'error'}"`;
    this.repairs.set(key, (this.repairs.get(key) ?? 0) + 1);
  }

  observePlugin(plugin: string, command: string, seconds: number): void {
    record(this.plugins, `plugin=${JSON.stringify(plugin)},command="${command}"`, seconds);
  }

  render(): string {
    const lines = ['# HELP dockcni_operations_total CNI list operations by result.', '# TYPE dockcni_operations_total counter'];
    for (const [labels, n] of this.counts) lines.push(`dockcni_operations_total{${labels}} ${n}`);
    lines.push('# HELP dockcni_operation_duration_seconds Time to wire (add) or unwire (del) one container.', '# TYPE dockcni_operation_duration_seconds histogram');
    lines.push(...renderHistograms('dockcni_operation_duration_seconds', this.histograms));
    lines.push('# HELP dockcni_repairs_total Broken attachments the check loop rebuilt, by result.', '# TYPE dockcni_repairs_total counter');
    for (const [labels, n] of this.repairs) lines.push(`dockcni_repairs_total{${labels}} ${n}`);
    lines.push('# HELP dockcni_plugin_duration_seconds Time of each plugin call.', '# TYPE dockcni_plugin_duration_seconds histogram');
    lines.push(...renderHistograms('dockcni_plugin_duration_seconds', this.plugins));
    const memory = process.memoryUsage();
    const gauge = (name: string, help: string, value: number) => lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`, `${name} ${value}`);
    gauge('dockcni_up', 'Whether the daemon is connected to Docker (1) or not (0).', this.healthy ? 1 : 0);
    gauge('process_resident_memory_bytes', 'Resident memory size in bytes.', memory.rss);
    gauge('nodejs_heap_used_bytes', 'V8 heap in use, in bytes.', memory.heapUsed);
    gauge('nodejs_heap_total_bytes', 'V8 heap allocated, in bytes.', memory.heapTotal);
    gauge('nodejs_external_bytes', 'Memory of C++ objects bound to JavaScript objects, in bytes.', memory.external);
    return `${lines.join('\n')}\n`;
  }
}

/** "9584" or "HOST:PORT"; a bare port binds loopback only. */
export function parseMetricsAddr(value: string): { host: string; port: number } {
  const m = /^(?:(.+):)?(\d+)$/.exec(value);
  const port = Number(m?.[2]);
  if (!m || port < 0 || port > 65535) throw new InvalidInputError('--metrics-addr', value, 'not PORT or HOST:PORT', 'write e.g. 9584 (loopback) or 127.0.0.1:9584');
  return { host: (m[1] ?? '127.0.0.1').replace(/^\[|\]$/g, ''), port };
}

/** A scraper needs one connection at a time; past these, a local process cannot hold the root daemon's sockets. */
export const METRICS_MAX_CONNECTIONS = 16;
export const METRICS_TIMEOUT_MS = 5000;
/** A client that opened a connection and has not sent its request headers within this is dropped. */
export const METRICS_HEADERS_TIMEOUT_MS = 2000;

export async function serveMetrics(metrics: Metrics, addr: string): Promise<{ server: Server; address: AddressInfo }> {
  const { host, port } = parseMetricsAddr(addr);
  const server = createServer({ requestTimeout: METRICS_TIMEOUT_MS, headersTimeout: METRICS_HEADERS_TIMEOUT_MS, keepAliveTimeout: 1000, connectionsCheckingInterval: 500 }, (req, res) => {
    busy.add(req.socket);
    req.socket.setTimeout(METRICS_TIMEOUT_MS);
    res.once('close', () => { busy.delete(req.socket); });
    if (req.url === '/metrics') {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(metrics.render());
    } else if (req.url === '/healthz') {
      res.writeHead(metrics.healthy ? 200 : 503).end(metrics.healthy ? 'ok\n' : 'not connected to Docker\n');
    } else res.writeHead(404).end();
  });
  // Connections in the order they came, and those with a request in flight. Past the cap, the oldest
  // connection with nothing in flight makes room for the new one: clients that connect and never ask
  // cannot lock a scraper or a health check out.
  const open = new Set<Socket>();
  const busy = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    open.add(socket);
    // Node's own headersTimeout does not cover a connection that never sends a byte.
    socket.setTimeout(METRICS_HEADERS_TIMEOUT_MS, () => socket.destroy());
    socket.once('close', () => { open.delete(socket); busy.delete(socket); });
    if (open.size <= METRICS_MAX_CONNECTIONS) return;
    const idle = [...open].find((s) => s !== socket && !busy.has(s));
    (idle ?? socket).destroy();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  return { server, address: server.address() as AddressInfo };
}
