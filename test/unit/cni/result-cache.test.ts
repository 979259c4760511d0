import { chmod, mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import { ResultCache } from '../../../src/cni/result-cache.js';
import { validateContainerId, validateIfName } from '../../../src/cni/identifiers.js';
import { parseNetDev } from '../../../src/cni/netns-guard.js';
import { findPlugin } from '../../../src/cni/plugin-path.js';
import { PluginNotFoundError } from '../../../src/errors.js';
import { tempDir } from '../../helpers/fixtures.js';

const rt = { containerId: 'c1', netns: '/run/dockcni/netns/c1', ifName: 'eth0', args: [['A', 'b']] as const, capabilityArgs: { mac: '02:00:00:00:00:01' } };

test('an entry round-trips in libcni\'s format, 0600 in a 0700 dir, and goes on remove', async (t) => {
  const cache = new ResultCache(await tempDir(t));
  await cache.write('net', Buffer.from('{"x":1}'), rt, { cniVersion: '1.0.0', ips: [{ address: '10.0.0.2/24' }] });
  const entry = await cache.read('net', 'c1', 'eth0');
  t.deepEqual(entry, {
    kind: 'cniCacheV1', containerId: 'c1', config: Buffer.from('{"x":1}').toString('base64'), ifName: 'eth0', networkName: 'net',
    netns: '/run/dockcni/netns/c1', cniArgs: [['A', 'b']], capabilityArgs: { mac: '02:00:00:00:00:01' }, result: { cniVersion: '1.0.0', ips: [{ address: '10.0.0.2/24' }] },
  });
  t.is((await stat(cache.pathFor('net', 'c1', 'eth0'))).mode & 0o777, 0o600);
  t.is((await stat(cache.resultsDir)).mode & 0o777, 0o700);
  await cache.remove('net', 'c1', 'eth0');
  await cache.remove('net', 'c1', 'eth0');
  t.deepEqual(await readdir(cache.resultsDir), []);
});

test('scan reads other runtimes\' entries as libcni does and names, never throws on, what is not an entry', async (t) => {
  const cache = new ResultCache(await tempDir(t));
  await mkdir(cache.resultsDir, { recursive: true });
  const config = Buffer.from('{}').toString('base64');
  // libcni 1.1.x: no netns; and what older or broken writers leave.
  await writeFile(path.join(cache.resultsDir, 'n-ctrd-eth0'), JSON.stringify({ kind: 'cniCacheV1', containerId: 'ctrd', config, ifName: 'eth0', networkName: 'n', result: {} }));
  await writeFile(path.join(cache.resultsDir, 'n-old-eth0'), JSON.stringify({ cniVersion: '0.3.1', ips: [] }));
  await writeFile(path.join(cache.resultsDir, 'n-half-eth0'), '{"kind":"cniCa');
  await writeFile(path.join(cache.resultsDir, 'empty'), '');
  await writeFile(path.join(cache.resultsDir, 'noid'), JSON.stringify({ kind: 'cniCacheV1', config, ifName: 'eth0', networkName: 'n' }));
  await mkdir(path.join(cache.resultsDir, 'a-dir'));
  await writeFile(path.join(cache.resultsDir, 'n-x-eth0.tmp-1-abcd'), 'half');
  const { entries, skipped } = await cache.scan();
  t.deepEqual(entries.map((e) => [e.containerId, e.netns, e.cniArgs.length]), [['ctrd', undefined, 0]]);
  t.deepEqual(skipped.map((s) => [path.basename(s.path), s.reason]).sort(), [
    ['a-dir', 'cannot read: EISDIR'], ['empty', 'not JSON'], ['n-half-eth0', 'not JSON'],
    ['n-old-eth0', 'not a cniCacheV1 entry (an older libcni wrote the bare result)'], ['noid', 'no "containerId"'],
  ]);
  t.is(await cache.read('n', 'half', 'eth0'), undefined, 'an unusable entry reads as none');
});

test('container ids and interface names as libcni validates them', (t) => {
  for (const id of ['abc', 'cnitool-0123456789abcdef0123', 'a.b_c-d']) t.notThrows(() => validateContainerId(id), id);
  for (const id of ['', '../x', '.hidden', 'a/b', 'a b', 'a:b']) t.throws(() => validateContainerId(id), { message: /invalid container id/ }, id);
  for (const name of ['eth0', 'net1', 'a'.repeat(15)]) t.notThrows(() => validateIfName(name), name);
  for (const name of ['', '.', '..', 'a/b', 'a:b', 'a b', 'a'.repeat(16), 'tab\t']) t.throws(() => validateIfName(name), { message: /invalid interface name/ }, JSON.stringify(name));
});

test('the links of a netns from its /proc/<pid>/net/dev table', (t) => {
  const table = 'Inter-|   Receive    |  Transmit\n face |bytes    packets|bytes    packets\n    lo:       0       0        0       0\n  eth0: 1296      16     1296      16\nnet1@x: 0 0 0 0\n';
  t.deepEqual(parseNetDev(table), ['lo', 'eth0', 'net1@x']);
});

test('plugin lookup: the first directory with an executable of that exact name; nothing outside the path', async (t) => {
  const dir = await tempDir(t);
  const [a, b] = [path.join(dir, 'a'), path.join(dir, 'b')];
  await mkdir(a);
  await mkdir(b);
  await writeFile(path.join(a, 'p'), '#!/bin/sh\n');
  await writeFile(path.join(b, 'p'), '#!/bin/sh\n');
  await chmod(path.join(b, 'p'), 0o755);
  t.is(findPlugin('p', [a, b]), path.join(b, 'p'), 'not executable in a: taken from b');
  t.throws(() => findPlugin('../b/p', [a]), { instanceOf: PluginNotFoundError });
  t.throws(() => findPlugin('q', [a, b]), { instanceOf: PluginNotFoundError, message: new RegExp(`"q" not found in ${a}:${b}`) });
});
