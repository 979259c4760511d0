import { mkdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import { parseConfList, parseSingleConf } from '../../../src/cni/conf.js';
import { loadConfDir, pickNetwork } from '../../../src/cni/conf-dir.js';
import { ConfigError, NetworkNotFoundError } from '../../../src/errors.js';
import { tempDir } from '../../helpers/fixtures.js';

const bytes = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v));
const list = (extra: Record<string, unknown> = {}) => ({ cniVersion: '1.0.0', name: 'n', plugins: [{ type: 'bridge' }], ...extra });

const rejects = test.macro((t, input: unknown, reason: RegExp) => {
  const error = t.throws(() => parseConfList(bytes(input), '/etc/cni/net.d/10-x.conflist'), { instanceOf: ConfigError });
  t.is(error?.file, '/etc/cni/net.d/10-x.conflist');
  t.regex(error?.message ?? '', reason);
});

test('malformed JSON', rejects, '{"name": ', /10-x\.conflist: not valid JSON/);
test('a top-level array', rejects, '[]', /expected a JSON object/);
test('no name', rejects, list({ name: undefined }), /missing "name"/);
test('a name with a slash', rejects, list({ name: '../etc' }), /network name "\.\.\/etc" is invalid/);
test('unknown cniVersion', rejects, list({ cniVersion: '9.9.9' }), /unsupported cniVersion "9\.9\.9" \(supported: 0\.3\.0, 0\.3\.1, 0\.4\.0, 1\.0\.0, 1\.1\.0\)/);
test('cniVersion of the wrong type', rejects, list({ cniVersion: 1 }), /missing "cniVersion"/);
test('empty plugins', rejects, list({ plugins: [] }), /"plugins" must be a non-empty array/);
test('a plugin without type', rejects, list({ plugins: [{ bridge: 'x' }] }), /plugins\[0\] has no "type"/);
test('a type with a slash', rejects, list({ plugins: [{ type: '/bin/sh' }] }), /plugins\[0\]\.type "\/bin\/sh" must be a bare executable name/);
test('a type with ..', rejects, list({ plugins: [{ type: '..bridge' }] }), /must be a bare executable name/);
test('capabilities of the wrong type', rejects, list({ plugins: [{ type: 'portmap', capabilities: { portMappings: 'yes' } }] }), /capabilities must map/);
test('disableCheck of the wrong type', rejects, list({ disableCheck: 'true' }), /"disableCheck" must be true or false/);
test('no supported version in cniVersions', rejects, list({ cniVersions: ['2.0.0'] }), /none of "cniVersions"/);

test('cniVersions picks the highest supported version', (t) => {
  t.is(parseConfList(bytes(list({ cniVersions: ['0.4.0', '1.1.0', '9.0.0'] })), 'f').cniVersion, '1.1.0');
});

test('a .conf is up-converted to a one-plugin list', (t) => {
  const conf = { cniVersion: '0.4.0', name: 'single', type: 'bridge', bridge: 'br9' };
  const converted = parseSingleConf(bytes(conf), 'f.conf');
  t.is(converted.plugins.length, 1);
  t.is(converted.plugins[0]?.['bridge'], 'br9');
  t.deepEqual(JSON.parse(converted.bytes.toString()), { cniVersion: '0.4.0', name: 'single', plugins: [conf] });
});

test('conf dir: conflists by file name first, then .conf; first name wins; broken files hide nothing', async (t) => {
  const dir = await tempDir(t);
  await writeFile(path.join(dir, '10-broken.conflist'), '{nope');
  await writeFile(path.join(dir, '20-a.conflist'), JSON.stringify(list({ name: 'a' })));
  await writeFile(path.join(dir, '30-a-again.conflist'), JSON.stringify(list({ name: 'a', plugins: [{ type: 'ptp' }] })));
  await writeFile(path.join(dir, '05-a.conf'), JSON.stringify({ cniVersion: '1.0.0', name: 'a', type: 'macvlan' }));
  await writeFile(path.join(dir, '40-b.json'), JSON.stringify({ cniVersion: '1.0.0', name: 'b', type: 'macvlan' }));
  await writeFile(path.join(dir, 'README.md'), 'not a config');
  await symlink(path.join(dir, 'loop2.conflist'), path.join(dir, 'loop1.conflist'));
  await symlink(path.join(dir, 'loop1.conflist'), path.join(dir, 'loop2.conflist'));
  await writeFile(path.join(dir, '90-huge.conflist'), Buffer.alloc(1024 * 1024 + 1, 0x20));
  await mkdir(path.join(dir, '95-dir.conflist'));
  const listing = loadConfDir(dir);
  t.deepEqual(listing.networks.map((n) => [n.name, path.basename(n.source), n.plugins[0]?.type]), [['a', '20-a.conflist', 'bridge'], ['b', '40-b.json', 'macvlan']]);
  t.deepEqual(listing.shadowed.map((s) => path.basename(s.file)), ['30-a-again.conflist', '05-a.conf']);
  const reasons = Object.fromEntries(listing.problems.map((p) => [path.basename(p.file), p.reason]));
  t.regex(reasons['10-broken.conflist'] ?? '', /not valid JSON/);
  t.regex(reasons['loop1.conflist'] ?? '', /symlink loop/);
  t.regex(reasons['90-huge.conflist'] ?? '', /over the 1048576-byte limit/);
  t.regex(reasons['95-dir.conflist'] ?? '', /not a regular file/);
});

test('pickNetwork: the embedded default, and a not-found error naming the broken files', async (t) => {
  const dir = await tempDir(t);
  await writeFile(path.join(dir, '10-broken.conflist'), '{');
  const listing = loadConfDir(dir);
  t.deepEqual(pickNetwork(listing, 'dockcni').plugins.map((p) => p.type), ['bridge', 'firewall', 'portmap']);
  const error = t.throws(() => pickNetwork(listing, 'front'), { instanceOf: NetworkNotFoundError });
  t.regex(error?.message ?? '', /no network named "front" in .*; 1 file\(s\) there could not be loaded: .*10-broken\.conflist: not valid JSON/);
});

test('a missing conf dir is empty, not an error', async (t) => {
  const listing = loadConfDir('/nonexistent/dockcni');
  t.false(listing.exists);
  t.deepEqual(listing.networks, []);
});
