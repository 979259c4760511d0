import { readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { bridgeNetwork, dockcni, hostTest, hostVethsOn, netns, ping, PLUGIN_DIR, reservations, rulesMentioning, sh } from '../helpers/host.js';
import { tempDir } from '../helpers/fixtures.js';

const test = hostTest();

test('cni add wires a netns on a real bridge; the host pings it; cni del leaves nothing', async (t) => {
  const dir = await tempDir(t);
  const confDir = path.join(dir, 'net.d');
  const cacheDir = path.join(dir, 'cache');
  const net = await bridgeNetwork(t, confDir, dir, 11);
  const ns = await netns(t);
  const common = ['--conf-dir', confDir, '--cni-path', PLUGIN_DIR, '--cache-dir', cacheDir, '--run-dir', path.join(dir, 'run')];
  const added = await dockcni(['cni', 'add', net.name, ns, '--container-id', 'itest1', '--args', 'IgnoreUnknown=1',
    '--cap-args', '{"portMappings":[{"hostPort":18181,"containerPort":80,"protocol":"tcp"}]}', ...common]);
  const result = JSON.parse(added.stdout) as { ips: { address: string }[] };
  const address = result.ips[0]?.address.split('/')[0] ?? '';
  t.regex(address, /^10\.231\.11\.\d+$/);
  const inside = await sh('ip', ['netns', 'exec', ns, 'ip', '-4', '-o', 'addr', 'show', 'eth0']);
  t.true(inside.stdout.includes(`${address}/24`));
  t.true(await ping(address));
  t.deepEqual(await readdir(path.join(cacheDir, 'results')), [`${net.name}-itest1-eth0`]);
  t.deepEqual(await reservations(net), [address]);
  t.not((await rulesMentioning('itest1')).length, 0);

  await dockcni(['cni', 'check', net.name, ns, '--container-id', 'itest1', ...common]);
  await dockcni(['cni', 'del', net.name, ns, '--container-id', 'itest1', ...common]);
  t.deepEqual(await readdir(path.join(cacheDir, 'results')), []);
  t.deepEqual(await reservations(net), []);
  t.deepEqual(await rulesMentioning('itest1'), []);
  t.deepEqual(await hostVethsOn(net.bridge), []);
  // DEL again: idempotent.
  await dockcni(['cni', 'del', net.name, ns, '--container-id', 'itest1', ...common]);
});

test('cni add without --container-id derives it as cnitool does; --trace shows the exchange', async (t) => {
  const dir = await tempDir(t);
  const confDir = path.join(dir, 'net.d');
  const net = await bridgeNetwork(t, confDir, dir, 12, []);
  const ns = await netns(t);
  const common = ['--conf-dir', confDir, '--cni-path', PLUGIN_DIR, '--cache-dir', path.join(dir, 'cache'), '--run-dir', path.join(dir, 'run')];
  const added = await dockcni(['cni', 'add', net.name, ns, '--trace', ...common]);
  const { createHash } = await import('node:crypto');
  const id = `cnitool-${createHash('sha512').update(`/var/run/netns/${ns}`).digest('hex').slice(0, 20)}`;
  t.deepEqual(await readdir(path.join(dir, 'cache/results')), [`${net.name}-${id}-eth0`]);
  t.regex(added.stderr, /── ADD bridge \(\/usr\/lib\/cni\/bridge\) ──/);
  t.regex(added.stderr, new RegExp(`CNI_CONTAINERID=${id}`));
  t.regex(added.stderr, /── ADD firewall/);
  t.regex(added.stderr, /exit 0 in \d+\.\d ms/);
  await dockcni(['cni', 'del', net.name, ns, ...common]);
  t.deepEqual(await reservations(net), []);
});

const badInput = [
  { title: 'malformed JSON', file: '{"name":', args: [] as string[], stderr: /10-bad\.conflist: not valid JSON/ },
  { title: 'unknown cniVersion', file: JSON.stringify({ cniVersion: '7.0.0', name: 'bad', plugins: [{ type: 'bridge' }] }), args: [], stderr: /unsupported cniVersion "7\.0\.0"/ },
  { title: 'missing type', file: JSON.stringify({ cniVersion: '1.0.0', name: 'bad', plugins: [{ bridge: 'x' }] }), args: [], stderr: /plugins\[0\] has no "type"/ },
  { title: 'a type with a slash', file: JSON.stringify({ cniVersion: '1.0.0', name: 'bad', plugins: [{ type: '../../bin/sh' }] }), args: [], stderr: /type "\.\.\/\.\.\/bin\/sh" must be a bare executable name/ },
  { title: 'plugin not found', file: JSON.stringify({ cniVersion: '1.0.0', name: 'bad', plugins: [{ type: 'nosuchplugin' }] }), args: [], stderr: /CNI plugin "nosuchplugin" not found in \/usr\/lib\/cni/ },
];

for (const c of badInput) {
  test(`cni add with ${c.title}: a clear message, exit 1, nothing cached`, async (t) => {
    const dir = await tempDir(t);
    const confDir = path.join(dir, 'net.d');
    const { mkdir } = await import('node:fs/promises');
    await mkdir(confDir);
    await writeFile(path.join(confDir, '10-bad.conflist'), c.file);
    const ns = await netns(t);
    const run = await dockcni(['cni', 'add', 'bad', ns, '--conf-dir', confDir, '--cni-path', PLUGIN_DIR, '--cache-dir', path.join(dir, 'cache'), '--run-dir', path.join(dir, 'run')], { reject: false });
    t.is(run.exitCode, 1);
    t.regex(run.stderr, c.stderr);
    t.is(run.stdout, '');
    t.deepEqual(await readdir(path.join(dir, 'cache')).catch(() => []), []);
  });
}

test('networks validate reports every problem in every file', async (t) => {
  const dir = await tempDir(t);
  const confDir = path.join(dir, 'net.d');
  await bridgeNetwork(t, confDir, dir, 13);
  await writeFile(path.join(confDir, '10-broken.conflist'), '{');
  await writeFile(path.join(confDir, '20-missing.conflist'), JSON.stringify({ cniVersion: '1.0.0', name: 'm', plugins: [{ type: 'bridge' }, { type: 'ghost' }] }));
  await writeFile(path.join(confDir, '30-new.conflist'), JSON.stringify({ cniVersion: '1.1.0', name: 'n', plugins: [{ type: 'bridge' }] }));
  const run = await dockcni(['networks', 'validate', '--conf-dir', confDir, '--cni-path', PLUGIN_DIR, '--run-dir', path.join(dir, 'run')], { reject: false });
  t.is(run.exitCode, 1);
  t.regex(run.stdout, /10-broken\.conflist: not valid JSON/);
  t.regex(run.stdout, /20-missing\.conflist \(m\): CNI plugin "ghost" not found/);
  t.regex(run.stdout, /30-new\.conflist \(n\): plugin "bridge" does not support cniVersion 1\.1\.0/);
  t.regex(run.stderr, /3 problem\(s\) found/);
  const ls = await dockcni(['networks', 'ls', '--conf-dir', confDir]);
  t.regex(ls.stdout, /^NAME +DRIVER +SUBNETS +ATTACHED +VERSION +PLUGINS +SOURCE +SCOPE$/m);
  t.regex(ls.stdout, /dockcni +bridge +10\.199\.0\.0\/16 +0 +1\.0\.0 +bridge,firewall,portmap +<embedded> +local$/m);
});
