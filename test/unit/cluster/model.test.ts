import test from 'ava';
import { clusterConflist, usage } from '../../../src/cluster/conflist.js';
import { DataPath, plan, type Desired } from '../../../src/cluster/datapath.js';
import { blocksOf, checkHostName, clusterNetworkFor, containerMtu, linkNames, pickFreeBlock, vtepMac, type ClusterNetwork, type HostRecord } from '../../../src/cluster/model.js';
import { fixOf } from '../../../src/errors.js';
import { FakeCommands } from '../../helpers/fake-commands.js';
import { FakeKernel } from '../../helpers/fake-kernel.js';

const network = (over: Partial<Parameters<typeof clusterNetworkFor>[0]> = {}): ClusterNetwork =>
  clusterNetworkFor({ name: 'blue', subnet: '10.240.0.0/16', ...over }, 7, new Date(0));

const host = (name: string, address: string): HostRecord => ({ name, uid: `uid-${name}`, address, vtepMac: vtepMac(`uid-${name}`), underlayMtu: 1500, since: '' });

test('a network\'s dynamic range is cut into blocks in address order; a free one is never a taken or tried one', (t) => {
  const n = network({ ipRange: '10.240.8.0/22', blockSize: 24 });
  t.deepEqual(blocksOf(n), ['10.240.8.0/24', '10.240.9.0/24', '10.240.10.0/24', '10.240.11.0/24']);
  for (let i = 0; i < 20; i++) t.is(pickFreeBlock(n, new Set(['10.240.8.0/24', '10.240.10.0/24']), new Set(['10.240.9.0/24'])), '10.240.11.0/24');
  t.is(pickFreeBlock(n, new Set(blocksOf(n))), undefined, 'none left');
  t.is(network().blockSize, 24, 'a /16 is cut into /24s unless told');
  t.is(network({ subnet: '10.240.0.0/28' }).blockSize, 28, 'a range smaller than a /24 is one block');
});

test('bad cluster network values are refused, each naming the value and the fix', (t) => {
  const refused = (over: Partial<Parameters<typeof clusterNetworkFor>[0]>, said: RegExp) => {
    const error = t.throws(() => network(over));
    t.regex(`${error?.message ?? ''}; ${fixOf(error) ?? ''}`, said);
  };
  refused({ subnet: '10.240.0.1/16' }, /10\.240\.0\.1\/16.*host bits set.*10\.240\.0\.0\/16/);
  refused({ subnet: 'fd00::/64' }, /fd00::\/64.*cluster networks are IPv4/);
  refused({ subnet: 'nonsense' }, /nonsense.*not a subnet in CIDR notation/);
  refused({ ipRange: '10.241.0.0/24' }, /--ip-range.*10\.241\.0\.0\/24.*not inside --subnet 10\.240\.0\.0\/16/);
  refused({ ipRange: '10.240.0.0/24', blockSize: 22 }, /--block-size.*22.*must fit the dynamic range 10\.240\.0\.0\/24/);
  refused({ blockSize: 30 }, /--block-size.*30/);
  refused({ backend: 'wireguard' }, /--backend.*wireguard.*use vxlan or host-gw/);
  refused({ mtu: 100 }, /--mtu.*100/);
  refused({ name: '../etc' }, /network name.*\.\.\/etc/);
  const badName = t.throws(() => checkHostName('a b'));
  t.regex(`${badName?.message ?? ''}; ${fixOf(badName) ?? ''}`, /--host-name.*a b.*--host-name node-1/);
  t.is(checkHostName('node-1.lan'), 'node-1.lan');
});

test('link names fit the kernel\'s 15 characters and are the same on every host; a VTEP MAC is unicast, local and stable', (t) => {
  const long = linkNames('a-network-with-a-rather-long-name');
  t.true(long.bridge.length <= 15 && long.vxlan.length <= 15);
  t.deepEqual(linkNames('a-network-with-a-rather-long-name'), long);
  t.not(linkNames('a').bridge, linkNames('b').bridge);
  const mac = vtepMac('some-uid');
  t.regex(mac, /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
  const first = Number.parseInt(mac.slice(0, 2), 16);
  t.is(first & 1, 0, 'unicast');
  t.is(first & 2, 2, 'locally administered');
  t.is(vtepMac('some-uid'), mac);
  t.is(containerMtu(network(), 1500), 1450, 'VXLAN costs 50 bytes');
  t.is(containerMtu(network({ backend: 'host-gw' }), 1500), 1500);
  t.is(containerMtu(network({ mtu: 1400 }), 1500), 1400);
});

test('vxlan plan: per remote block a route via its VTEP address, a permanent neighbour, one FDB entry per host; statics as /32s', (t) => {
  const b = host('b', '192.0.2.2');
  const d: Desired = { network: network(), local: host('a', '192.0.2.1'), underlayIf: 'eth9', blocks: ['10.240.1.0/24'], remotes: [
    { record: b, blocks: ['10.240.2.0/24', '10.240.3.0/24'], statics: ['10.240.200.5'] },
    { record: host('c', '192.0.2.3'), blocks: [], statics: [] },
  ] };
  const p = plan(d);
  t.deepEqual(p.routes, [
    { dst: '10.240.2.0/24', via: '10.240.2.0', onlink: true },
    { dst: '10.240.3.0/24', via: '10.240.3.0', onlink: true },
    { dst: '10.240.200.5/32', via: '10.240.2.0', onlink: true },
  ]);
  t.deepEqual(p.neighs, [{ ip: '10.240.2.0', mac: b.vtepMac }, { ip: '10.240.3.0', mac: b.vtepMac }]);
  t.deepEqual(p.fdbs, [{ mac: b.vtepMac, dst: '192.0.2.2' }], 'a host without blocks gets no FDB entry');
  const gw = plan({ ...d, network: network({ backend: 'host-gw' }) });
  t.deepEqual(gw.routes.map((r) => `${r.dst} via ${r.via}`), ['10.240.2.0/24 via 192.0.2.2', '10.240.3.0/24 via 192.0.2.2', '10.240.200.5/32 via 192.0.2.2']);
  t.deepEqual([gw.neighs, gw.fdbs], [[], []]);
});

test('host-gw: a host reached through a router is left out and named, the others are routed', async (t) => {
  const commands = new FakeCommands((file, args) => {
    if (file === 'ip' && args.join(' ') === '-j route get 198.51.100.7') return { stdout: '[{"dst":"198.51.100.7","gateway":"192.0.2.254","dev":"eth9"}]' };
    if (file === 'ip' && args.join(' ') === '-j route get 192.0.2.2') return { stdout: '[{"dst":"192.0.2.2","dev":"eth9"}]' };
    if (file === 'ip' && args[0] === '-j') return { stdout: '[]' };
    return {};
  });
  const d: Desired = { network: network({ backend: 'host-gw' }), local: host('a', '192.0.2.1'), underlayIf: 'eth9', blocks: ['10.240.1.0/24'], remotes: [
    { record: host('near', '192.0.2.2'), blocks: ['10.240.2.0/24'], statics: [] },
    { record: host('far', '198.51.100.7'), blocks: ['10.240.3.0/24'], statics: [] },
  ] };
  const unreachable = await new DataPath(commands).apply(d);
  t.deepEqual(unreachable, [{ host: 'far', address: '198.51.100.7', via: '192.0.2.254' }]);
  const routes = commands.calls.filter((c) => c.startsWith('ip route replace'));
  t.deepEqual(routes, ['ip route replace 10.240.2.0/24 via 192.0.2.2 dev eth9'], 'nothing is routed at the router');
  const vxlan = new FakeCommands((file, args) => (file === 'ip' && args[0] === '-j' ? { stdout: '[]' } : {}));
  t.deepEqual(await new DataPath(vxlan).apply({ ...d, network: network() }), [], 'VXLAN crosses routers');
  t.false(vxlan.calls.some((c) => c.includes('route get')));
});

test('the conflist allocates from this host\'s blocks only, never a VTEP, bridge or last address; usage counts them', (t) => {
  const n = network({ ipRange: '10.240.0.0/20', blockSize: 28 });
  const conf = clusterConflist(n, ['10.240.0.16/28', '10.240.0.48/28'], 1500, '/var/lib/dockcni/cluster-ipam', false) as { plugins: { type: string; mtu?: number; ipMasq?: boolean; ipam?: { dataDir: string; ranges: { subnet: string; rangeStart: string; rangeEnd: string; gateway: string }[][] } }[] };
  const bridge = conf.plugins[0];
  t.is(bridge?.type, 'bridge');
  t.false(bridge?.ipMasq, 'inside the cluster subnet traffic keeps its source');
  t.is(bridge?.mtu, 1450);
  t.deepEqual(bridge?.ipam?.ranges, [[
    { subnet: '10.240.0.0/16', rangeStart: '10.240.0.18', rangeEnd: '10.240.0.30', gateway: '10.240.0.17' },
    { subnet: '10.240.0.0/16', rangeStart: '10.240.0.49', rangeEnd: '10.240.0.62', gateway: '10.240.0.17' },
  ]]);
  t.deepEqual(usage(n, ['10.240.0.16/28', '10.240.0.48/28'], ['10.240.0.18', '10.240.0.50', '10.240.9.9']), { used: 2, capacity: 13 + 14 });
  const none = clusterConflist(n, [], 1500, '/x', true) as { plugins: { ipam?: { ranges: unknown[] } }[] };
  t.deepEqual(none.plugins[0]?.ipam?.ranges, [], 'no block: nothing to allocate from');
});

test('apply changes only what differs: nothing on a second run, the entries of a host when it joins, its entries gone when it leaves', async (t) => {
  const kernel = new FakeKernel();
  const dataPath = new DataPath(kernel);
  const b = { record: host('b', '192.0.2.2'), blocks: ['10.240.2.0/24'], statics: [] };
  const c = { record: host('c', '192.0.2.3'), blocks: ['10.240.3.0/24'], statics: ['10.240.200.9'] };
  const d: Desired = { network: network(), local: host('a', '192.0.2.1'), underlayIf: 'eth9', blocks: ['10.240.1.0/24'], remotes: [b] };
  await dataPath.apply(d);
  t.is(kernel.changes.length, 3, 'b: a route, a neighbour, an FDB entry');
  await dataPath.apply(d);
  t.is(kernel.changes.length, 3, 'a second apply changes nothing');
  await dataPath.apply({ ...d, remotes: [b, c] });
  t.deepEqual(kernel.changes.slice(3).map((l) => l.split(' ').slice(0, 4).join(' ')).sort(), [
    `bridge fdb replace ${c.record.vtepMac}`, 'ip neigh replace 10.240.3.0', 'ip route replace 10.240.200.9/32', 'ip route replace 10.240.3.0/24',
  ]);
  await dataPath.apply(d);
  t.deepEqual([...kernel.routes.keys()].sort(), ['10.240.2.0/24'], "c's routes went with it");
  t.deepEqual([...kernel.neighs.keys()], ['10.240.2.0']);
  t.deepEqual([...kernel.fdbs.values()], ['192.0.2.2']);
});
