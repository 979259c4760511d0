import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import { execa } from 'execa';
import { dockcni, hostTest, ping, sh, uid } from '../helpers/host.js';
import { lan } from '../helpers/networks.js';
import { addressOf, container, dirs, pingFrom, startDaemon, waitFor, type Dirs } from '../helpers/docker.js';

const test = hostTest();

interface Created { readonly subnets: string[]; readonly file: string; readonly bridge?: string }

/** `dockcni networks create NAME ARGS -o json`; the bridge it names is deleted when the test ends. */
async function create(t: ExecutionContext, d: Dirs, name: string, args: string[] = []): Promise<Created> {
  const created = JSON.parse((await dockcni(['networks', 'create', name, ...args, '-o', 'json', ...d.flags])).stdout) as Created;
  if (created.bridge !== undefined) t.teardown(async () => { await sh('ip', ['link', 'del', created.bridge ?? ''], { reject: false }); });
  return created;
}

test('networks create: a bridge on a free subnet that containers use and talk on; rm refuses while attached, then removes file and bridge', async (t) => {
  const d = await dirs(t);
  const name = uid('nc');
  const created = await create(t, d, name);
  t.regex(created.subnets[0] ?? '', /^10\.220\.\d+\.0\/24$/);
  t.is((await import('node:fs')).statSync(created.file).mode & 0o777, 0o644);
  const ls = (await dockcni(['networks', 'ls', ...d.flags])).stdout;
  t.regex(ls, new RegExp(`^${name} +bridge +${created.subnets[0]?.replace(/\./g, '\\.')} +0 `, 'm'));
  const [a, b] = [await container(t, ['--network', 'none']), await container(t, ['--network', 'none'])];
  await dockcni(['attach', a, '--network', name, ...d.flags]);
  await dockcni(['attach', b, '--network', name, ...d.flags]);
  const ipA = await addressOf(a) ?? '';
  t.regex(ipA, new RegExp(`^${created.subnets[0]?.split('.').slice(0, 3).join('\\.')}\\.`));
  t.true(await pingFrom(b, ipA), 'containers on it reach each other (firewall is in the chain)');
  const refused = await dockcni(['networks', 'rm', name, ...d.flags], { reject: false });
  t.is(refused.exitCode, 1);
  t.regex(refused.stderr, new RegExp(`network ${name} has 2 container\\(s\\) attached`));
  await dockcni(['detach', a, ...d.flags]);
  const forced = await dockcni(['networks', 'rm', name, '--force', ...d.flags]);
  t.regex(forced.stdout, new RegExp(`removed ${name} .*, detached `));
  t.false(existsSync(created.file));
  t.is((await sh('ip', ['link', 'show', created.bridge ?? ''], { reject: false })).exitCode, 1, 'its bridge is gone too');
  t.false(existsSync(`/var/lib/cni/networks/${name}`), 'and host-local\'s directory for it');
});

test('networks create: dual stack, --internal (no way out), and macvlan on a parent link', async (t) => {
  const d = await dirs(t);
  const dual = uid('nd');
  await create(t, d, dual, ['--subnet', '10.220.201.0/24', '--subnet', 'fd00:dc:201::/64']);
  const internal = uid('ni');
  await create(t, d, internal, ['--subnet', '10.220.202.0/24', '--internal']);
  const c = await container(t, ['--network', 'none', '--sysctl', 'net.ipv6.conf.all.disable_ipv6=0']);
  await dockcni(['attach', c, '--network', dual, '--network', internal, ...d.flags]);
  const addrs = (await sh('docker', ['exec', c, 'ip', '-o', 'addr'])).stdout;
  t.regex(addrs, /eth0 +inet 10\.220\.201\.\d+\/24/);
  t.regex(addrs, /eth0 +inet6 fd00:dc:201::[0-9a-f]+\/64/);
  t.regex(addrs, /eth1 +inet 10\.220\.202\.\d+\/24/);
  const routes = (await sh('docker', ['exec', c, 'ip', 'route'])).stdout;
  t.regex(routes, /^default via 10\.220\.201\.1 dev eth0/m);
  t.notRegex(routes, /default via 10\.220\.202/, 'the internal network gives no way out');
  const conf = JSON.parse(await readFile(path.join(d.confDir, `50-${internal}.conflist`), 'utf8')) as { plugins: { ipMasq?: boolean }[] };
  t.false(conf.plugins[0]?.ipMasq, 'and no masquerade');
  await dockcni(['detach', c, ...d.flags]);
  // macvlan on a link of the test's own, standing in for the host's LAN NIC.
  const parent = uid('dcpar');
  await sh('ip', ['link', 'add', parent, 'type', 'veth', 'peer', 'name', `${parent}p`]);
  t.teardown(async () => { await sh('ip', ['link', 'del', parent], { reject: false }); });
  await sh('ip', ['link', 'set', parent, 'up']);
  const lan = uid('nm');
  await dockcni(['networks', 'create', lan, '-d', 'macvlan', '--parent', parent, '--subnet', '10.220.203.0/24', '--ip-range', '10.220.203.128/25', ...d.flags]);
  const m = await container(t, ['--network', 'none']);
  await dockcni(['attach', m, '--network', lan, ...d.flags]);
  // Detached before its parent goes, even when an assertion below fails: macvlan cannot DEL without it.
  t.teardown(async () => { await dockcni(['detach', m, ...d.flags], { reject: false }); });
  t.regex(await addressOf(m) ?? '', /^10\.220\.203\.(12[89]|1[3-9]\d|2\d\d)$/, 'from the --ip-range half');
  await dockcni(['detach', m, ...d.flags]);
  for (const n of [dual, internal, lan]) await dockcni(['networks', 'rm', n, ...d.flags]);
});

test('networks create refuses, naming the clash: a taken name, another CNI network, a Docker network, a host route, a missing parent; rm leaves hand-written files alone', async (t) => {
  const d = await dirs(t);
  const first = uid('nr');
  await create(t, d, first, ['--subnet', '10.220.210.0/24']);
  // A route of the host's: a link of the test's own with an address.
  const link = uid('dcrt');
  await sh('ip', ['link', 'add', link, 'type', 'veth', 'peer', 'name', `${link}p`]);
  t.teardown(async () => { await sh('ip', ['link', 'del', link], { reject: false }); });
  await sh('ip', ['addr', 'add', '10.233.211.1/24', 'dev', link]);
  await sh('ip', ['link', 'set', link, 'up']);
  const docker = (await sh('docker', ['network', 'inspect', 'bridge', '--format', '{{(index .IPAM.Config 0).Subnet}}'])).stdout.trim();
  for (const [args, message] of [
    [[first], new RegExp(`network ${first} already exists`)],
    [['x1', '--subnet', '10.220.210.128/25'], new RegExp(`overlaps 10\\.220\\.210\\.0/24 of CNI network ${first}`)],
    [['x2', '--subnet', docker], /of Docker network bridge/],
    [['x3', '--subnet', '10.233.211.0/24'], new RegExp(`of a route of the host via ${link}`)],
    [['x4', '-d', 'macvlan', '--parent', 'nosuchlink0', '--subnet', '10.220.212.0/24'], /invalid --parent "nosuchlink0": no such link on this host/],
    [['x5', '--subnet', '10.220.213.0/24', '--gateway', '10.9.9.9'], /invalid --gateway "10\.9\.9\.9": not an address inside one of the --subnet values/],
    [['x6', '--subnet', '10.220.214.0/24', '--subnet', '10.220.215.0/24'], /give at most one IPv4 and one IPv6 subnet/],
  ] as const) {
    const r = await dockcni(['networks', 'create', ...args, ...d.flags], { reject: false });
    t.is(r.exitCode, 1, args.join(' '));
    t.regex(r.stderr, message, args.join(' '));
  }
  await writeFile(path.join(d.confDir, '10-mine.conflist'), JSON.stringify({ cniVersion: '1.0.0', name: 'mine', plugins: [{ type: 'fixture' }] }));
  const handWritten = await dockcni(['networks', 'rm', 'mine', ...d.flags], { reject: false });
  t.regex(handWritten.stderr, /10-mine\.conflist was not written by dockcni networks create: left alone/);
  t.true(existsSync(path.join(d.confDir, '10-mine.conflist')));
  await dockcni(['networks', 'rm', first, ...d.flags]);
});

test('one network at a time: attach adds eth1, eth2 to a wired container; detach --network drops one; the daemon does not undo either', async (t) => {
  const d = await dirs(t);
  const [a, b, c] = [uid('n1'), uid('n2'), uid('n3')];
  for (const [i, n] of [a, b, c].entries()) {
    await create(t, d, n, ['--subnet', `10.220.${220 + i}.0/24`]);
  }
  const daemon = await startDaemon(t, d);
  const ctr = await container(t, ['--network', 'none', '-l', `dockcni.networks=${a}`]);
  await waitFor('wired on the first network by the daemon', () => addressOf(ctr));
  const added = await dockcni(['attach', ctr, '--network', b, '--network', c, ...d.flags]);
  t.regex(added.stdout, new RegExp(`eth1 ${b} 10\\.220\\.221\\.\\d+/24`));
  t.regex(added.stdout, new RegExp(`eth2 ${c} 10\\.220\\.222\\.\\d+/24`));
  t.regex(await addressOf(ctr, 'eth0') ?? '', /^10\.220\.220\./, 'eth0 untouched');
  await dockcni(['detach', ctr, '--network', b, ...d.flags]);
  const links = (await sh('docker', ['exec', ctr, 'ip', '-o', 'link'])).stdout;
  t.notRegex(links, /\beth1@/);
  t.regex(links, /\beth0@/);
  t.regex(links, /\beth2@/);
  const record = JSON.parse(await readFile(path.join(d.root, 'state/attachments', `${ctr}.json`), 'utf8')) as { networks: { network: string; ifName: string; state: string }[] };
  t.deepEqual(record.networks.map((n) => `${n.ifName} ${n.network} ${n.state}`), [`eth0 ${a} wired`, `eth2 ${c} wired`]);
  // A daemon that starts again reconciles: it keeps what attach and detach did.
  await daemon.stop();
  await startDaemon(t, d);
  t.regex(await addressOf(ctr, 'eth2') ?? '', /^10\.220\.222\./);
  const again = await dockcni(['attach', ctr, '--network', a, ...d.flags], { reject: false });
  t.regex(again.stderr, new RegExp(`already has eth0 on ${a}`));
  await sh('docker', ['rm', '-f', ctr]);
  await waitFor('unwired', async () => !existsSync(path.join(d.root, 'state/attachments', `${ctr}.json`)));
  for (const n of [a, b, c]) await dockcni(['networks', 'rm', n, ...d.flags]);
});

test('two networks whose names share their first 15 characters get bridges of their own; rm deletes a bridge only when nothing else uses it', async (t) => {
  const d = await dirs(t);
  const stem = uid('payments');
  const [internal, internet] = [`${stem}-internal`, `${stem}-internet`];
  const a = await create(t, d, internal, ['--subnet', '10.220.230.0/24']);
  const b = await create(t, d, internet, ['--subnet', '10.220.231.0/24']);
  t.truthy(a.bridge);
  t.not(a.bridge, b.bridge, 'one bridge each');
  t.true((a.bridge ?? '').length <= 15);
  const [x, y] = [await container(t, ['--network', 'none']), await container(t, ['--network', 'none'])];
  await dockcni(['attach', x, '--network', internal, ...d.flags]);
  await dockcni(['attach', y, '--network', internet, ...d.flags]);
  await dockcni(['detach', x, ...d.flags]);
  await dockcni(['networks', 'rm', internal, ...d.flags]);
  t.is((await sh('ip', ['link', 'show', a.bridge ?? ''], { reject: false })).exitCode, 1, 'its own bridge went');
  t.is((await sh('ip', ['link', 'show', b.bridge ?? ''])).exitCode, 0, 'the other network\'s bridge stays');
  t.true(await pingFrom(y, (await addressOf(y) ?? '').replace(/\.\d+$/, '.1')), 'and its container still reaches its gateway');
  // A hand-written network on the same bridge keeps it when the created one goes.
  await writeFile(path.join(d.confDir, '60-shared.conflist'), JSON.stringify({ cniVersion: '1.0.0', name: `${stem}-shared`, plugins: [{ type: 'bridge', bridge: b.bridge, ipam: { type: 'host-local', subnet: '10.220.232.0/24' } }] }));
  await dockcni(['detach', y, ...d.flags]);
  const removed = await dockcni(['networks', 'rm', internet, ...d.flags]);
  t.regex(removed.stdout, new RegExp(`kept bridge ${b.bridge}: used by network ${stem}-shared`));
  t.is((await sh('ip', ['link', 'show', b.bridge ?? ''])).exitCode, 0);
  // A created name that would take an existing link's name takes the next one.
  const taken = await create(t, d, `${stem}-x`, ['--subnet', '10.220.233.0/24']);
  await dockcni(['networks', 'rm', `${stem}-x`, ...d.flags]);
  await sh('ip', ['link', 'add', taken.bridge ?? '', 'type', 'bridge']);
  const moved = await create(t, d, `${stem}-x`, ['--subnet', '10.220.233.0/24']);
  t.not(moved.bridge, taken.bridge, 'a link of that name exists: another bridge name');
  await dockcni(['networks', 'rm', `${stem}-x`, ...d.flags]);
});

test('networks create: --mtu reaches the container\'s interface, --label stays in the conflist; ptp is reached from the host; ipvlan works where the kernel has it, else fails cleanly; --ipam dhcp takes a lease from the LAN\'s server', async (t) => {
  const d = await dirs(t);
  const mtu = uid('nmtu');
  await create(t, d, mtu, ['--subnet', '10.220.240.0/24', '--mtu', '1400', '--label', 'tier=web', '--label', 'owner=ops=team']);
  const inspected = JSON.parse((await dockcni(['networks', 'inspect', mtu, '-o', 'json', ...d.flags])).stdout) as { config: { dockcni: { labels: Record<string, string> } } };
  t.deepEqual(inspected.config.dockcni.labels, { tier: 'web', owner: 'ops=team' }, 'labels kept, a value may hold "="');
  const c = await container(t, ['--network', 'none']);
  await dockcni(['attach', c, '--network', mtu, ...d.flags]);
  t.is((await sh('docker', ['exec', c, 'cat', '/sys/class/net/eth0/mtu'])).stdout.trim(), '1400');
  await dockcni(['detach', c, ...d.flags]);

  const ptp = uid('nptp');
  await create(t, d, ptp, ['-d', 'ptp', '--subnet', '10.220.241.0/24']);
  await dockcni(['attach', c, '--network', ptp, ...d.flags]);
  const ip = (await addressOf(c)) ?? '';
  t.regex(ip, /^10\.220\.241\./);
  t.regex((await sh('ip', ['route', 'show', ip])).stdout, /dev veth\S+ scope host/, 'the host routes the container\'s address over its end of the link');
  t.true(await ping(ip), 'the host reaches it');
  await dockcni(['detach', c, ...d.flags]);

  const l = await lan(t, 72);
  const ipvlan = uid('nipv');
  await create(t, d, ipvlan, ['-d', 'ipvlan', '--parent', l.parent, '--subnet', `${l.prefix}.0/24`, '--ip-range', `${l.prefix}.128/25`]);
  const probe = await sh('ip', ['link', 'add', 'link', l.parent, 'name', 'dcprobe', 'type', 'ipvlan', 'mode', 'l2'], { reject: false });
  await sh('ip', ['link', 'del', 'dcprobe'], { reject: false });
  const attached = await dockcni(['attach', c, '--network', ipvlan, ...d.flags], { reject: false });
  if (probe.exitCode === 0) {
    t.is(attached.exitCode, 0, attached.stderr);
    t.true(await ping((await addressOf(c)) ?? '', l.ns), 'the LAN host reaches the ipvlan container');
    await dockcni(['detach', c, ...d.flags]);
  } else {
    t.log(`this kernel has no ipvlan links (${probe.stderr.trim()}): the failure path instead`);
    t.is(attached.exitCode, 1);
    t.regex(attached.stderr, /plugin "ipvlan" failed \(ADD\)/);
    t.deepEqual((await sh('docker', ['exec', c, 'ip', '-o', 'link'])).stdout.trim().split('\n').length, 1, 'only lo');
  }

  // The dhcp plugin's daemon listens where a network without daemonSocketPath finds it.
  t.false(existsSync('/run/cni/dhcp.sock'), 'no dhcp daemon of someone else\'s on this host');
  const leases = path.join(d.root, 'dnsmasq.leases');
  const dnsmasq = execa('ip', ['netns', 'exec', l.ns, 'dnsmasq', '--no-daemon', '--port=0', '--interface=eth0', '--bind-interfaces',
    `--dhcp-range=${l.prefix}.50,${l.prefix}.60,255.255.255.0,1h`, `--dhcp-leasefile=${leases}`, '--dhcp-authoritative'], { reject: false });
  t.teardown(async () => { dnsmasq.kill('SIGTERM'); await dnsmasq; });
  const dhcpd = execa('/usr/lib/cni/dhcp', ['daemon', '-timeout', '5s'], { reject: false });
  t.teardown(async () => { dhcpd.kill('SIGTERM'); await dhcpd; await sh('rm', ['-f', '/run/cni/dhcp.sock']); });
  await waitFor('the dhcp daemon socket', async () => existsSync('/run/cni/dhcp.sock'));
  const dhcp = uid('ndh');
  const made = await create(t, d, dhcp, ['-d', 'macvlan', '--parent', l.parent, '--ipam', 'dhcp']);
  t.deepEqual(made.subnets, [], 'no subnet: the LAN\'s server decides');
  const leased = await dockcni(['attach', c, '--network', dhcp, ...d.flags], { reject: false });
  t.is(leased.exitCode, 0, leased.stderr);
  const address = (await addressOf(c)) ?? '';
  t.regex(address, new RegExp(`^${l.prefix.replace(/\./g, '\\.')}\\.(5\\d|60)$`), 'an address from the server\'s range');
  t.regex(await readFile(leases, 'utf8'), new RegExp(address.replace(/\./g, '\\.')));
  await dockcni(['detach', c, ...d.flags]);
  await waitFor('the lease released', async () => !(await readFile(leases, 'utf8')).includes(address));
  for (const n of [mtu, ptp, ipvlan, dhcp]) await dockcni(['networks', 'rm', n, ...d.flags]);
});
