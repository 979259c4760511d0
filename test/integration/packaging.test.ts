import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { ROOT, tempDir } from '../helpers/fixtures.js';
import { BUSYBOX_IMAGE, hostTest, ping, sh, uid } from '../helpers/host.js';
import { waitFor } from '../helpers/docker.js';
import { buildSidecar, NODE_BASE_IMAGE } from '../helpers/node-base.js';

const test = hostTest();
const SIDECAR_IMAGE = 'dockcni-test-sidecar:latest';

test('compose sidecar: services wired and talking; the race-free sandbox pattern; a sidecar restart loses nothing; down leaves nothing', async (t) => {
  await buildSidecar(SIDECAR_IMAGE, ROOT);
  t.teardown(async () => { await sh('docker', ['rmi', '-f', SIDECAR_IMAGE, NODE_BASE_IMAGE], { reject: false }); });
  const root = await tempDir(t);
  const dirs = { conf: path.join(root, 'net.d'), cache: path.join(root, 'cache'), state: path.join(root, 'state'), run: path.join(root, 'run') };
  for (const dir of Object.values(dirs)) await mkdir(dir, { recursive: true });
  // Docker mounts the pin dir rshared only from a shared mount (systemd hosts have one; this machine does not).
  await sh('mount', ['--bind', dirs.run, dirs.run]);
  await sh('mount', ['--make-shared', dirs.run]);
  t.teardown(async () => { await sh('umount', ['-l', dirs.run], { reject: false }); });
  const bridge = uid('dcbr');
  t.teardown(async () => { await sh('ip', ['link', 'del', bridge], { reject: false }); });
  await writeFile(path.join(dirs.conf, '10-compose.conflist'), JSON.stringify({ cniVersion: '1.0.0', name: 'composenet', plugins: [
    { type: 'bridge', bridge, isGateway: true, ipMasq: true, ipam: { type: 'host-local', ranges: [[{ subnet: '10.231.82.0/24' }]] } },
    { type: 'firewall', backend: 'iptables' },
  ] }));
  const project = uid('dcc');
  const env = { DOCKCNI_IMAGE: SIDECAR_IMAGE, APP_IMAGE: BUSYBOX_IMAGE, CNI_CONF_DIR: dirs.conf, CNI_CACHE_DIR: dirs.cache, DOCKCNI_STATE_DIR: dirs.state, DOCKCNI_RUN_DIR: dirs.run, CNI_NETWORK: 'composenet' };
  const compose = (...args: string[]) => execa('docker-compose', ['-p', project, '-f', path.join(ROOT, 'examples/compose/docker-compose.yml'), ...args], { env, timeout: 180_000 });
  t.teardown(async () => { await execa('docker-compose', ['-p', project, '-f', path.join(ROOT, 'examples/compose/docker-compose.yml'), 'down', '-t', '1'], { env, reject: false }); });

  await compose('up', '-d');
  const address = async (service: string) => /inet (\S+)\//.exec((await sh('docker', ['exec', `${project}_${service}_1`, 'ip', '-4', '-o', 'addr', 'show', 'eth0'], { reject: false })).stdout)?.[1];
  const web = await waitFor('web wired', () => address('web'));
  await waitFor('client wired', () => address('client'));
  t.regex(web, /^10\.231\.82\./);
  t.is((await sh('docker', ['exec', `${project}_client_1`, 'ping', '-c', '1', '-W', '2', web], { reject: false })).exitCode, 0);
  // The app's first instruction printed its address: it started only once the sandbox was wired.
  const appLog = (await compose('logs', '--no-color', 'app')).stdout;
  t.regex(appLog, /eth0 +inet 10\.231\.82\.\d+\/24/);
  t.true(await ping(web), 'the host reaches the service');
  // The pins are the host's: visible here, and they outlive the sidecar.
  const pinned = async () => (await readFile('/proc/mounts', 'utf8')).split('\n').filter((l) => l.startsWith('nsfs ') && l.includes(dirs.run)).length;
  t.is(await pinned(), 3, 'web, client and the sandbox (the app shares the sandbox\'s)');
  await sh('docker', ['restart', '-t', '2', `${project}_dockcni_1`]);
  t.is(await pinned(), 3, 'a sidecar restart loses no pin');
  await sh('docker', ['stop', '-t', '1', `${project}_web_1`]);
  await waitFor('web unwired by the restarted sidecar', async () => (await readdir(path.join(dirs.state, 'attachments'))).length === 2);
  t.is(await pinned(), 2);

  await compose('down', '-t', '1');
  t.deepEqual(await readdir(path.join(dirs.state, 'attachments')), []);
  t.deepEqual(await readdir(path.join(dirs.cache, 'results')), []);
  t.deepEqual(await readdir(path.join(dirs.run, 'netns')), []);
  t.is(await pinned(), 0);
  t.deepEqual((await readdir(path.join(dirs.cache, 'networks', 'composenet'))).filter((f) => /^\d/.test(f)), [], 'no reservation');
  t.deepEqual((await sh('iptables-save', [])).stdout.split('\n').filter((l) => l.includes('composenet')), [], 'no rule');
  t.deepEqual((await sh('ip', ['-o', 'link', 'show', 'master', bridge], { reject: false })).stdout.trim(), '', 'no veth');
});

test('the systemd unit is one systemd accepts, and its ExecStart is dockcni daemon', async (t) => {
  const unit = path.join(ROOT, 'examples/systemd/dockcni.service');
  // systemd's own checker (Debian's systemd package; test/host/setup.js installs it): unknown sections
  // and keys, bad values, a missing ExecStart binary.
  const verify = await execa('systemd-analyze', ['verify', unit], { reject: false });
  t.is(verify.exitCode, 0, verify.stderr);
  t.notRegex(verify.stderr, /Unknown (section|key|lvalue)|Failed to parse|Invalid|Missing|Neither|not executable/i, verify.stderr);
  // And the checker sees a mistake: the same unit with a misspelt key.
  const broken = path.join(await tempDir(t), 'broken.service');
  await writeFile(broken, (await readFile(unit, 'utf8')).replace(/^Restart=/m, 'Restartt='));
  t.regex((await execa('systemd-analyze', ['verify', broken], { reject: false })).stderr, /Unknown key 'Restartt'/);
  t.regex(await readFile(unit, 'utf8'), /^ExecStart=\/usr\/bin\/env dockcni daemon /m);
});

test('the cluster drop-in is one systemd reads with that unit: its daemon joins the etcd of cluster.env', async (t) => {
  // systemd-analyze finds drop-ins beside the unit on SYSTEMD_UNIT_PATH, as systemd does in /etc/systemd/system.
  const dir = await tempDir(t);
  await execa('cp', ['-r', path.join(ROOT, 'examples/systemd/dockcni.service'), path.join(ROOT, 'examples/cluster/dockcni.service.d'), dir]);
  const verify = (unitDir: string) => execa('systemd-analyze', ['verify', path.join(unitDir, 'dockcni.service')], { reject: false, env: { SYSTEMD_UNIT_PATH: `${unitDir}:` } });
  const clean = await verify(dir);
  t.is(clean.exitCode, 0, clean.stderr);
  t.notRegex(clean.stderr, /Unknown (section|key|lvalue)|Failed to parse|Invalid|Missing|Neither|not executable/i, clean.stderr);
  const dropIn = path.join(dir, 'dockcni.service.d', 'cluster.conf');
  const text = await readFile(dropIn, 'utf8');
  await writeFile(dropIn, text.replace(/^EnvironmentFile=/m, 'EnvironmentFil='));
  t.regex((await verify(dir)).stderr, /cluster\.conf:\d+: Unknown key 'EnvironmentFil'/, 'the drop-in is read');
  t.regex(text, /^ExecStart=\n^ExecStart=\/usr\/bin\/env dockcni daemon .*--advertise-interface \$\{DOCKCNI_ADVERTISE_INTERFACE\}$/m);
  const env = await readFile(path.join(ROOT, 'examples/cluster/cluster.env'), 'utf8');
  t.regex(env, /^DOCKCNI_ETCD_ENDPOINTS=http:\/\/\S+$/m);
  t.regex(env, /^DOCKCNI_ADVERTISE_INTERFACE=\S+$/m);
});

test('the compose file for a host of a cluster: the sidecar joins the etcd it is given, writes conflists into the conf dir, and refuses to start without etcd', async (t) => {
  const file = path.join(ROOT, 'examples/cluster/docker-compose.yml');
  const config = (env: Record<string, string>) => execa('docker-compose', ['-f', file, 'config'], { env, extendEnv: false, reject: false });
  const missing = await config({ PATH: process.env['PATH'] ?? '' });
  t.not(missing.exitCode, 0);
  t.regex(missing.stderr, /DOCKCNI_ETCD_ENDPOINTS.*the cluster's etcd/);
  const ok = await config({ PATH: process.env['PATH'] ?? '', DOCKCNI_ETCD_ENDPOINTS: 'http://10.0.0.1:2379', ADVERTISE_INTERFACE: 'ens3' });
  t.is(ok.exitCode, 0, ok.stderr);
  t.regex(ok.stdout, /DOCKCNI_ETCD_ENDPOINTS: http:\/\/10\.0\.0\.1:2379/);
  t.regex(ok.stdout, /- --advertise-interface\n\s+- ens3\n/);
  t.regex(ok.stdout, /- \/etc\/cni\/net\.d:\/etc\/cni\/net\.d:rw\n/, 'the agent writes the cluster conflists there');
  t.regex(ok.stdout, /network_mode: host/);
});

test('npm pack yields a package whose dockcni bin works after a global install into a clean prefix', async (t) => {
  const dir = await tempDir(t);
  const packed = await execa('npm', ['pack', '--silent', '--pack-destination', dir], { cwd: ROOT });
  const tarball = path.join(dir, packed.stdout.trim().split('\n').at(-1) ?? '');
  const prefix = path.join(dir, 'prefix');
  await execa('npm', ['install', '--global', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', tarball], { timeout: 240_000 });
  const bin = path.join(prefix, 'bin', 'dockcni');
  t.is((await execa(bin, ['--version'])).stdout.trim(), JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8')).version);
  t.regex((await execa(bin, ['networks', 'ls'])).stdout, /dockcni +bridge +10\.199\.0\.0\/16 +0 +1\.0\.0 +bridge,firewall,portmap +<embedded>/);
  const files = (await execa('tar', ['-tzf', tarball])).stdout.split('\n');
  t.true(files.includes('package/dist/src/index.js'));
  t.false(files.some((f) => f.startsWith('package/dist/test/') || f.startsWith('package/test/')), 'no tests in the package');
  t.true(files.includes('package/LICENSE'), 'the Apache-2.0 text the package declares');
  // Every source map points at sources the package ships.
  const unpacked = path.join(dir, 'unpacked');
  await execa('mkdir', ['-p', unpacked]);
  await execa('tar', ['-xzf', tarball, '-C', unpacked]);
  const dangling: string[] = [];
  for (const map of files.filter((f) => f.endsWith('.js.map'))) {
    const file = path.join(unpacked, map);
    const { sources } = JSON.parse(await readFile(file, 'utf8')) as { sources: string[] };
    for (const source of sources) if (!files.includes(path.relative(unpacked, path.resolve(path.dirname(file), source)))) dangling.push(`${map} → ${source}`);
  }
  t.deepEqual(dangling, []);
  t.true(files.some((f) => f.endsWith('.js.map')), 'maps were checked at all');
  // The runtime works from the installed package: the script hands runc its commands, the bundled Node half loads.
  const installed = path.join(prefix, 'lib', 'node_modules', 'dockcni');
  t.regex((await execa(path.join(installed, 'bin', 'dockcni-runtime'), ['--version'])).stdout, /^runc version /m);
  t.is((await execa('node', [path.join(installed, 'dist', 'runtime', 'main.mjs'), 'check'])).exitCode, 0);
  const meta = JSON.parse(await readFile(path.join(unpacked, 'package', 'package.json'), 'utf8')) as { repository?: { url?: string }; homepage?: string; bugs?: { url?: string } };
  t.regex(meta.repository?.url ?? '', /^git\+https:\/\/github\.com\/dockcni\/dockcni\.git$/);
  t.truthy(meta.homepage);
  t.truthy(meta.bugs?.url);
  const lib = await execa('node', ['--input-type=module', '-e', "import('dockcni').then((m) => console.log(typeof m.createEngine, m.defaultNetwork().name))"], { cwd: path.join(prefix, 'lib') });
  t.is(lib.stdout.trim(), 'function dockcni');
  await rm(prefix, { recursive: true, force: true });
});
