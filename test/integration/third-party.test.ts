import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { BIN } from '../helpers/fixtures.js';
import { hostTest, ping, sh, uid } from '../helpers/host.js';
import { container, dirs, waitFor } from '../helpers/docker.js';
import { attach, detach } from '../helpers/networks.js';

const test = hostTest();

interface Call { command: string; type: string; env: Record<string, string>; stdin: Record<string, unknown> }

test('the contract third-party plugins rely on: Kubernetes CNI_ARGS, capability args, a meta plugin delegating (Flannel\'s shape)', async (t) => {
  const d = await dirs(t);
  const record = path.join(d.root, 'calls.jsonl');
  await writeFile(record, '');
  await writeFile(path.join(d.confDir, '10-meta.conflist'), JSON.stringify({
    cniVersion: '1.0.0', name: 'meta',
    plugins: [
      { type: 'meta-delegate', record, delegate: { type: 'fixture', fixture: { octet: 7 } } },
      { type: 'fixture', record, capabilities: { portMappings: true, bandwidth: false } },
    ],
  }));
  const name = uid('calico-like-');
  const c = await container(t, ['--network', 'none', '--name', name]);
  const attached = await attach(d, c, ['--network', 'meta', '-p', '8080:80']);
  t.is(attached.exitCode, 0, attached.stderr);
  const calls = (await readFile(record, 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as Call & { phase: string }).filter((l) => l.phase === 'start');
  const adds = calls.filter((l) => l.command === 'ADD');
  t.deepEqual(adds.map((a) => a.type), ['meta-delegate', 'fixture', 'fixture']);
  for (const a of adds) {
    t.is(a.env['CNI_ARGS'], `IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=${name};K8S_POD_INFRA_CONTAINER_ID=${c}`);
    t.is(a.env['CNI_CONTAINERID'], c);
    t.regex(a.env['CNI_NETNS'] ?? '', new RegExp(`/run/netns/${c}$`));
  }
  t.is(adds[0]?.stdin['name'], 'meta', 'the meta plugin gets the list\'s name (which it hands to its delegate)');
  t.is(adds[2]?.stdin['name'], 'meta', 'and so does the next plugin of the list');
  t.is(adds[0]?.stdin['runtimeConfig'], undefined, 'no capability declared, none passed');
  t.deepEqual(adds[2]?.stdin['runtimeConfig'], { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }] });
  t.deepEqual((adds[2]?.stdin['prevResult'] as { ips: { address: string }[] }).ips[0]?.address, '10.1.0.7/24', 'the delegate\'s result flows on');
  await detach(d, c);
  const dels = (await readFile(record, 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as Call & { phase: string }).filter((l) => l.phase === 'start' && l.command === 'DEL');
  t.deepEqual(dels.map((x) => x.type), ['fixture', 'meta-delegate', 'fixture']);
});

test('LAN scale: two hosts on one LAN, macvlan + DHCP, the LAN\'s DHCP server as the shared allocator', async (t) => {
  const d = await dirs(t);
  const tag = uid('');
  const lanNs = `dclan${tag}`;
  const hosts = ['a', 'b'].map((h) => ({ ns: `dchost${h}${tag}`, container: `dcct${h}${tag}`, socket: path.join(d.root, `dhcp-${h}.sock`) }));
  for (const ns of [lanNs, ...hosts.flatMap((h) => [h.ns, h.container])]) {
    await sh('ip', ['netns', 'add', ns]);
    t.teardown(async () => { await sh('ip', ['netns', 'del', ns], { reject: false }); });
  }
  // The LAN: a bridge in the LAN netns, the DHCP server on it, one cable (veth) to each host's eth0.
  await sh('ip', ['-n', lanNs, 'link', 'add', 'lan', 'type', 'bridge']);
  await sh('ip', ['-n', lanNs, 'addr', 'add', '10.241.0.1/24', 'dev', 'lan']);
  await sh('ip', ['-n', lanNs, 'link', 'set', 'lan', 'up']);
  for (const [i, h] of hosts.entries()) {
    await sh('ip', ['-n', lanNs, 'link', 'add', `port${i}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', h.ns]);
    await sh('ip', ['-n', lanNs, 'link', 'set', `port${i}`, 'master', 'lan', 'up']);
    await sh('ip', ['-n', h.ns, 'link', 'set', 'eth0', 'up']);
  }
  const leases = path.join(d.root, 'leases');
  const dnsmasq = execa('ip', ['netns', 'exec', lanNs, 'dnsmasq', '--no-daemon', '--port=0', '--interface=lan', '--bind-interfaces',
    '--dhcp-range=10.241.0.100,10.241.0.120,255.255.255.0,1h', `--dhcp-leasefile=${leases}`, '--dhcp-authoritative'], { reject: false });
  t.teardown(async () => { dnsmasq.kill('SIGTERM'); await dnsmasq; });
  // Each host runs its own CNI dhcp daemon and dockcni, with the same conflist.
  const addresses: string[] = [];
  for (const h of hosts) {
    const daemon = execa('ip', ['netns', 'exec', h.ns, '/usr/lib/cni/dhcp', 'daemon', '-socketpath', h.socket, '-timeout', '5s'], { reject: false });
    t.teardown(async () => { daemon.kill('SIGTERM'); await daemon; });
    await waitFor('dhcp daemon', async () => (await sh('test', ['-S', h.socket], { reject: false })).exitCode === 0);
    const conf = path.join(d.root, `net-${h.ns}`);
    await sh('mkdir', ['-p', conf]);
    await writeFile(path.join(conf, '31-lan.conflist'), JSON.stringify({
      cniVersion: '1.0.0', name: 'lan-dhcp', plugins: [{ type: 'macvlan', master: 'eth0', mode: 'bridge', ipam: { type: 'dhcp', daemonSocketPath: h.socket } }],
    }));
    const flags = [...d.flags.map((f) => (f === d.confDir ? conf : f)), '--container-id', h.container];
    const added = await execa('ip', ['netns', 'exec', h.ns, 'node', BIN, 'cni', 'add', 'lan-dhcp', h.container, ...flags]);
    addresses.push((JSON.parse(added.stdout) as { ips: { address: string }[] }).ips[0]?.address.split('/')[0] ?? '');
    t.teardown(async () => { await execa('ip', ['netns', 'exec', h.ns, 'node', BIN, 'cni', 'del', 'lan-dhcp', h.container, ...flags], { reject: false }); });
  }
  t.log(`host a's container: ${addresses[0]}, host b's container: ${addresses[1]}`);
  t.true(addresses.every((a) => /^10\.241\.0\.1(0\d|1\d|20)$/.test(a)));
  t.not(addresses[0], addresses[1], 'one allocator: no address handed out twice');
  t.true(await ping(addresses[1] ?? '', hosts[0]?.container), 'a container on host a reaches one on host b over the LAN');
  t.true(await ping(addresses[0] ?? '', lanNs), 'the LAN reaches them');
});
