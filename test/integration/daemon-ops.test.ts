import { bridgeNetwork, hostTest, reservations, restartDockerd, sh } from '../helpers/host.js';
import { addressOf, container, dirs, startDaemon, waitFor } from '../helpers/docker.js';

const test = hostTest();

test('metrics on loopback, health, JSON logs, and DNS from the result in resolv.conf', async (t) => {
  const d = await dirs(t);
  const net = await bridgeNetwork(t, d.confDir, d.root, 51, [
    { type: 'fixture', fixture: { dns: { nameservers: ['10.231.51.53'], search: ['corp.example'], options: ['ndots:2'] } } },
  ]);
  const daemon = await startDaemon(t, d, ['--metrics-addr', '19584', '--log-format', 'json']);
  const c = await container(t, ['--network', 'none', '-l', `dockcni.networks=${net.name}`]);
  // The address shows after the bridge's ADD; resolv.conf is written once the whole chain is done.
  const resolv = await waitFor('resolv.conf from the result', async () => {
    const r = await sh('docker', ['exec', c, 'cat', '/etc/resolv.conf']);
    return r.stdout.includes('dockcni') && r;
  });
  t.regex(resolv.stdout, /^nameserver 10\.231\.51\.53$/m);
  t.regex(resolv.stdout, /^search corp\.example$/m);
  t.regex(resolv.stdout, /^options ndots:2$/m);
  const metrics = await (await fetch('http://127.0.0.1:19584/metrics')).text();
  t.regex(metrics, /^dockcni_operations_total\{operation="add",result="ok"\} 1$/m);
  t.regex(metrics, /^dockcni_operation_duration_seconds_count\{operation="add"\} 1$/m);
  t.regex(metrics, /^dockcni_up 1$/m);
  // Prometheus' own linter (Debian's prometheus package; test/host/setup.js installs it).
  const lint = await sh('promtool', ['check', 'metrics'], { reject: false, input: metrics });
  t.is(lint.exitCode, 0, `promtool check metrics: ${lint.stdout}${lint.stderr}`);
  for (const plugin of ['bridge', 'firewall', 'fixture']) t.regex(metrics, new RegExp(`^dockcni_plugin_duration_seconds_count\\{plugin="${plugin}",command="ADD"\\} 1$`, 'm'));
  t.is((await fetch('http://127.0.0.1:19584/healthz')).status, 200);
  const listening = await sh('ss', ['-ltnH', 'sport = :19584'], { reject: false });
  t.regex(listening.stdout, /127\.0\.0\.1:19584/);
  const wired = daemon.log().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l['msg'] === 'wired');
  t.like(wired, { level: 'info', network: net.name, ifname: 'eth0' });
  const pluginMs = wired?.['pluginMs'] as number;
  t.true(pluginMs > 0 && pluginMs <= (wired?.['tookMs'] as number), 'the plugins\' share of the wiring time is logged');
});

test('dockerd restarted under a running daemon: it reconnects, cleans what died, wires what restarts', async (t) => {
  const d = await dirs(t);
  const net = await bridgeNetwork(t, d.confDir, d.root, 52);
  const daemon = await startDaemon(t, d);
  const always = await container(t, ['--network', 'none', '--restart', 'always', '-l', `dockcni.networks=${net.name}`]);
  const plain = await container(t, ['--network', 'none', '-l', `dockcni.networks=${net.name}`]);
  const before = await waitFor('always wired', () => addressOf(always));
  await waitFor('plain wired', () => addressOf(plain));
  await restartDockerd();
  await waitFor('the daemon to reconnect', async () => (daemon.log().match(/connected to Docker/g) ?? []).length >= 2, 60_000);
  const after = await waitFor('the restarted container re-wired', () => addressOf(always), 30_000);
  t.regex(after, /^10\.231\.52\./);
  await waitFor('the stopped container released', async () => (await reservations(net)).length === 1, 30_000);
  t.deepEqual(await reservations(net), [after]);
  t.log(`before ${before}, after ${after}`);
  t.regex(daemon.log(), /Docker event stream ended; reconnecting|Docker unavailable; retrying/);
});
