import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import { checkContainerFilePath, MAX_CONTAINER_FILE_BYTES, resolvConfText, writeHosts, writeResolvConf } from '../../../src/wiring/container-files.js';
import { tempDir } from '../../helpers/fixtures.js';

const ID = 'a'.repeat(64);

async function containerDir(t: Parameters<typeof tempDir>[0]) {
  const dir = path.join(await tempDir(t), 'containers', ID);
  await mkdir(dir, { recursive: true });
  return dir;
}

test('hosts gets the container\'s names on its address, in place, keeping what was there', async (t) => {
  const dir = await containerDir(t);
  const hosts = path.join(dir, 'hosts');
  await writeFile(hosts, '127.0.0.1\tlocalhost\n');
  await writeHosts(hosts, [['10.0.0.5', 'web', 'www']]);
  t.is(await readFile(hosts, 'utf8'), '127.0.0.1\tlocalhost\n10.0.0.5\tweb www\t# dockcni\n');
  await writeHosts(hosts, [['10.0.0.6', 'web']]);
  t.is(await readFile(hosts, 'utf8'), '127.0.0.1\tlocalhost\n10.0.0.6\tweb\t# dockcni\n', 'its own line replaced, not added twice');
});

test('a line that is not one address and its names is never written, and the file stays as it was', async (t) => {
  const dir = await containerDir(t);
  const hosts = path.join(dir, 'hosts');
  await writeFile(hosts, '127.0.0.1\tlocalhost\n');
  for (const entry of [['10.0.0.5', 'web\n10.0.0.66 db'], ['10.0.0.5', 'a b'], ['10.0.0.5\n10.0.0.66', 'web'], ['10.0.0.5', 'localhost'], ['10.0.0.5', 'evil.example.com'], ['10.0.0.5'],
    ['10.0.0.5', ...Array.from({ length: 10 }, (_, i) => `${'n'.repeat(60)}${i}`)]]) {
    await t.throwsAsync(writeHosts(hosts, [entry]), { message: /refusing to write/ }, JSON.stringify(entry));
  }
  t.is(await readFile(hosts, 'utf8'), '127.0.0.1\tlocalhost\n');
});

test('a file the container replaced by a symlink is never followed', async (t) => {
  const dir = await containerDir(t);
  const target = path.join(dir, 'elsewhere');
  await writeFile(target, 'precious\n');
  await symlink(target, path.join(dir, 'hosts'));
  await t.throwsAsync(writeHosts(path.join(dir, 'hosts'), [['10.0.0.5', 'web']]), { message: /cannot open .*hosts/ });
  t.is(await readFile(target, 'utf8'), 'precious\n');
});

test('a file grown past the limit is not read', async (t) => {
  const dir = await containerDir(t);
  const hosts = path.join(dir, 'hosts');
  await writeFile(hosts, Buffer.alloc(MAX_CONTAINER_FILE_BYTES + 1, 'x'));
  await t.throwsAsync(writeHosts(hosts, [['10.0.0.5', 'web']]), { message: /over the 262144-byte limit/ });
});

test('a directory in its place is refused; a file already gone is nothing to write', async (t) => {
  const dir = await containerDir(t);
  await mkdir(path.join(dir, 'hosts'));
  await t.throwsAsync(writeHosts(path.join(dir, 'hosts'), [['10.0.0.5', 'web']]), { message: /not a regular file|EISDIR|cannot open/ });
  await t.notThrowsAsync(writeResolvConf(path.join(dir, 'resolv.conf'), { nameservers: ['10.0.0.53'] }));
});

test('only Docker\'s own files of that container may be written', (t) => {
  t.notThrows(() => checkContainerFilePath(`/var/lib/docker/containers/${ID}/hosts`, ID));
  t.notThrows(() => checkContainerFilePath(`/srv/docker/containers/${ID}/resolv.conf`, ID));
  for (const bad of ['/etc/hosts', `/var/lib/docker/containers/${'b'.repeat(64)}/hosts`, `/var/lib/docker/containers/${ID}/../${ID}/hosts`, `relative/containers/${ID}/hosts`, `/var/lib/docker/containers/${ID}/passwd`]) {
    t.throws(() => checkContainerFilePath(bad, ID), { message: /refusing to write/ }, bad);
  }
});

test('resolv.conf values from a plugin are checked: no value can add a line', (t) => {
  t.is(resolvConfText({ nameservers: ['10.0.0.53', 'fd00::53'], domain: 'corp.example', search: ['svc.local'], options: ['ndots:2'] }),
    '# dockcni: from the CNI result\nnameserver 10.0.0.53\nnameserver fd00::53\nsearch corp.example svc.local\noptions ndots:2\n');
  t.throws(() => resolvConfText({ nameservers: ['10.0.0.53\nnameserver 6.6.6.6'] }), { message: /invalid nameserver in the CNI result/ });
  t.throws(() => resolvConfText({ nameservers: ['10.0.0.53'], search: ['a.example\noptions x'] }), { message: /invalid search domain/ });
  t.throws(() => resolvConfText({ nameservers: ['10.0.0.53'], options: ['ndots:1 rotate'] }), { message: /invalid resolver option/ });
});
