import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import { readdirOrEmpty, readTextIfExists, removeIfExists, staleTempFiles, writeFileAtomic } from '../../src/fs-atomic.js';
import { locksDir, pinsDir, resolvePaths } from '../../src/paths.js';
import { tempDir } from '../helpers/fixtures.js';

test('an atomic write leaves the old file or the new one, 0600 in a 0700 dir, and no temp file', async (t) => {
  const dir = path.join(await tempDir(t), 'state');
  const file = path.join(dir, 'x.json');
  await writeFileAtomic(file, 'one');
  await writeFileAtomic(file, 'two');
  t.is(await readFile(file, 'utf8'), 'two');
  t.is((await stat(file)).mode & 0o777, 0o600);
  t.is((await stat(dir)).mode & 0o777, 0o700);
  t.deepEqual(await readdir(dir), ['x.json']);
});

test('gone is not an error for removal and reads; a temp file of a dead writer is stale, a live one\'s is not', async (t) => {
  const dir = await tempDir(t);
  t.false(await removeIfExists(path.join(dir, 'nothing')));
  t.is(await readTextIfExists(path.join(dir, 'nothing')), undefined);
  t.deepEqual(await readdirOrEmpty(path.join(dir, 'nodir')), []);
  await writeFile(path.join(dir, `a.json.tmp-${process.pid}-abcd`), '');
  await writeFile(path.join(dir, 'b.json.tmp-999999999-abcd'), '');
  t.deepEqual(await staleTempFiles(dir), [path.join(dir, 'b.json.tmp-999999999-abcd')]);
});

test('paths: flag, then environment (as cnitool), then default', (t) => {
  const env = { NETCONFPATH: '/env/net.d', CNI_PATH: '/env/a:/env/b' };
  t.like(resolvePaths({}, {}), { confDir: '/etc/cni/net.d', cacheDir: '/var/lib/cni', stateDir: '/var/lib/dockcni', runDir: '/run/dockcni' });
  t.deepEqual(resolvePaths({}, {}).cniPath, ['/opt/cni/bin', '/usr/libexec/cni', '/usr/lib/cni']);
  t.like(resolvePaths({}, env), { confDir: '/env/net.d', cniPath: ['/env/a', '/env/b'] });
  t.like(resolvePaths({ confDir: 'rel/net.d', cniPath: '/flag' }, env), { confDir: path.resolve('rel/net.d'), cniPath: ['/flag'] });
  const p = resolvePaths({ runDir: '/r' }, {});
  t.is(locksDir(p), '/r/locks');
  t.is(pinsDir(p), '/r/netns');
});
