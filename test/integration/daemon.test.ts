import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { bridgeNetwork, hostTest, reservations, rulesMentioning, sh } from '../helpers/host.js';
import { addressOf, assertNoLeftovers, container, dirs, httpFromOtherHost, pingFrom, startDaemon, waitFor } from '../helpers/docker.js';

const test = hostTest();

test('two labelled containers are wired and ping each other; an unlabelled one is untouched', async (t) => {
  const d = await dirs(t);
  const net = await bridgeNetwork(t, d.confDir, d.root, 21);
  await startDaemon(t, d);
  const started = Date.now();
  const a = await container(t, ['--network', 'none', '-l', `dockcni.networks=${net.name}`]);
  const b = await container(t, ['--network', 'none', '-l', `dockcni.networks=${net.name}`]);
  const plain = await container(t, ['--network', 'none']);
  const ipA = await waitFor('a address', () => addressOf(a));
  const ipB = await waitFor('b address', () => addressOf(b));
  t.log(`both wired ${Date.now() - started} ms after the first docker run`);
  t.regex(ipA, /^10\.231\.21\./);
  t.true(await pingFrom(a, ipB));
  t.true(await pingFrom(b, ipA));
  const plainLinks = await sh('docker', ['exec', plain, 'ip', '-o', 'link']);
  t.deepEqual(plainLinks.stdout.trim().split('\n').map((l) => l.split(':')[1]?.trim()), ['lo']);
  const hosts = await sh('docker', ['exec', a, 'cat', '/etc/hosts']);
  t.regex(hosts.stdout, new RegExp(`${ipA.replace(/\./g, '\\.')}\\t.*# dockcni`));
});

test('restart re-wires without duplicate allocation; kill and rm -f leave nothing', async (t) => {
  const d = await dirs(t);
  const net = await bridgeNetwork(t, d.confDir, d.root, 22);
  await startDaemon(t, d);
  const a = await container(t, ['--network', 'none', '-l', `dockcni.networks=${net.name}`]);
  const b = await container(t, ['--network', 'none', '-l', `dockcni.networks=${net.name}`]);
  await waitFor('a wired', () => addressOf(a));
  const ipB = await waitFor('b wired', () => addressOf(b));
  await sh('docker', ['restart', '-t', '0', a]);
  const again = await waitFor('a re-wired', () => addressOf(a));
  t.true(await pingFrom(a, ipB));
  t.is((await reservations(net)).length, 2, 'one reservation per container, none duplicated');
  t.true((await reservations(net)).includes(again));
  await sh('docker', ['kill', a]);
  await sh('docker', ['rm', '-f', b]);
  await waitFor('everything released', async () => (await reservations(net)).length === 0 && (await readdir(path.join(d.root, 'state/attachments'))).length === 0);
  await assertNoLeftovers(t, d, net, [a, b]);
});

test('a daemon SIGKILLed while containers start and die: after restart each live one is wired once, dead ones cleaned', async (t) => {
  const d = await dirs(t);
  const net = await bridgeNetwork(t, d.confDir, d.root, 23);
  const first = await startDaemon(t, d);
  const keep = await container(t, ['--network', 'none', '-l', `dockcni.networks=${net.name}`]);
  const doomed = await container(t, ['--network', 'none', '-l', `dockcni.networks=${net.name}`]);
  await waitFor('wired', async () => (await addressOf(keep)) && addressOf(doomed));
  await first.kill();
  await sh('docker', ['rm', '-f', doomed]);
  const late = await container(t, ['--network', 'none', '-l', `dockcni.networks=${net.name}`]);
  await sh('docker', ['restart', '-t', '0', keep]);
  await startDaemon(t, d);
  const ipKeep = await waitFor('keep re-wired', () => addressOf(keep));
  const ipLate = await waitFor('late wired', () => addressOf(late));
  t.true(await pingFrom(late, ipKeep));
  t.deepEqual((await reservations(net)).sort(), [ipKeep, ipLate].sort());
  t.is((await readdir(path.join(d.root, 'cache/results'))).length, 2);
  t.deepEqual((await readdir(path.join(d.root, 'run/netns'))).sort(), [keep, late].sort());
  // Gone while the second daemon runs (its teardown would stop it first): their DELs are its to do.
  await sh('docker', ['rm', '-f', keep, late]);
  await waitFor('both unwired', async () => (await reservations(net)).length === 0 && (await readdir(path.join(d.root, 'state/attachments'))).length === 0);
});

test('static IP and MAC, a port mapping reached from another host, and two networks as eth0 and eth1', async (t) => {
  const d = await dirs(t);
  const front = await bridgeNetwork(t, d.confDir, d.root, 24, undefined, true);
  const back = await bridgeNetwork(t, d.confDir, d.root, 25, []);
  await startDaemon(t, d);
  const web = await container(t, ['--network', 'none', '-l', `dockcni.networks=${front.name},${back.name}`,
    '-l', 'dockcni.ip=10.231.24.77', '-l', 'dockcni.mac=02:42:0a:e7:18:4d', '-l', 'dockcni.ports=18124:80/tcp',
    '-l', `dockcni.ip.${back.name}=10.231.25.88`], ['httpd', '-f', '-p', '80', '-h', '/etc']);
  t.is(await waitFor('eth0', () => addressOf(web, 'eth0')), '10.231.24.77');
  t.is(await waitFor('eth1', () => addressOf(web, 'eth1')), '10.231.25.88');
  const link = await sh('docker', ['exec', web, 'ip', '-o', 'link', 'show', 'eth0']);
  t.regex(link.stdout, /link\/ether 02:42:0a:e7:18:4d/);
  t.regex(await httpFromOtherHost(t, 18124, 24), /^HTTP\/1\.[01] 200/);
});

const badLabels = [
  { labels: ['dockcni.ip=10.0.0.300'], log: /invalid label dockcni\.ip .*10\.0\.0\.300.* is not an IP address/ },
  { labels: ['dockcni.ports=0:80'], log: /port 0 is outside 1-65535/ },
  { labels: ['dockcni.ports=a:b'], log: /port ..a.. is not a number/ },
  { labels: ['dockcni.args=K8S_POD_NAME=admin'], log: /K8S_POD_NAME is set by dockcni/ },
  { labels: ['dockcni.args=X=1;Y'], log: /invalid label dockcni\.args .*Y.*: expected KEY=VALUE/ },
  { labels: ['dockcni.ipp=1.2.3.4'], log: /dockcni\.ipp.*unknown dockcni label/ },
];

test('bad labels: the container is stopped with a clear log line, the daemon and a good container carry on', async (t) => {
  const d = await dirs(t);
  const net = await bridgeNetwork(t, d.confDir, d.root, 26);
  const daemon = await startDaemon(t, d, ['--retries', '0', '--on-failure', 'kill']);
  const good = await container(t, ['--network', 'none', '-l', `dockcni.networks=${net.name}`]);
  for (const c of [...badLabels, { labels: ['dockcni.networks=../etc'], log: /network name ..\.\.\/etc.. is invalid/ }, { labels: ['dockcni.networks=nosuchnet'], log: /no network named ..nosuchnet/ }]) {
    const networks = c.labels.some((l) => l.startsWith('dockcni.networks=')) ? [] : ['-l', `dockcni.networks=${net.name}`];
    const bad = await container(t, ['--network', 'none', ...networks, ...c.labels.flatMap((l) => ['-l', l])]);
    await waitFor(`${c.labels[0]} stopped`, async () => (await sh('docker', ['inspect', '-f', '{{.State.Running}}', bad])).stdout.trim() === 'false');
    t.regex(daemon.log(), c.log);
  }
  t.regex(await waitFor('good wired', () => addressOf(good)), /^10\.231\./);
  t.is(daemon.process.exitCode, null);
  t.deepEqual(await reservations(net), [await addressOf(good)]);
});

test('a failing plugin: DEL undoes the ADD, the container is stopped, nothing leaks', async (t) => {
  const d = await dirs(t);
  const net = await bridgeNetwork(t, d.confDir, d.root, 27, [
    { type: 'portmap', capabilities: { portMappings: true } },
    { type: 'fixture', fixture: { fail: { code: 11, msg: 'backend busy' }, failOn: ['ADD'] } },
  ]);
  const daemon = await startDaemon(t, d, ['--retries', '1']);
  const c = await container(t, ['--network', 'none', '-l', `dockcni.networks=${net.name}`, '-l', 'dockcni.ports=18127:80']);
  await waitFor('stopped by policy', async () => (await sh('docker', ['inspect', '-f', '{{.State.Running}}', c])).stdout.trim() === 'false');
  t.regex(daemon.log(), /wiring failed .*attempt=2 plugin=fixture cniCode=11 .*backend busy/);
  t.regex(daemon.log(), /stopping container without its CNI networking/);
  await waitFor('released', async () => (await reservations(net)).length === 0);
  const { readdir: rd } = await import('node:fs/promises');
  t.deepEqual(await rd(path.join(d.root, 'cache/results')).catch(() => []), []);
  t.deepEqual(await rd(path.join(d.root, 'run/netns')).catch(() => []), []);
  t.deepEqual(await rulesMentioning(c), []);
});
