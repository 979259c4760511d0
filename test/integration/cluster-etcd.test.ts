import type { ExecutionContext } from 'ava';
import { EtcdCluster, EtcdUnavailableError } from '../../src/cluster/etcd.js';
import { blocksOf, key } from '../../src/cluster/model.js';
import { createClusterNetwork, removeClusterNetwork } from '../../src/networks/cluster.js';
import { DockcniError, InvalidInputError } from '../../src/errors.js';
import { ClusterWiring } from '../../src/wiring/cluster-wiring.js';
import { StaticTakenError } from '../../src/wiring/cluster-link.js';
import { parseConfList } from '../../src/cni/conf.js';
import { testAgent, wiredRecord, type TestAgent } from '../helpers/cluster-agents.js';
import { waitFor } from '../helpers/docker.js';
import { freePort, TestEtcd } from '../helpers/etcd.js';
import { tempDir } from '../helpers/fixtures.js';
import { hostTest } from '../helpers/host.js';

/**
 * The cluster's allocator, claims, presence and name feed against a real etcd (one loopback member of
 * Debian's etcd-server), with agents whose host programs are recorded: what etcd's transactions and
 * leases promise, under races. The data path and containers are test/integration/cluster.test.ts's.
 */
const test = hostTest();

async function etcdFor(t: ExecutionContext): Promise<{ etcd: TestEtcd; dir: string; client: EtcdCluster }> {
  const dir = await tempDir(t, 'dockcni-etcd-');
  const etcd = await TestEtcd.loopback(dir);
  t.teardown(() => etcd.destroy());
  await etcd.start();
  await etcd.healthy();
  const client = new EtcdCluster({ endpoints: etcd.endpoints, timeoutMs: 2000 });
  t.teardown(() => client.close());
  return { etcd, dir, client };
}

const started = async (...agents: TestAgent[]) => { for (const a of agents) await a.start(); };

test('hosts racing for blocks: every block of the range goes to exactly one host, then a clear error says the range is full', async (t) => {
  const { etcd, dir, client } = await etcdFor(t);
  await createClusterNetwork(client, { name: 'race', subnet: '10.240.0.0/16', ipRange: '10.240.0.0/22', blockSize: 26 });
  const agents = await Promise.all(['h1', 'h2', 'h3', 'h4'].map((h) => testAgent(t, etcd, dir, h)));
  await started(...agents);
  // Each agent took its first block on joining; now all ask for more at once, each until none is left.
  const full = await Promise.all(agents.map(async (a) => {
    for (;;) {
      try {
        await a.agent.takeBlock('race');
      } catch (error) {
        return error as Error;
      }
    }
  }));
  for (const e of full) t.regex(e.message, /no free block left in 10\.240\.0\.0\/22 \(blocks of \/26\)/);
  const held = await Promise.all(agents.map(async (a) => (await a.conf('race'))?.blocks ?? []));
  const all = held.flat();
  t.is(new Set(all).size, all.length, 'no block held by two hosts');
  t.deepEqual([...all].sort(), [...blocksOf({ ipRange: '10.240.0.0/22', blockSize: 26 })].sort(), 'every block taken');
  const snapshot = await client.snapshot();
  for (const [i, a] of agents.entries()) {
    for (const b of held[i]!) t.is(snapshot.blocks.get('race')?.get(b)?.host, a.name, `etcd says ${b} is ${a.name}'s`);
  }
});

test('the same block taken by twenty callers at once: one transaction wins', async (t) => {
  const { client } = await etcdFor(t);
  await createClusterNetwork(client, { name: 'one', subnet: '10.241.0.0/16' });
  const lease = await client.lease(60, 'block');
  const wins = await Promise.all(Array.from({ length: 20 }, (_, i) => client.takeBlock('one', '10.241.7.0/24', { host: `h${i}`, hostUid: `u${i}`, leasedAt: '' }, lease)));
  t.is(wins.filter(Boolean).length, 1);
  await lease.revoke();
});

test('a static address claimed on two hosts at once: one holds it, the other is told who (container and host)', async (t) => {
  const { etcd, dir, client } = await etcdFor(t);
  await createClusterNetwork(client, { name: 'st', subnet: '10.242.0.0/16', ipRange: '10.242.0.0/17' });
  const [a, b] = [await testAgent(t, etcd, dir, 'ha'), await testAgent(t, etcd, dir, 'hb')];
  await started(a, b);
  const claims = await Promise.allSettled([
    a.agent.claimStatic('st', '10.242.200.9', { containerId: 'a'.repeat(64), container: 'web-a' }),
    b.agent.claimStatic('st', '10.242.200.9', { containerId: 'b'.repeat(64), container: 'web-b' }),
  ]);
  t.is(claims.filter((c) => c.status === 'fulfilled').length, 1);
  const lost = claims.find((c) => c.status === 'rejected') as PromiseRejectedResult;
  t.true(lost.reason instanceof StaticTakenError);
  const holder = (await client.snapshot()).statics.get('st')?.get('10.242.200.9');
  t.regex((lost.reason as Error).message, new RegExp(`10\\.242\\.200\\.9 .* held by container ${holder?.container} on host ${holder?.host}`));
  // The holder asking again (a retry) keeps it; releasing frees it for the other.
  await t.notThrowsAsync((holder?.host === 'ha' ? a : b).agent.claimStatic('st', '10.242.200.9', { containerId: holder!.containerId, container: holder!.container }));
  await (holder?.host === 'ha' ? a : b).agent.releaseStatic('st', '10.242.200.9', { containerId: holder!.containerId, container: holder!.container });
  await t.notThrowsAsync((holder?.host === 'ha' ? b : a).agent.claimStatic('st', '10.242.200.9', { containerId: 'c'.repeat(64), container: 'web-c' }));
});

test('a static address inside the dynamic range, or with no room for statics, is refused with what to do', async (t) => {
  const list = (cluster: Record<string, unknown>) => parseConfList(Buffer.from(JSON.stringify({
    cniVersion: '1.0.0', name: 'n', dockcni: { createdBy: 'dockcni cluster', cluster: { blocks: ['10.243.0.0/24'], fenced: false, ...cluster } }, plugins: [{ type: 'bridge' }],
  })), '/x/45-n.conflist');
  const wiring = new ClusterWiring(undefined, () => { throw new Error('not reloaded'); });
  const request = (ip: string) => ({ networks: [{ network: 'n', capabilityArgs: { ips: [`${ip}/16`] } }] }) as unknown as Parameters<ClusterWiring['prepare']>[0];
  const inside = await t.throwsAsync(wiring.prepare(request('10.243.0.7'), [list({ subnet: '10.243.0.0/16', ipRange: '10.243.0.0/17' })]), { instanceOf: InvalidInputError });
  t.regex(inside.message, /10\.243\.0\.7.*inside the dynamic range 10\.243\.0\.0\/17.*pick one of 10\.243\.0\.0\/16 outside 10\.243\.0\.0\/17/);
  const noRoom = await t.throwsAsync(wiring.prepare(request('10.243.0.7'), [list({ subnet: '10.243.0.0/16', ipRange: '10.243.0.0/16' })]), { instanceOf: InvalidInputError });
  t.regex(noRoom.message, /no room for static addresses \(create the network with --ip-range smaller than --subnet\)/);
  const outside = await t.throwsAsync(wiring.prepare(request('10.9.0.7'), [list({ subnet: '10.243.0.0/16', ipRange: '10.243.0.0/17' })]), { instanceOf: InvalidInputError });
  t.regex(outside.message, /10\.9\.0\.7.*not in its subnet 10\.243\.0\.0\/16/);
});

test('a host name held by a live host is refused with where that host is; freed when its presence expires', async (t) => {
  const { etcd, dir } = await etcdFor(t);
  const first = await testAgent(t, etcd, dir, 'node-1', { address: '10.247.9.1' });
  await first.start();
  // Another machine (its own state dir, so its own uid) under the same name.
  const other = await testAgent(t, etcd, `${dir}/other`, 'node-1', { address: '10.247.9.2' });
  const error = await t.throwsAsync(other.start(), { instanceOf: InvalidInputError });
  t.regex(error.message, /--host-name "?node-1"?.*taken by a live host at 10\.247\.9\.1/);
  await first.stop();
  // The first left its presence lease to expire (a restart within the TTL keeps its routes on peers).
  await waitFor('node-1\'s presence to expire', async () => {
    try {
      await other.start();
      return true;
    } catch (e) {
      if (!(e instanceof InvalidInputError)) throw e;
      return false;
    }
  }, 20_000);
  t.pass();
});

test('a restarted agent keeps its blocks; `forget` is refused while the host lives, and frees its blocks once it is lost', async (t) => {
  const { etcd, dir, client } = await etcdFor(t);
  await createClusterNetwork(client, { name: 'keep', subnet: '10.244.0.0/16' });
  const a = await testAgent(t, etcd, dir, 'ka');
  await a.start();
  const before = (await a.conf('keep'))?.blocks;
  t.is(before?.length, 1);
  await a.stop();
  await a.start();
  t.deepEqual((await a.conf('keep'))?.blocks, before, 'the same block after a restart');
  await t.throwsAsync(client.forgetHost('ka', await client.snapshot()), { instanceOf: DockcniError, message: /ka is alive again: nothing forgotten/ });
  await a.stop();
  await waitFor('ka to be lost', async () => !(await client.snapshot()).hosts.has('ka'), 20_000);
  const released = await client.forgetHost('ka', await client.snapshot());
  t.true(released >= 1);
  t.is((await client.snapshot()).blocks.get('keep')?.size ?? 0, 0, 'no block of ka left');
});

test('fencing: a host whose block lease etcd cannot confirm gives out no address until it has, and then does again', async (t) => {
  const { etcd, dir, client } = await etcdFor(t);
  await createClusterNetwork(client, { name: 'fence', subnet: '10.245.0.0/16' });
  const a = await testAgent(t, etcd, dir, 'fa', { blockTtl: 10 });
  await a.start();
  t.false((await a.conf('fence'))?.fenced);
  await etcd.kill(0);
  await waitFor('the conflist to say fenced', async () => (await a.conf('fence'))?.fenced === true, 20_000);
  const bytes = (await import('node:fs')).readFileSync(`${a.root}/net.d/45-fence.conflist`);
  const wiring = new ClusterWiring(undefined, () => { throw new Error('not reloaded'); });
  const fenced = await t.throwsAsync(wiring.prepare({ networks: [{ network: 'fence', capabilityArgs: {} }] } as unknown as Parameters<ClusterWiring['prepare']>[0], [parseConfList(bytes, 'x')]), { instanceOf: DockcniError });
  t.is((fenced as DockcniError).code, 'cluster-fenced');
  t.regex(a.log.text(), /etcd has not confirmed this host's blocks in time/);
  await etcd.start(0);
  await waitFor('the blocks to be confirmed again', async () => (await a.conf('fence'))?.fenced === false, 30_000);
  t.deepEqual((await a.conf('fence'))?.blocks.length, 1);
});

test('names: a container on one host is in the other hosts\' names file, and gone when it is removed or its host is lost', async (t) => {
  const { etcd, dir, client } = await etcdFor(t);
  await createClusterNetwork(client, { name: 'nm', subnet: '10.246.0.0/16' });
  const [a, b] = [await testAgent(t, etcd, dir, 'na', { hostTtl: 5 }), await testAgent(t, etcd, dir, 'nb')];
  await started(a, b);
  await a.store.write(wiredRecord('d'.repeat(64), 'db', 'nm', '10.246.3.4'));
  await waitFor('db in nb\'s names', async () => (await b.remoteNames())['nm']?.some((n) => n.names.includes('db') && n.addresses.includes('10.246.3.4')));
  t.deepEqual(b.changed.at(-1), ['nm'], 'nb rewrote the hosts files of nm');
  t.deepEqual((await a.remoteNames())['nm'], [], 'a host does not list its own containers as remote');
  await a.store.remove('d'.repeat(64));
  await waitFor('db gone from nb\'s names', async () => (await b.remoteNames())['nm']?.length === 0);
  await a.store.write(wiredRecord('e'.repeat(64), 'cache', 'nm', '10.246.3.5'));
  await waitFor('cache in nb\'s names', async () => (await b.remoteNames())['nm']?.length === 1);
  await a.stop();
  await waitFor('cache gone with its host', async () => (await b.remoteNames())['nm']?.length === 0, 20_000);
  t.false((await client.snapshot()).names.get('nm')?.size !== undefined && (await client.snapshot()).names.get('nm')!.size > 0, 'the names key went with the presence lease');
  t.is((await client.snapshot()).seen.get('na')?.address, '10.247.9.1', 'where na was last seen is kept for `cluster status`');
});

test('networks: two creates on overlapping subnets at once, one wins; rm refused while a host has a container on it; bad input changes nothing', async (t) => {
  const { client } = await etcdFor(t);
  const results = await Promise.allSettled([
    createClusterNetwork(client, { name: 'ov-a', subnet: '10.250.0.0/16' }),
    createClusterNetwork(client, { name: 'ov-b', subnet: '10.250.128.0/17' }),
  ]);
  t.is(results.filter((r) => r.status === 'fulfilled').length, 1);
  t.regex(((results.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason as Error).message, /overlaps 10\.250\.(0|128)\.0\/1[67] of cluster network ov-[ab]/);
  const winner = [...(await client.snapshot()).networks.keys()];
  t.is(winner.length, 1);
  // Each bad value named, with what to write instead.
  const bad: [Parameters<typeof createClusterNetwork>[1], RegExp][] = [
    [{ name: 'bad', subnet: '10.251.0.0/16', blockSize: 12 }, /--block-size "12": a block must fit the dynamic range 10\.251\.0\.0\/16 .* write e\.g\. --block-size 24/],
    [{ name: 'bad', subnet: '10.251.0.0/16', backend: 'wireguard' }, /--backend "wireguard": unknown backend .* use vxlan or host-gw/],
    [{ name: 'bad', subnet: '10.251.0.1/16' }, /--subnet "10\.251\.0\.1\/16": has host bits set .* 10\.251\.0\.0\/16/],
    [{ name: 'bad', subnet: 'fd00::/64' }, /--subnet "fd00::\/64": cluster networks are IPv4/],
    [{ name: 'bad', subnet: '10.251.0.0/16', ipRange: '10.252.0.0/24' }, /--ip-range "10\.252\.0\.0\/24": not inside --subnet 10\.251\.0\.0\/16/],
    [{ name: 'bad/name', subnet: '10.251.0.0/16' }, /network name "bad\/name"/],
    [{ name: 'bad', subnet: '10.251.0.0/16', mtu: 100 }, /--mtu "100": not an MTU from 576 to 9000/],
  ];
  for (const [request, says] of bad) {
    const error = await t.throwsAsync(createClusterNetwork(client, request), { instanceOf: InvalidInputError });
    t.regex(`${error.message} — ${error.fix ?? ''}`, says);
  }
  t.deepEqual([...(await client.snapshot()).networks.keys()], winner, 'nothing half-created');
  const name = winner[0]!;
  const lease = await client.lease(60, 'presence');
  await client.putName(name, { host: 'far', containerId: 'f'.repeat(64), names: ['web'], addresses: ['10.250.1.2'] }, lease);
  await t.throwsAsync(removeClusterNetwork(client, name, []), { message: new RegExp(`cluster network ${name} has 1 container\\(s\\) on it: ffffffffffff \\(far\\)`) });
  await lease.revoke();
  await removeClusterNetwork(client, name, []);
  t.is(await (await import('node:child_process')).execFileSync('etcdctl', ['--endpoints', client.options.endpoints.join(','), 'get', '--prefix', '--keys-only', key.blocks(name)], { encoding: 'utf8' }).trim(), '');
  t.is((await client.snapshot()).networks.size, 0);
});

test('etcd that does not answer: a clear error naming the endpoints, within the call timeout, and nothing created', async (t) => {
  const port = await freePort();
  const client = new EtcdCluster({ endpoints: [`http://127.0.0.1:${port}`], timeoutMs: 1500 });
  t.teardown(() => client.close());
  const started = Date.now();
  const error = await t.throwsAsync(createClusterNetwork(client, { name: 'nowhere', subnet: '10.253.0.0/16' }), { instanceOf: EtcdUnavailableError });
  t.regex(error.message, new RegExp(`etcd is unreachable or has no quorum \\(http://127\\.0\\.0\\.1:${port}\\)`));
  t.is((error as EtcdUnavailableError).code, 'etcd-unavailable');
  t.true(Date.now() - started < 15_000, `failed after ${Date.now() - started} ms`);
  const bad = t.throws(() => new EtcdCluster({ endpoints: ['10.0.0.1:2379'] }), { instanceOf: InvalidInputError, message: /--etcd "10\.0\.0\.1:2379": not an etcd client URL/ });
  t.regex(bad?.fix ?? '', /http:\/\/10\.0\.0\.1:2379/);
});
