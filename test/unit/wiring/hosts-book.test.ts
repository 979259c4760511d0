import test from 'ava';
import type { AttachmentRecord } from '../../../src/state/attachment.js';
import { hostsEntries } from '../../../src/wiring/hosts-book.js';

const record = (name: string, nets: [string, string, string[]?][], extra: Partial<AttachmentRecord> = {}): AttachmentRecord => ({
  containerId: name.padEnd(12, '0'), name, pid: 1, startedAt: '', netns: `/run/dockcni/netns/${name}`, origin: 'daemon', updatedAt: '',
  networks: nets.map(([network, address, aliases], i) => ({ network, ifName: `eth${i}`, state: 'wired', args: [], capabilityArgs: {}, addresses: [`${address}/24`], aliases })),
  ...extra,
});

test('names are per network: a peer is listed only on a network both are on, under its names there', (t) => {
  const a = record('a', [['front', '10.1.0.2']], { hostname: 'a-host' });
  const b = record('b', [['front', '10.1.0.3', ['web']], ['back', '10.2.0.3', ['db']]]);
  const c = record('c', [['back', '10.2.0.4']]);
  const all = [a, b, c];
  t.deepEqual(hostsEntries(a, all), [['10.1.0.2', 'a-host', 'a'], ['10.1.0.3', 'b', 'web']], 'a sees b on front only, and never c');
  t.deepEqual(hostsEntries(c, all), [['10.2.0.4', 'c'], ['10.2.0.3', 'b', 'db']], 'c sees b under its back alias');
  t.deepEqual(hostsEntries(b, all), [['10.1.0.3', 'b', 'web'], ['10.2.0.3', 'b', 'db'], ['10.1.0.2', 'a-host', 'a'], ['10.2.0.4', 'c']]);
});

test('a peer being torn down or not yet wired is not listed; nor is a failed record', (t) => {
  const a = record('a', [['front', '10.1.0.2']]);
  const deleting = record('d', [['front', '10.1.0.9']]);
  deleting.networks[0]!.state = 'deleting';
  const failed = { ...record('f', [['front', '10.1.0.8']]), netns: '' };
  t.deepEqual(hostsEntries(a, [a, deleting, failed]), [['10.1.0.2', 'a']]);
});
