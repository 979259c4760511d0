import test from 'ava';
import { bridgeName, conflistFor, overlap, pickSubnet, type NetworkSpec } from '../../../src/cni/network-spec.js';

const spec = (over: Partial<NetworkSpec> = {}): NetworkSpec => ({ name: 'front', driver: 'bridge', subnets: ['10.220.5.0/24'], gateways: [], internal: false, ipam: 'host-local', labels: {}, ...over });

test('subnets overlap when one holds the other\'s first address; families never overlap', (t) => {
  t.true(overlap('10.220.0.0/16', '10.220.5.0/24'));
  t.true(overlap('10.220.5.0/24', '10.220.0.0/16'));
  t.true(overlap('10.220.5.128/25', '10.220.5.0/24'));
  t.false(overlap('10.220.5.0/24', '10.220.6.0/24'));
  t.false(overlap('10.220.5.0/24', 'fd00::/8'));
  t.true(overlap('fd00:dc::/64', 'fd00::/8'));
});

test('a free /24 of the pool is picked past what is taken', (t) => {
  t.is(pickSubnet([]), '10.220.0.0/24');
  t.is(pickSubnet(['10.220.0.0/24', '10.220.1.0/25']), '10.220.2.0/24');
  t.is(pickSubnet(['10.220.0.0/16']), undefined);
});

test('the conflist a Docker host needs, per driver', (t) => {
  const bridge = conflistFor(spec({ gateways: ['10.220.5.1'], ipRange: '10.220.5.0/25', mtu: 1400 })) as { plugins: Record<string, unknown>[] };
  t.deepEqual(bridge.plugins.map((p) => p['type']), ['bridge', 'firewall', 'portmap', 'bandwidth']);
  t.like(bridge.plugins[0], { bridge: bridgeName('front'), isGateway: true, ipMasq: true, mtu: 1400, capabilities: { ips: true, mac: true } });
  t.deepEqual((bridge.plugins[0]?.['ipam'] as { ranges: unknown }).ranges, [[{ subnet: '10.220.5.0/24', gateway: '10.220.5.1', rangeStart: '10.220.5.1', rangeEnd: '10.220.5.127' }]]);
  const internal = conflistFor(spec({ internal: true })) as { plugins: Record<string, unknown>[] };
  t.like(internal.plugins[0], { isGateway: false, ipMasq: false });
  t.deepEqual((internal.plugins[0]?.['ipam'] as { routes: unknown }).routes, []);
  const macvlan = conflistFor(spec({ driver: 'macvlan', parent: 'eth0' })) as { plugins: Record<string, unknown>[] };
  t.deepEqual(macvlan.plugins.map((p) => p['type']), ['macvlan', 'portmap', 'bandwidth']);
  t.throws(() => conflistFor(spec({ driver: 'ipvlan' })), { message: /the ipvlan driver needs the host link/ });
  t.throws(() => conflistFor(spec({ parent: 'a/b' })), { message: /invalid interface name "a\/b"/ });
  t.regex(bridgeName('front'), /^dc-front-[0-9a-f]{6}$/);
  t.regex(bridgeName('a-very-long-network-name'), /^dc-a-very--[0-9a-f]{4}$/);
  t.not(bridgeName('payments-internal'), bridgeName('payments-internet'), 'names that share their start get bridges of their own');
  t.not(bridgeName('front', new Set([bridgeName('front')])), bridgeName('front'), 'a taken name moves to the next');
  t.true(bridgeName('a-very-long-network-name').length <= 15);
});
