import { connect, type Socket } from 'node:net';
import test from 'ava';
import { METRICS_HEADERS_TIMEOUT_MS, METRICS_MAX_CONNECTIONS, Metrics, parseMetricsAddr, serveMetrics } from '../../../src/daemon/metrics.js';

const open = (port: number) => new Promise<Socket>((resolve, reject) => { const s = connect(port, '127.0.0.1', () => resolve(s)); s.once('error', reject); });
const closed = (s: Socket) => new Promise<boolean>((resolve) => { if (s.destroyed) resolve(true); s.once('close', () => resolve(true)); });

test('every series has HELP and TYPE; counts, histograms and gauges render', (t) => {
  const m = new Metrics();
  m.observe('add', true, 0.02);
  m.observePlugin('bridge', 'ADD', 0.01);
  const text = m.render();
  const names = new Set([...text.matchAll(/^([a-z_]+)(?:\{| )/gm)].map((x) => x[1]!.replace(/_(bucket|sum|count)$/, '')));
  for (const name of names) {
    t.regex(text, new RegExp(`^# HELP ${name} \\S`, 'm'), name);
    t.regex(text, new RegExp(`^# TYPE ${name} (counter|gauge|histogram)$`, 'm'), name);
  }
  t.regex(text, /^dockcni_operations_total\{operation="add",result="ok"\} 1$/m);
  t.regex(text, /^dockcni_plugin_duration_seconds_bucket\{plugin="bridge",command="ADD",le="0\.01"\} 1$/m);
});

test('a local process cannot hold the metrics server\'s sockets: connections are capped, idle ones closed', async (t) => {
  const { server, address } = await serveMetrics(new Metrics(), '0');
  t.teardown(() => { server.close(); });
  const sockets = await Promise.all(Array.from({ length: METRICS_MAX_CONNECTIONS + 4 }, () => open(address.port)));
  t.teardown(() => { for (const s of sockets) s.destroy(); });
  const over = await Promise.race([Promise.all(sockets.slice(0, 4).map(closed)), new Promise((r) => setTimeout(() => r(false), 2000))]);
  t.truthy(over, 'past the cap, the oldest idle connections are closed at once');
  const started = Date.now();
  await closed(sockets[4]!);
  t.true(Date.now() - started <= METRICS_HEADERS_TIMEOUT_MS + 1000, 'a connection that sends no request is closed after the headers timeout');
});

test('idle connections that never send a request do not keep /healthz and /metrics from answering', async (t) => {
  const metrics = new Metrics();
  metrics.healthy = true;
  const { server, address } = await serveMetrics(metrics, '0');
  t.teardown(() => { server.close(); });
  const idle = await Promise.all(Array.from({ length: METRICS_MAX_CONNECTIONS }, () => open(address.port)));
  t.teardown(() => { for (const s of idle) s.destroy(); });
  const get = async (p: string) => {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), 1500);
    try {
      const r = await fetch(`http://127.0.0.1:${address.port}${p}`, { signal: controller.signal });
      return `${r.status} ${await r.text()}`;
    } finally {
      clearTimeout(timer);
    }
  };
  t.is(await get('/healthz'), '200 ok\n', 'answered while sixteen idle connections are open');
  t.regex(await get('/metrics'), /^200 .*dockcni_up 1/s);
});

test('--metrics-addr: a bare port is loopback; a bad value names the flag', (t) => {
  t.deepEqual(parseMetricsAddr('9584'), { host: '127.0.0.1', port: 9584 });
  t.deepEqual(parseMetricsAddr('[::1]:9584'), { host: '::1', port: 9584 });
  t.throws(() => parseMetricsAddr('abc'), { message: /invalid --metrics-addr "abc"/ });
});
