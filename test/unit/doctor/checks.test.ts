import test from 'ava';
import { brNetfilterCheck, portFindings } from '../../../src/doctor/checks.js';
import { parseConfList } from '../../../src/cni/conf.js';
import type { AttachmentRecord } from '../../../src/state/attachment.js';

const bridged = parseConfList(Buffer.from(JSON.stringify({ cniVersion: '1.0.0', name: 'front', plugins: [{ type: 'bridge' }] })), 'front.conflist');

test('br_netfilter: green only when bridged traffic passes iptables', (t) => {
  t.is(brNetfilterCheck('1', [bridged]).status, 'ok');
  const off = brNetfilterCheck('0', [bridged]);
  t.is(off.status, 'warn');
  t.regex(off.found, /bridge-nf-call-iptables = 0: traffic between containers on one bridge bypasses iptables.*bridge networks: front/);
  t.regex(off.fix ?? '', /sysctl -w net\.bridge\.bridge-nf-call-iptables=1/);
  const missing = brNetfilterCheck(undefined, [bridged]);
  t.is(missing.status, 'warn');
  t.regex(missing.fix ?? '', /modprobe br_netfilter/);
});

const record = (id: string, name: string, ports: unknown[], state = 'wired'): AttachmentRecord => ({
  containerId: id.repeat(64), name, pid: 1, startedAt: 't', netns: '/run/x', origin: 'daemon', updatedAt: '',
  networks: [{ network: 'front', ifName: 'eth0', state: state as 'wired', args: [], capabilityArgs: { portMappings: ports }, addresses: [] }],
});

test('host ports: a port mapped twice, or listened on by a host process, turns the check red', (t) => {
  const p = (hostPort: number, hostIP?: string) => ({ hostPort, containerPort: 80, protocol: 'tcp', ...(hostIP ? { hostIP } : {}) });
  t.is(portFindings([record('a', 'web', [p(8080)]), record('b', 'api', [p(8081)])], [])[0]?.status, 'ok');
  const twice = portFindings([record('a', 'web', [p(8080)]), record('b', 'api', [p(8080, '127.0.0.1')])], []);
  t.is(twice[0]?.status, 'fail');
  t.regex(twice[0]?.found ?? '', /8080\/tcp is mapped by both web and api/);
  t.is(portFindings([record('a', 'web', [p(8080)]), record('b', 'api', [p(8080)], 'failed')], [])[0]?.status, 'ok', 'a failed wiring holds no port');
  const listened = portFindings([record('a', 'web', [p(2222)])], [{ protocol: 'tcp', address: '0.0.0.0', port: 2222, inode: '0' }]);
  t.is(listened[0]?.status, 'fail');
  t.regex(listened[0]?.found ?? '', /2222\/tcp \(container web\) is also listened on by a host process on 0\.0\.0\.0:2222\/tcp/);
  t.is(portFindings([record('a', 'web', [p(2222, '10.0.0.1')])], [{ protocol: 'tcp', address: '127.0.0.1', port: 2222, inode: '0' }])[0]?.status, 'ok', 'different addresses do not clash');
});

test('runtime: optional until daemon.json names it; then red when dockerd does not list it or it does not answer', async (t) => {
  const { mkdtemp, rm, writeFile } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const path = await import('node:path');
  const { FakeDocker } = await import('../../helpers/fake-docker.js');
  const { runtimeCheck } = await import('../../../src/doctor/checks.js');
  const { FakeCommands } = await import('../../helpers/fake-commands.js');
  // Nothing answers: the runtime's path is gone.
  const commands = new FakeCommands((file) => ({ exitCode: 127, stderr: `spawn ${file} ENOENT` }));
  const dir = await mkdtemp(path.join(tmpdir(), 'dockcni-doctor-rt-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'daemon.json');
  const [absent] = await runtimeCheck({ docker: new FakeDocker(), commands }, file);
  t.is(absent?.status, 'ok');
  t.regex(absent?.found ?? '', /not installed/);
  await writeFile(file, JSON.stringify({ runtimes: { dockcni: { path: path.join(dir, 'gone') } } }));
  const [unlisted] = await runtimeCheck({ docker: new FakeDocker(), commands }, file);
  t.is(unlisted?.status, 'fail');
  t.regex(unlisted?.found ?? '', /names dockcni but dockerd does not list it/);
  class Listing extends FakeDocker {
    override async runtimes() { return { names: ['runc', 'dockcni'], defaultRuntime: 'runc', rootDir: '/var/lib/docker' }; }
  }
  const [silent] = await runtimeCheck({ docker: new Listing(), commands }, file);
  t.is(silent?.status, 'fail');
  t.regex(silent?.found ?? '', /dockcni does not answer: .*gone --version failed \(exit 127\): spawn .*gone ENOENT/);
  t.deepEqual(commands.calls, [`${path.join(dir, 'gone')} --version`, `${path.join(dir, 'gone')} --version`], 'asked as dockerd would run it, once per check that found the entry');
});

test('runtime: red when someone other than root can change what dockerd runs as root, naming the path', async (t) => {
  const { chmod, mkdtemp, rm, writeFile } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const path = await import('node:path');
  const { FakeDocker } = await import('../../helpers/fake-docker.js');
  const { runtimeCheck } = await import('../../../src/doctor/checks.js');
  const { FakeCommands } = await import('../../helpers/fake-commands.js');
  const dir = await mkdtemp(path.join(tmpdir(), 'dockcni-doctor-trust-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const runc = path.join(dir, 'runc');
  await writeFile(runc, '#!/bin/sh\n', { mode: 0o755 });
  await chmod(runc, 0o777);
  const file = path.join(dir, 'daemon.json');
  await writeFile(file, JSON.stringify({ runtimes: { dockcni: { path: '/bin/true', runtimeArgs: [`--dockcni-runc=${runc}`] } } }));
  const [check] = await runtimeCheck({ docker: new FakeDocker(), commands: new FakeCommands() }, file);
  t.is(check?.status, 'fail');
  t.regex(check?.found ?? '', new RegExp(`others can change what it runs: ${runc} \\(on the way to ${runc}\\) is writable by everyone`));
  t.regex(check?.fix ?? '', /chown root and chmod go-w/);
});

test('the firewall backend dockerd reports: nothing to say for iptables, a warning with what to do for nftables and for one dockcni does not know', async (t) => {
  const { firewallBackendCheck } = await import('../../../src/doctor/checks.js');
  t.deepEqual(firewallBackendCheck(undefined), [], 'before API 1.49 dockerd does not say: iptables');
  t.deepEqual(firewallBackendCheck('iptables'), []);
  t.deepEqual(firewallBackendCheck('iptables+firewalld'), []);
  const [nft] = firewallBackendCheck('nftables');
  t.is(nft?.status, 'warn');
  t.regex(nft?.found ?? '', /does not enable IP forwarding for you and has no DOCKER-USER chain/);
  t.regex(nft?.fix ?? '', /net\.ipv4\.ip_forward/);
  t.is(firewallBackendCheck('pf')[0]?.status, 'warn');
});
