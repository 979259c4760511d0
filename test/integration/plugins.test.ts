import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { BIN } from '../helpers/fixtures.js';
import { hostTest, netns, ping, reservations, sh } from '../helpers/host.js';
import { addressOf, container, dirs, httpFromOtherHost, pingFrom, waitFor } from '../helpers/docker.js';
import { attach, detach, example, firstPlugin, lan } from '../helpers/networks.js';

const test = hostTest();

const ipv6Of = async (id: string) => /inet6 (fd[0-9a-f:]+)\//.exec((await sh('docker', ['exec', id, 'ip', '-6', '-o', 'addr', 'show', 'eth0'], { reject: false })).stdout)?.[1];
const ipamOf = (net: { ipamDir: string; name: string }) => reservations({ ...net, bridge: '', subnet: '', gateway: '' });
const rangesOf = (conf: Record<string, unknown>) => (firstPlugin(conf)['ipam'] as { ranges: { subnet: string }[][] }).ranges;

test('bridge + host-local (+ firewall, portmap): address from the range, containers ping, gateway reachable, port mapped', async (t) => {
  const d = await dirs(t);
  const net = await example(t, d, '10-bridge.conflist', (c) => { rangesOf(c)[0] = [{ subnet: '10.231.61.0/24', gateway: '10.231.61.1' } as never]; });
  const a = await container(t, ['--network', 'none'], ['httpd', '-f', '-p', '80', '-h', '/etc']);
  const b = await container(t, ['--network', 'none']);
  t.is((await attach(d, a, ['--network', net.name, '-p', '18161:80'])).exitCode, 0);
  t.is((await attach(d, b, ['--network', net.name])).exitCode, 0);
  const ipA = (await addressOf(a)) ?? '';
  t.regex(ipA, /^10\.231\.61\.\d+$/);
  t.true(await pingFrom(b, ipA));
  t.true(await pingFrom(a, '10.231.61.1'), 'gateway');
  t.regex(await httpFromOtherHost(t, 18161, 61), /^HTTP\/1\.[01] 200/);
  await detach(d, a);
  await detach(d, b);
  t.deepEqual(await ipamOf(net), []);
});

test('bridge, dual stack: both addresses; ping and ping6 between containers', async (t) => {
  const d = await dirs(t);
  const net = await example(t, d, '20-bridge-dualstack.conflist', (c) => {
    const r = rangesOf(c);
    r[0] = [{ subnet: '10.231.62.0/24' } as never];
    r[1] = [{ subnet: 'fd00:dc:62::/64' } as never];
  });
  // Docker turns IPv6 off in --network none containers; a dual-stack container turns it back on.
  const v6 = ['--network', 'none', '--sysctl', 'net.ipv6.conf.all.disable_ipv6=0'];
  const a = await container(t, v6);
  const b = await container(t, v6);
  t.is((await attach(d, a, ['--network', net.name])).exitCode, 0);
  t.is((await attach(d, b, ['--network', net.name])).exitCode, 0);
  const [a4, b4] = [await addressOf(a), await addressOf(b)];
  const b6 = await waitFor('b ipv6 (after DAD)', () => ipv6Of(b));
  t.regex(a4 ?? '', /^10\.231\.62\./);
  t.regex(b6, /^fd00:dc:62::/);
  t.true(await pingFrom(a, b4 ?? ''));
  t.true(await waitFor('ping6', async () => (await sh('docker', ['exec', a, 'ping', '-6', '-c', '1', '-W', '2', b6], { reject: false })).exitCode === 0));
  await detach(d, a);
  await detach(d, b);
  t.deepEqual(await ipamOf(net), []);
});

test('macvlan on a LAN stand-in: the container is reachable from the LAN host; its link goes on DEL', async (t) => {
  const d = await dirs(t);
  const l = await lan(t, 63);
  const net = await example(t, d, '30-macvlan.conflist', (c) => {
    const p = firstPlugin(c);
    p['master'] = l.parent;
    (p['ipam'] as Record<string, unknown>)['ranges'] = [[{ subnet: `${l.prefix}.0/24`, rangeStart: `${l.prefix}.200`, rangeEnd: `${l.prefix}.250`, gateway: `${l.prefix}.1` }]];
  });
  const c = await container(t, ['--network', 'none']);
  t.is((await attach(d, c, ['--network', net.name, '--ip', `${l.prefix}.222`])).exitCode, 0);
  t.is(await addressOf(c), `${l.prefix}.222`);
  t.true(await ping(`${l.prefix}.222`, l.ns), 'LAN host reaches the container');
  t.true(await pingFrom(c, `${l.prefix}.1`), 'container reaches the LAN host');
  await detach(d, c);
  t.deepEqual(await ipamOf(net), []);
  t.false((await sh('docker', ['exec', c, 'ip', 'link'])).stdout.includes('eth0'));
});

for (const [file, kind] of [['40-ipvlan.conflist', 'ipvlan'], ['50-vlan.conflist', 'vlan']] as const) {
  test(`${kind} on the LAN stand-in: works where the kernel has ${kind} links; elsewhere fails cleanly`, async (t) => {
    const d = await dirs(t);
    const l = await lan(t, kind === 'vlan' ? 65 : 64);
    const probe = kind === 'vlan'
      ? await sh('ip', ['link', 'add', 'link', l.parent, 'name', 'dcprobe', 'type', 'vlan', 'id', '7'], { reject: false })
      : await sh('ip', ['link', 'add', 'link', l.parent, 'name', 'dcprobe', 'type', 'ipvlan', 'mode', 'l2'], { reject: false });
    await sh('ip', ['link', 'del', 'dcprobe'], { reject: false });
    const net = await example(t, d, file, (c) => {
      const p = firstPlugin(c);
      p['master'] = l.parent;
      (p['ipam'] as Record<string, unknown>)['ranges'] = [[{ subnet: `${l.prefix}.0/24`, rangeStart: `${l.prefix}.200`, rangeEnd: `${l.prefix}.250` }]];
    });
    const c = await container(t, ['--network', 'none']);
    const attached = await attach(d, c, ['--network', net.name]);
    if (probe.exitCode !== 0) {
      t.log(`this kernel has no ${kind} links (ip link add: ${probe.stderr.trim()}): proving the failure path instead`);
      t.is(attached.exitCode, 1);
      t.regex(attached.stderr, new RegExp(`plugin "${kind}" failed \\(ADD\\)`));
      t.deepEqual(await ipamOf(net), [], 'the failed ADD left no reservation');
      t.deepEqual((await sh('docker', ['exec', c, 'ip', '-o', 'link'])).stdout.trim().split('\n').length, 1, 'only lo');
      return;
    }
    t.is(attached.exitCode, 0, attached.stderr);
    const ip = (await addressOf(c)) ?? '';
    if (kind === 'vlan') {
      await sh('ip', ['-n', l.ns, 'link', 'add', 'link', 'eth0', 'name', 'eth0.100', 'type', 'vlan', 'id', '100']);
      await sh('ip', ['-n', l.ns, 'addr', 'add', `${l.prefix}.2/24`, 'dev', 'eth0.100']);
      await sh('ip', ['-n', l.ns, 'link', 'set', 'eth0.100', 'up']);
    }
    t.true(await ping(ip, l.ns));
    await detach(d, c);
    t.deepEqual(await ipamOf(net), []);
  });
}

test('ptp: a point-to-point link the host reaches', async (t) => {
  const d = await dirs(t);
  const net = await example(t, d, '60-ptp.conflist', (c) => { rangesOf(c)[0] = [{ subnet: '10.231.66.0/24' } as never]; });
  const c = await container(t, ['--network', 'none']);
  t.is((await attach(d, c, ['--network', net.name])).exitCode, 0);
  const ip = (await addressOf(c)) ?? '';
  t.regex(ip, /^10\.231\.66\./);
  t.regex((await sh('ip', ['route', 'show', ip])).stdout, /dev veth\S+ scope host/, 'the host routes the container\'s /32 over its end of the link');
  t.true(await ping(ip));
  await detach(d, c);
  t.deepEqual(await ipamOf(net), []);
  t.false(await ping(ip));
});

test('static IPAM: exactly the configured address', async (t) => {
  const d = await dirs(t);
  const net = await example(t, d, '70-static.conflist', (c) => {
    (firstPlugin(c)['ipam'] as Record<string, unknown>)['addresses'] = [{ address: '10.231.67.10/24', gateway: '10.231.67.1' }];
    (firstPlugin(c)['ipam'] as Record<string, unknown>)['routes'] = [{ dst: '10.231.0.0/16' }];
  });
  const c = await container(t, ['--network', 'none']);
  t.is((await attach(d, c, ['--network', net.name])).exitCode, 0);
  t.is(await addressOf(c), '10.231.67.10');
  await detach(d, c);
  t.is(await addressOf(c), undefined);
});

test('bandwidth: the shaping qdisc on the host side with the configured rate, gone after DEL', async (t) => {
  const d = await dirs(t);
  const net = await example(t, d, '10-bridge.conflist', (c) => { rangesOf(c)[0] = [{ subnet: '10.231.68.0/24' } as never]; });
  const ns = await netns(t);
  const common = ['--container-id', 'bwtest', ...d.flags];
  const added = await execa('node', [BIN, 'cni', 'add', net.name, ns, '--cap-args', '{"bandwidth":{"ingressRate":8000000,"ingressBurst":1000000,"egressRate":4000000,"egressBurst":1000000}}', ...common]);
  const hostVeth = (JSON.parse(added.stdout) as { interfaces: { name: string; sandbox?: string }[] }).interfaces.find((i) => i.name.startsWith('veth'))?.name ?? '';
  const qdisc = await sh('tc', ['qdisc', 'show', 'dev', hostVeth]);
  t.regex(qdisc.stdout, /tbf .*rate 8Mbit/);
  const ifb = (await sh('ip', ['-o', 'link', 'show', 'type', 'ifb'])).stdout;
  t.regex(ifb, /bwp/);
  await execa('node', [BIN, 'cni', 'del', net.name, ns, ...common]);
  t.notRegex((await sh('ip', ['-o', 'link', 'show', 'type', 'ifb'])).stdout, new RegExp((/(bwp[0-9a-f]+)/.exec(ifb)?.[1] ?? 'none')));
});

test('firewall: the plugin\'s rules for the container while wired, gone after', async (t) => {
  const d = await dirs(t);
  const net = await example(t, d, '60-ptp.conflist', (c) => { rangesOf(c)[0] = [{ subnet: '10.231.69.0/24' } as never]; });
  const c = await container(t, ['--network', 'none']);
  await attach(d, c, ['--network', net.name]);
  const ip = (await addressOf(c)) ?? '';
  const rules = async () => (await sh('iptables', ['-S', 'CNI-FORWARD'])).stdout.split('\n').filter((l) => l.includes(`${ip}/32`));
  t.true((await rules()).length >= 2);
  await detach(d, c);
  t.deepEqual(await rules(), []);
});

test('tuning: sysctl, MTU and MAC applied inside the container', async (t) => {
  const d = await dirs(t);
  const net = await example(t, d, '80-tuning.conflist', (c) => { rangesOf(c)[0] = [{ subnet: '10.231.70.0/24' } as never]; });
  const c = await container(t, ['--network', 'none']);
  t.is((await attach(d, c, ['--network', net.name])).exitCode, 0);
  const link = (await sh('docker', ['exec', c, 'ip', '-o', 'link', 'show', 'eth0'])).stdout;
  t.regex(link, /mtu 1400/);
  t.regex(link, /link\/ether 02:00:0a:d6:00:99/);
  t.is((await sh('docker', ['exec', c, 'cat', '/proc/sys/net/core/somaxconn'])).stdout.trim(), '512');
  t.is((await sh('docker', ['exec', c, 'cat', '/proc/sys/net/ipv4/conf/eth0/arp_ignore'])).stdout.trim(), '1');
  await detach(d, c);
  t.deepEqual(await ipamOf(net), []);
});

test('loopback: lo comes up in a fresh netns', async (t) => {
  const d = await dirs(t);
  await example(t, d, '90-loopback.conf', (c) => { c['name'] = 'lo-test'; });
  const ns = await netns(t);
  t.regex((await sh('ip', ['-n', ns, 'link', 'show', 'lo'])).stdout, /state DOWN/);
  await execa('node', [BIN, 'cni', 'add', 'lo-test', ns, '--container-id', 'lotest', ...d.flags]);
  t.regex((await sh('ip', ['-n', ns, 'link', 'show', 'lo'])).stdout, /UP/);
  t.true(await ping('127.0.0.1', ns));
  await execa('node', [BIN, 'cni', 'del', 'lo-test', ns, '--container-id', 'lotest', ...d.flags]);
});

test('dhcp IPAM: a lease from dnsmasq on the LAN stand-in, released on DEL', async (t) => {
  const d = await dirs(t);
  const l = await lan(t, 71);
  const leases = path.join(d.root, 'dnsmasq.leases');
  const dnsmasq = execa('ip', ['netns', 'exec', l.ns, 'dnsmasq', '--no-daemon', '--port=0', '--interface=eth0', '--bind-interfaces',
    `--dhcp-range=${l.prefix}.50,${l.prefix}.60,255.255.255.0,1h`, `--dhcp-leasefile=${leases}`, '--dhcp-authoritative'], { reject: false });
  t.teardown(async () => { dnsmasq.kill('SIGTERM'); await dnsmasq; });
  const socket = path.join(d.root, 'dhcp.sock');
  const daemon = execa('/usr/lib/cni/dhcp', ['daemon', '-socketpath', socket, '-timeout', '5s'], { reject: false });
  t.teardown(async () => { daemon.kill('SIGTERM'); await daemon; });
  await waitFor('the dhcp daemon socket', async () => (await sh('test', ['-S', socket], { reject: false })).exitCode === 0);
  const net = await example(t, d, '31-macvlan-dhcp.conflist', (c) => {
    const p = firstPlugin(c);
    p['master'] = l.parent;
    p['ipam'] = { type: 'dhcp', daemonSocketPath: socket };
  });
  const c = await container(t, ['--network', 'none']);
  const attached = await attach(d, c, ['--network', net.name]);
  t.is(attached.exitCode, 0, attached.stderr);
  const ip = (await addressOf(c)) ?? '';
  t.regex(ip, new RegExp(`^${l.prefix.replace(/\./g, '\\.')}\\.(5\\d|60)$`));
  t.regex(await readFile(leases, 'utf8'), new RegExp(ip.replace(/\./g, '\\.')));
  t.true(await ping(ip, l.ns));
  await detach(d, c);
  await waitFor('the lease released', async () => !(await readFile(leases, 'utf8')).includes(ip));
  t.pass();
});
