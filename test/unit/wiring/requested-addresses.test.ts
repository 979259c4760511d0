import test from 'ava';
import type { NetworkConfigList } from '../../../src/cni/types.js';
import { InvalidInputError } from '../../../src/errors.js';
import type { AttachmentRecord } from '../../../src/state/attachment.js';
import { checkRequestedAddresses } from '../../../src/wiring/requested-addresses.js';

const network = (ipam: Record<string, unknown>): NetworkConfigList => ({
  name: 'lan', cniVersion: '1.0.0', disableCheck: false, disableGC: false, bytes: Buffer.from(''), source: 'lan.conflist',
  plugins: [{ type: 'bridge', ipam }],
});
const dual = network({ type: 'host-local', ranges: [[{ subnet: '10.7.0.0/24' }], [{ subnet: 'fd07::/64' }]] });
const holder = (address: string, state: 'wired' | 'deleting'): AttachmentRecord => ({
  containerId: 'a'.repeat(64), name: 'web', pid: 1, startedAt: '', netns: '/run/x', origin: 'daemon', updatedAt: '',
  networks: [{ network: 'lan', ifName: 'eth0', state, args: [], capabilityArgs: {}, addresses: [address] }],
});

test('addresses inside any host-local range of their family pass, with or without a prefix', (t) => {
  t.notThrows(() => checkRequestedAddresses(dual, ['10.7.0.9', 'fd07::9/64'], []));
});

test('an address outside the ranges names them', (t) => {
  t.throws(() => checkRequestedAddresses(dual, ['10.8.0.9'], []), { instanceOf: InvalidInputError, message: /"10\.8\.0\.9": outside the network's range 10\.7\.0\.0\/24/ });
  t.throws(() => checkRequestedAddresses(dual, ['fd08::1'], []), { message: /outside the network's range fd07::\/64/ });
});

test('the old single-subnet shape counts; other IPAM types judge their own addresses', (t) => {
  t.throws(() => checkRequestedAddresses(network({ type: 'host-local', subnet: '10.9.0.0/16' }), ['10.10.0.1'], []), { message: /10\.9\.0\.0\/16/ });
  t.notThrows(() => checkRequestedAddresses(network({ type: 'dhcp' }), ['192.0.2.1'], []));
});

test('an address another wired container holds names that container; one being deleted does not count', (t) => {
  t.throws(() => checkRequestedAddresses(dual, ['10.7.0.9'], [holder('10.7.0.9/24', 'wired')]), { message: /already held by container web \(aaaaaaaaaaaa\)/ });
  t.notThrows(() => checkRequestedAddresses(dual, ['10.7.0.9'], [holder('10.7.0.9/24', 'deleting')]));
});
