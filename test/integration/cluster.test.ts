import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import { execa } from 'execa';
import { linkNames } from '../../src/cluster/model.js';
import { TestCluster, type ClusterHost } from '../helpers/cluster.js';
import { waitFor } from '../helpers/docker.js';
import { BIN } from '../helpers/fixtures.js';
import { hostReady, hostTest, uid } from '../helpers/host.js';
import test from 'ava';

/**
 * Cluster networks across three Docker hosts on this machine (test/helpers/cluster.ts): real dockerds,
 * real plugins, a real three-member etcd, a dockcni daemon on each host. Each test makes its own
 * network and leaves none of its containers, networks or keys behind.
 */
const serial = hostTest();
let cluster: TestCluster;

if (hostReady) {
  test.before(async () => { cluster = await TestCluster.up(); });
  test.after.always(async () => { await cluster?.down(); });
}

const h = (n: 1 | 2 | 3): ClusterHost => cluster.host(n);
const all = () => cluster.hosts;

interface Status {
  hosts: { name: string; state: string; address: string; blocks: string[]; statics: string[]; containers: number }[];
  networks: { name: string; subnet: string; vni: number }[];
}
const status = async (): Promise<Status> => JSON.parse((await h(1).dockcni(['cluster', 'status', '-o', 'json'], { etcd: true })).stdout) as Status;
const confFile = (host: ClusterHost, net: string) => path.join(host.paths.confDir, `45-${net}.conflist`);
const blocksOn = (host: ClusterHost, net: string): string[] => {
  const file = confFile(host, net);
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as { dockcni: { cluster: { blocks: string[] } } }).dockcni.cluster.blocks : [];
};
const inCidr = (ip: string, cidr: string) => {
  const n = (a: string) => a.split('.').reduce((x, o) => x * 256 + Number(o), 0);
  const [base = '', bits = '32'] = cidr.split('/');
  const size = 2 ** (32 - Number(bits));
  return n(ip) >= n(base) && n(ip) < n(base) + size;
};

/**
 * A cluster network made from host 1 and on every host's conf dir; at the test's end its containers
 * are removed on every host, the network too, and nothing of it may be left on any host.
 */
async function clusterNetwork(t: ExecutionContext, subnet: string, extra: readonly string[] = []): Promise<string> {
  const name = uid('cl');
  await h(1).dockcni(['networks', 'create', name, '--scope', 'cluster', '--subnet', subnet, ...extra], { etcd: true });
  await waitFor(`${name} on every host`, async () => all().every((host) => existsSync(confFile(host, name))), 30_000);
  t.teardown(async () => {
    for (const host of all()) await host.removeContainers();
    const r = await h(1).dockcni(['networks', 'rm', name], { etcd: true, reject: false });
    if (r.exitCode !== 0 && !/no cluster network/.test(r.stderr)) throw new Error(`networks rm ${name}: ${r.stderr}`);
    await waitFor(`${name} gone from every host`, async () => all().every((host) => !existsSync(confFile(host, name))), 30_000);
    const left = await leftovers(name);
    if (left.length > 0) throw new Error(`network ${name} left ${left.join('; ')}`);
  });
  return name;
}

/** What a removed network may not leave on any host: keys, links, rules, reservations, records. */
async function leftovers(name: string): Promise<string[]> {
  const left: string[] = [];
  const keys = (await cluster.etcd.ctl(['get', '--prefix', '--keys-only', '/dockcni/v1/'])).split('\n').filter((k) => k.includes(`/${name}`));
  left.push(...keys.map((k) => `etcd key ${k}`));
  const links = linkNames(name);
  for (const host of all()) {
    const ip = (await host.run('ip', ['-o', 'link'])).stdout;
    for (const l of [links.bridge, links.vxlan]) if (ip.includes(`${l}:`) || ip.includes(`${l}@`)) left.push(`${host.name} link ${l}`);
    if (/veth/.test(ip)) left.push(`${host.name} veths ${ip.split('\n').filter((l) => l.includes('veth')).length}`);
    const rules = (await host.run('iptables-save', [])).stdout.split('\n').filter((l) => l.includes(name) || /^:CNI-[0-9a-f]{20,}/.test(l));
    left.push(...rules.map((r) => `${host.name} rule ${r}`));
    const ipam = path.join(host.paths.stateDir, 'cluster', 'ipam', name);
    if (existsSync(ipam)) left.push(`${host.name} reservations ${readdirSync(ipam).join(',')}`);
    left.push(...host.records().map((r) => `${host.name} record ${r}`));
  }
  return left;
}

/** The address a TCP connection arrives from, seen by a listener in a network namespace (a container's or a host's). */
async function sourceSeen(netns: string, listen: string, port: number, connect: () => Promise<unknown>): Promise<string | undefined> {
  const child = execa('nsenter', [`--net=${netns}`, 'node', '-e',
    `const s = require('node:net').createServer((c) => { console.log('peer ' + c.remoteAddress); c.end(); s.close(); }); s.listen(${port}, '${listen}', () => console.log('listening'));`,
  ], { reject: false, timeout: 30_000, buffer: false });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => { out += d.toString(); });
  await waitFor('the listener', async () => out.includes('listening') || (child.exitCode !== null && Promise.reject(new Error(`listener exited: ${out}`))));
  await connect();
  await child;
  return /peer (\S+)/.exec(out)?.[1];
}

/** A failing test shows the end of every host's daemon log. */
const logsOnFailure = (t: ExecutionContext) => t.teardown(() => { if (!t.passed) for (const host of all()) t.log(host.daemonLines.slice(-40).join('\n')); });

const containerNetns = async (host: ClusterHost, c: string) => `/proc/${await host.pidOf(c)}/ns/net`;

serial('across three hosts: addresses from each host\'s block; ping by address and by name; the source kept across hosts, masqueraded out of the cluster; full-size packets pass', async (t) => {
  logsOnFailure(t);
  const net = await clusterNetwork(t, '10.240.0.0/16');
  const names = ['api', 'db', 'cache'].map((n) => uid(n));
  const [api, db, cache] = names as [string, string, string];
  await h(1).container(api, net);
  await h(2).container(db, net);
  await h(3).container(cache, net);
  const addresses = [await h(1).wiredAddress(api), await h(2).wiredAddress(db), await h(3).wiredAddress(cache)];
  for (const [i, host] of all().entries()) {
    const blocks = blocksOn(host, net);
    t.true(blocks.some((b) => inCidr(addresses[i]!, b)), `${names[i]} (${addresses[i]}) is in ${host.name}'s blocks ${blocks.join(',')}`);
  }
  const s = await status();
  for (const host of all()) t.is(s.hosts.find((x) => x.name === host.name)?.state, 'alive');
  // By address, every pair across hosts.
  for (const [i, from] of all().entries()) {
    for (const [j] of all().entries()) if (i !== j) t.true(await from.ping(names[i]!, addresses[j]!), `${names[i]} → ${addresses[j]}`);
  }
  // By name: the other hosts' containers land in each container's hosts file.
  await waitFor('db\'s name on host 1', () => h(1).ping(api, db), 20_000);
  t.true(await h(2).ping(db, api));
  t.true(await h(3).ping(cache, db));
  // The peer sees the sender's own address (no NAT inside the cluster subnet)…
  t.is(await sourceSeen(await containerNetns(h(2), db), '0.0.0.0', 7001, () => h(1).docker(['exec', api, 'nc', '-w', '3', addresses[1]!, '7001'], { reject: false })), addresses[0]);
  // …and what leaves the cluster subnet (here: host 2's underlay address) leaves as host 1's.
  t.is(await sourceSeen('/run/netns/dcct2', h(2).address, 7002, () => h(1).docker(['exec', api, 'nc', '-w', '3', h(2).address, '7002'], { reject: false })), h(1).address);
  // VXLAN costs 50 bytes: the containers' MTU is the underlay's less that, and a packet that fills it (with DF, the kernel's default) crosses.
  t.regex((await h(1).docker(['exec', api, 'cat', '/sys/class/net/eth0/mtu'])).stdout, /^1450/);
  t.true(await h(1).ping(api, addresses[1]!, 1450 - 28), 'a 1450-byte packet crosses');
});

serial('10 containers started at once on each host: 30 distinct addresses, blocks filled and more taken', async (t) => {
  logsOnFailure(t);
  const net = await clusterNetwork(t, '10.241.0.0/16', ['--ip-range', '10.241.0.0/24', '--block-size', '29']);
  const started = all().flatMap((host) => Array.from({ length: 10 }, (_, i) => ({ host, name: uid(`b${i}`) })));
  await Promise.all(started.map(({ host, name }) => host.container(name, net)));
  const addresses = await Promise.all(started.map(({ host, name }) => host.wiredAddress(name, 90_000)));
  t.is(new Set(addresses).size, 30, `distinct: ${addresses.join(' ')}`);
  const s = await status();
  for (const host of all()) {
    const blocks = s.hosts.find((x) => x.name === host.name)?.blocks.filter((b) => b.startsWith(`${net}:`)).map((b) => b.slice(net.length + 1)) ?? [];
    t.true(blocks.length >= 2, `${host.name} took more than one /29 (${blocks.join(',')})`);
    for (const [i, c] of started.entries()) if (c.host === host) t.true(blocks.some((b) => inCidr(addresses[i]!, b)), `${c.name} ${addresses[i]} in ${host.name}'s blocks`);
  }
});

serial('one static address claimed on two hosts at once: one container wired, the other fails naming the holder; routed to its host', async (t) => {
  logsOnFailure(t);
  const net = await clusterNetwork(t, '10.242.0.0/16', ['--ip-range', '10.242.0.0/17']);
  const [s1, s2] = [uid('s1'), uid('s2')];
  const from = [h(1).daemonLog().length, h(2).daemonLog().length];
  await Promise.all([h(1).container(s1, net, ['-l', 'dockcni.ip=10.242.200.5']), h(2).container(s2, net, ['-l', 'dockcni.ip=10.242.200.5'])]);
  const line = await Promise.any([h(1).logLine(/wiring failed/, 30_000, from[0]), h(2).logLine(/wiring failed/, 30_000, from[1])]);
  const loser = (JSON.parse(line) as { container: string }).container;
  const [winner, winnerHost] = loser === s1 ? [s2, h(2)] : [s1, h(1)];
  t.regex(line, new RegExp(`10\\.242\\.200\\.5 on cluster network ${net} is already held by container ${winner} on host ${winnerHost.name}`));
  t.is(await winnerHost.wiredAddress(winner), '10.242.200.5');
  const watcher = uid('w');
  await h(3).container(watcher, net);
  await h(3).wiredAddress(watcher);
  t.true(await h(3).ping(watcher, '10.242.200.5'), 'the static address is routed to its host');
  // A static address inside the dynamic range is refused before anything changes.
  const inside = uid('in');
  const from3 = h(3).daemonLog().length;
  await h(3).container(inside, net, ['-l', 'dockcni.ip=10.242.3.3']);
  t.regex(await h(3).logLine(/wiring failed/, 30_000, from3), /10\.242\.3\.3.*inside the dynamic range 10\.242\.0\.0\/17/);
});

serial('health: a deleted VXLAN device, a flushed FDB and a deleted route are put back within the check interval', async (t) => {
  logsOnFailure(t);
  const net = await clusterNetwork(t, '10.243.0.0/16');
  const [a, b] = [uid('a'), uid('b')];
  await h(1).container(a, net);
  await h(2).container(b, net);
  await h(1).wiredAddress(a);
  const bAddress = await h(2).wiredAddress(b);
  t.true(await h(1).ping(a, bAddress));
  const { vxlan } = linkNames(net);
  const remoteBlock = blocksOn(h(2), net)[0]!;
  for (const [what, args, said, whole] of [
    ['the VXLAN device', ['ip', 'link', 'del', vxlan], `VXLAN device ${vxlan}`, async () => (await h(1).run('ip', ['link', 'show', vxlan], { reject: false })).exitCode === 0],
    ['its FDB', ['bridge', 'fdb', 'flush', 'dev', vxlan], `FDB `, async () => (await h(1).run('bridge', ['fdb', 'show', 'dev', vxlan])).stdout.includes(h(2).address)],
    ['the route to host 2\'s block', ['ip', 'route', 'del', remoteBlock], `route ${remoteBlock}`, async () => (await h(1).run('ip', ['route', 'show', remoteBlock])).stdout.includes(vxlan)],
  ] as const) {
    const from = h(1).daemonLog().length;
    await h(1).run(args[0], args.slice(1));
    // The health loop (every second here) finds it, says what it found, and puts it back.
    const line = await h(1).logLine(/"msg":"repaired","what":"cluster network/, 10_000, from);
    t.true(line.includes(said), `${line} names ${said}`);
    t.true(await whole(), `${what} is back`);
    await waitFor(`${a} → ${b} after repairing ${what}`, () => h(1).ping(a, bAddress), 10_000);
  }
});

serial('host loss: names and routes leave the peers within the TTL, status says lost; back before forget it keeps its addresses; forget frees its blocks', async (t) => {
  logsOnFailure(t);
  const net = await clusterNetwork(t, '10.244.0.0/16');
  const [a, gone] = [uid('a'), uid('gone')];
  await h(1).container(a, net);
  await h(3).container(gone, net, ['--restart', 'always']);
  await h(1).wiredAddress(a);
  const address = await h(3).wiredAddress(gone);
  await waitFor('the name on host 1', () => h(1).ping(a, gone), 20_000);
  const block = blocksOn(h(3), net)[0]!;
  // Host 3 goes away: its daemon, then its dockerd (taking its containers down).
  await h(3).stopDaemon();
  await h(3).stopDockerd();
  const lostAt = Date.now();
  await waitFor('host 3\'s name gone from host 1\'s container', async () => !(await h(1).docker(['exec', a, 'cat', '/etc/hosts'])).stdout.includes(gone), 20_000);
  await waitFor('host 3\'s route gone from host 1', async () => !(await h(1).run('ip', ['route', 'show', block])).stdout.includes('via'), 20_000);
  t.true(Date.now() - lostAt < 5000 + 10_000, `within the host TTL (5 s) and a margin: ${Date.now() - lostAt} ms`);
  const s = await status();
  t.is(s.hosts.find((x) => x.name === 'dcct3')?.state, 'lost');
  t.true(s.hosts.find((x) => x.name === 'dcct3')?.blocks.includes(`${net}:${block}`), 'its blocks stay reserved');
  // Back before anyone forgets it: the same block, the same address.
  await h(3).startDockerd();
  await h(3).startDaemon();
  t.is(await waitFor('the container back', async () => (await h(3).addressOf(gone)), 30_000), address);
  await waitFor('the name back on host 1', () => h(1).ping(a, gone), 20_000);
  // Lost again, then forgotten: refused while alive, then its blocks go back to the range.
  const alive = await h(1).dockcni(['cluster', 'forget', 'dcct3'], { etcd: true, reject: false });
  t.not(alive.exitCode, 0);
  t.regex(alive.stderr, /dcct3 is alive/);
  await h(3).stopDaemon();
  await h(3).stopDockerd();
  await waitFor('host 3 lost', async () => (await status()).hosts.find((x) => x.name === 'dcct3')?.state === 'lost', 20_000);
  const forgot = await h(1).dockcni(['cluster', 'forget', 'dcct3'], { etcd: true });
  t.regex(forgot.stdout, /forgot dcct3: \d+ key\(s\) released/);
  t.deepEqual((await status()).hosts.find((x) => x.name === 'dcct3')?.blocks ?? [], []);
  await h(3).startDockerd();
  await h(3).startDaemon();
  const again = await waitFor('the container back', () => h(3).addressOf(gone), 30_000);
  t.true(blocksOn(h(3), net).some((b) => inCidr(again, b)), 'a forgotten host takes blocks anew');
});

serial('etcd: one member down changes nothing; without quorum running containers talk, a host with room wires, a host without fails clearly and is wired once quorum is back', async (t) => {
  logsOnFailure(t);
  t.teardown(async () => { await cluster.etcd.start(); await cluster.etcd.healthy(); });
  const net = await clusterNetwork(t, '10.245.0.0/16', ['--ip-range', '10.245.0.0/24', '--block-size', '29']);
  const [a, b] = [uid('a'), uid('b')];
  await h(1).container(a, net);
  await h(2).container(b, net);
  await h(1).wiredAddress(a);
  const bAddress = await h(2).wiredAddress(b);
  await cluster.etcd.kill(2);
  const c = uid('c');
  await h(1).container(c, net);
  await h(1).wiredAddress(c);
  t.true(await h(1).ping(c, bAddress), 'one member down: wired and talking');
  await cluster.etcd.kill(1);
  t.true(await h(1).ping(a, bAddress), 'no quorum: running containers keep talking across hosts');
  // A daemon restarted meanwhile stops promptly, and starts again from the blocks it holds.
  const stopping = Date.now();
  t.is(await h(1).stopDaemon(), 0);
  t.true(Date.now() - stopping < 15_000, `stopped in ${Date.now() - stopping} ms without etcd`);
  await h(1).startDaemon();
  await h(1).logLine(/etcd does not answer; working from this host's blocks/);
  const d = uid('d');
  await h(1).container(d, net);
  await h(1).wiredAddress(d);
  t.true(await h(1).ping(d, bAddress), 'wired from its own block while etcd is away');
  const rejoinFrom = h(1).daemonLog().length;
  // Host 2 has room left in its blocks (its conflist and its reservations say how much): those containers are wired.
  const capacity = blocksOn(h(2), net).reduce((n, _b, i) => n + 8 - (i === 0 ? 3 : 2), 0);
  const used = readdirSync(path.join(h(2).paths.stateDir, 'cluster', 'ipam', net)).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f)).length;
  const room = Array.from({ length: capacity - used }, (_, i) => uid(`r${i}`));
  for (const r of room) await h(2).container(r, net);
  const roomAddresses = await Promise.all(room.map((r) => h(2).wiredAddress(r, 60_000)));
  // One more needs a block, which needs etcd: it fails with the reason, and is retried.
  const from = h(2).daemonLog().length;
  const late = uid('late');
  await h(2).container(late, net);
  t.regex(await h(2).logLine(/wiring failed/, 60_000, from), /etcd is unreachable or has no quorum/);
  await cluster.etcd.start();
  const lateAddress = await h(2).wiredAddress(late, 120_000);
  await h(1).logLine(/joined the cluster: etcd answers again/, 60_000, rejoinFrom);
  const everyone = [await h(1).addressOf(a), await h(1).addressOf(c), await h(1).addressOf(d), bAddress, ...roomAddresses, lateAddress];
  t.is(new Set(everyone).size, everyone.length, `no address twice: ${everyone.join(' ')}`);
});

serial('bad input: an address not on the host, a host name held by a live host, etcd that does not answer, an overlapping subnet: each refused before anything changes', async (t) => {
  const own = (n: string) => ['--state-dir', `/var/lib/dcct1/bad-${n}`, '--run-dir', `/run/dcct1/bad-${n}`];
  t.teardown(async () => { for (const n of ['a', 'b', 'c']) await h(1).run('rm', ['-rf', `/var/lib/dcct1/bad-${n}`, `/run/dcct1/bad-${n}`]); });
  const daemon = (args: string[]) => h(1).run('node', [BIN, 'daemon', '--docker-host', h(1).dockerHost, '--conf-dir', h(1).paths.confDir, ...args], { reject: false, timeout: 60_000 });
  const endpoints = cluster.etcd.endpoints.join(',');
  const notHere = await daemon(['--etcd', endpoints, '--advertise-address', '10.247.0.99', ...own('a')]);
  t.not(notHere.exitCode, 0);
  t.regex(notHere.stderr, /--advertise-address "10\.247\.0\.99": not an address of this host/);
  const taken = await daemon(['--etcd', endpoints, '--advertise-address', h(1).address, '--host-name', 'dcct2', ...own('b')]);
  t.not(taken.exitCode, 0);
  t.regex(taken.stderr, /--host-name "dcct2": is taken by a live host at 10\.247\.0\.12/);
  const nowhere = await daemon(['--etcd', 'http://10.247.0.11:2999', '--advertise-address', h(1).address, '--host-name', 'other', ...own('c')]);
  t.not(nowhere.exitCode, 0);
  t.regex(nowhere.stderr, /etcd is unreachable or has no quorum \(http:\/\/10\.247\.0\.11:2999\)/);
  const net = await clusterNetwork(t, '10.246.0.0/16');
  const overlap = await h(2).dockcni(['networks', 'create', uid('ov'), '--scope', 'cluster', '--subnet', '10.246.128.0/17'], { etcd: true, reject: false });
  t.not(overlap.exitCode, 0);
  t.regex(overlap.stderr, new RegExp(`overlaps 10\\.246\\.0\\.0/16 of cluster network ${net}`));
  t.is((await status()).networks.filter((n) => n.subnet.startsWith('10.246.')).length, 1, 'nothing half-created');
  t.deepEqual((await status()).hosts.map((x) => x.name).sort(), ['dcct1', 'dcct2', 'dcct3'], 'no host registered by the refused daemons');
});

serial('networks rm: refused while a host has a container on it; after the last one, no key, device, rule or reservation left on any host', async (t) => {
  const net = await clusterNetwork(t, '10.248.0.0/16');
  const c = uid('c');
  await h(2).container(c, net);
  await h(2).wiredAddress(c);
  await waitFor('its name in etcd', async () => (await status()).hosts.find((x) => x.name === 'dcct2')!.containers > 0, 20_000);
  const refused = await h(1).dockcni(['networks', 'rm', net], { etcd: true, reject: false });
  t.not(refused.exitCode, 0);
  t.regex(refused.stderr, new RegExp(`cluster network ${net} has 1 container\\(s\\) on it: .*\\(dcct2\\)`));
  await h(2).removeContainers();
  await waitFor('its name gone from etcd', async () => (await status()).hosts.find((x) => x.name === 'dcct2')!.containers === 0, 20_000);
  await h(1).dockcni(['networks', 'rm', net], { etcd: true });
  await waitFor(`${net} gone from every host`, async () => all().every((host) => !existsSync(confFile(host, net))), 30_000);
  t.deepEqual(await leftovers(net), []);
});
