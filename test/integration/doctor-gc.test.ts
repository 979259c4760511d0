import { mkdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import { execa } from 'execa';
import { BIN, tempDir } from '../helpers/fixtures.js';
import { bridgeNetwork, hostTest, netns, reservations, rulesMentioning, sh } from '../helpers/host.js';
import { addressOf, container, dirs, pingFrom, startDaemon, waitFor, type Dirs } from '../helpers/docker.js';

const test = hostTest();

interface Check { check: string; status: 'ok' | 'warn' | 'fail'; found: string; fix?: string }

async function doctor(d: Dirs, inNetns?: string): Promise<{ exitCode: number; checks: Check[] }> {
  const args = [BIN, 'doctor', '-o', 'json', ...d.flags];
  const r = inNetns ? await execa('ip', ['netns', 'exec', inNetns, 'node', ...args], { reject: false }) : await execa('node', args, { reject: false });
  return { exitCode: r.exitCode ?? 1, checks: (JSON.parse(r.stdout) as { checks: Check[] }).checks };
}

const failing = (checks: Check[], name: string) => checks.filter((c) => c.check === name && c.status === 'fail');

async function healthy(t: ExecutionContext, d: Dirs): Promise<void> {
  const r = await doctor(d);
  t.deepEqual(r.checks.filter((c) => c.status === 'fail'), []);
  t.is(r.exitCode, 0);
}

test('doctor passes on the test host, and each check turns red under its fault', async (t) => {
  const d = await dirs(t);
  const net = await bridgeNetwork(t, d.confDir, d.root, 41);
  await healthy(t, d);

  // A missing plugin, and a malformed conf.
  await writeFile(path.join(d.confDir, '60-ghost.conflist'), JSON.stringify({ cniVersion: '1.0.0', name: 'ghost', plugins: [{ type: 'ghostplugin' }] }));
  await writeFile(path.join(d.confDir, '70-broken.conflist'), '{"name": "x", ');
  let r = await doctor(d);
  t.is(r.exitCode, 1);
  t.regex(failing(r.checks, 'network config').map((c) => c.found).join('\n'), /60-ghost\.conflist \(ghost\): CNI plugin "ghostplugin" not found/);
  t.regex(failing(r.checks, 'network config').map((c) => c.found).join('\n'), /70-broken\.conflist: not valid JSON/);
  await sh('rm', [path.join(d.confDir, '60-ghost.conflist'), path.join(d.confDir, '70-broken.conflist')]);
  await healthy(t, d);

  // Forwarding off and a duplicate MAC, inside a test netns where both are per namespace.
  const ns = await netns(t);
  await sh('ip', ['netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv4.ip_forward=0']);
  await sh('ip', ['-n', ns, 'link', 'add', 'dupa', 'type', 'veth', 'peer', 'name', 'dupb']);
  await sh('ip', ['-n', ns, 'link', 'set', 'dupa', 'address', '02:00:00:aa:bb:cc']);
  await sh('ip', ['-n', ns, 'link', 'set', 'dupb', 'address', '02:00:00:aa:bb:cc']);
  r = await doctor(d, ns);
  t.regex(failing(r.checks, 'ip forwarding')[0]?.found ?? '', /net\.ipv4\.ip_forward = 0/);
  t.regex(failing(r.checks, 'mac addresses')[0]?.found ?? '', /02:00:00:aa:bb:cc on dup[ab], dup[ab]/);
  t.is(r.exitCode, 1);

  // A mapped host port that a host process starts listening on after the fact (before, wiring refuses it).
  const daemon = await startDaemon(t, d);
  const mapped = await container(t, ['--network', 'none', '-l', `dockcni.networks=${net.name}`, '-l', 'dockcni.ports=18141:80']);
  await waitFor('the mapped container wired', () => addressOf(mapped));
  await healthy(t, d);
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(18141, '0.0.0.0', resolve));
  t.teardown(() => new Promise<void>((resolve) => { server.close(() => resolve()); }));
  r = await doctor(d);
  t.regex(failing(r.checks, 'host ports')[0]?.found ?? '', new RegExp(`18141/tcp \\(container .*\\) is also listened on by pid ${process.pid} \\(node\\)`));
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await sh('docker', ['rm', '-f', mapped]);
  await waitFor('the mapped container unwired', async () => (await reservations(net)).length === 0);
  await daemon.stop();

  // A leaked reservation.
  await mkdir(path.join(net.ipamDir, net.name), { recursive: true });
  const leaked = path.join(net.ipamDir, net.name, '10.231.41.200');
  // Held by a container dockcni wired (in its ledger) and that is gone: dockcni's to remove. A reservation
  // of an id dockcni never wired belongs to another runtime and is left alone (hardening.test.ts).
  await writeFile(leaked, `${mapped}\r\neth0`);
  await sh('touch', ['-d', '2 minutes ago', leaked]);
  r = await doctor(d);
  t.regex(failing(r.checks, 'leftovers')[0]?.found ?? '', new RegExp(`host-local reservation 10\\.231\\.41\\.200 on .* held by gone container ${mapped.slice(0, 4)}`));
  await execa('node', [BIN, 'gc', ...d.flags]);
  await healthy(t, d);
});

test('gc: a container killed while no daemon runs leaves leftovers; --dry-run lists, gc removes, a second gc finds nothing, a live neighbour keeps working', async (t) => {
  const d = await dirs(t, { leavesState: 'no daemon runs once it is stopped: gc is the DEL path of every container here' });
  const net = await bridgeNetwork(t, d.confDir, d.root, 42);
  const daemon = await startDaemon(t, d);
  const live = await container(t, ['--network', 'none', '-l', `dockcni.networks=${net.name}`]);
  const peer = await container(t, ['--network', 'none', '-l', `dockcni.networks=${net.name}`]);
  const doomed = await container(t, ['--network', 'none', '-l', `dockcni.networks=${net.name}`, '-l', 'dockcni.ports=18142:80']);
  const ipLive = await waitFor('live', () => addressOf(live));
  await waitFor('peer', () => addressOf(peer));
  await waitFor('doomed', () => addressOf(doomed));
  await daemon.stop();
  await sh('docker', ['rm', '-f', doomed]);
  t.is((await reservations(net)).length, 3);
  t.not((await rulesMentioning(doomed)).length, 0);

  const dry = await execa('node', [BIN, 'gc', '--dry-run', ...d.flags]);
  t.regex(dry.stdout, new RegExp(`would remove attachment of .* \\(${doomed.slice(0, 12)}\\) on ${net.name}: container is gone`));
  t.is((await reservations(net)).length, 3, 'dry run removes nothing');

  const gc = await execa('node', [BIN, 'gc', '--trace', ...d.flags]);
  t.regex(gc.stdout, new RegExp(`removed attachment of .* \\(${doomed.slice(0, 12)}\\)`));
  t.regex(gc.stderr, new RegExp(`── DEL portmap[\\s\\S]*CNI_CONTAINERID=${doomed}`), '--trace on gc shows the DELs it runs');
  t.is((await reservations(net)).length, 2);
  t.deepEqual(await rulesMentioning(doomed), []);
  const again = await execa('node', [BIN, 'gc', ...d.flags]);
  t.is(again.stdout.trim(), 'nothing to remove');
  t.true(await pingFrom(peer, ipLive), 'the live container keeps working');
});

test('doctor: the rest of its checks each turn red (or warn) under their own fault', async (t) => {
  const d = await dirs(t);
  const status = (checks: Check[], name: string) => checks.filter((c) => c.check === name).map((c) => `${c.status}: ${c.found}`).join('\n');
  // Docker unreachable and no daemon running.
  const nowhere = ['--docker-host', `unix://${path.join(d.root, 'nobody.sock')}`];
  let r = await execa('node', [BIN, 'doctor', '-o', 'json', ...d.flags, ...nowhere], { reject: false });
  let checks = (JSON.parse(r.stdout) as { checks: Check[] }).checks;
  t.regex(status(checks, 'docker'), /^fail: cannot reach the Docker daemon at unix:\/\/.*nobody\.sock/);
  t.regex(status(checks, 'dockcni daemon'), /^warn: not running/);
  t.regex(status(checks, 'leftovers'), /^warn: skipped: needs Docker/);
  t.is(r.exitCode, 1);
  // No conf dir, and no plugins for the embedded network.
  const empty = await tempDir(t);
  r = await execa('node', [BIN, 'doctor', '-o', 'json', '--conf-dir', path.join(empty, 'none'), '--cni-path', empty, '--state-dir', path.join(d.root, 'state'), '--run-dir', path.join(d.root, 'run'), '--cache-dir', path.join(d.root, 'cache')], { reject: false });
  checks = (JSON.parse(r.stdout) as { checks: Check[] }).checks;
  t.regex(status(checks, 'conf dir'), /^warn: .*none does not exist: only the embedded "dockcni" network is available/);
  t.regex(status(checks, 'default network'), /^fail: missing plugin\(s\) bridge, firewall, portmap/);
  // A dhcp network without the dhcp daemon, an IPv6 network with IPv6 forwarding off, a bridge without
  // firewall under Docker's DROP policy, and a hostname of "localhost" — in a netns and a UTS namespace
  // of the test's own.
  const { writeFile: write } = await import('node:fs/promises');
  await write(path.join(d.confDir, '10-v6.conflist'), JSON.stringify({ cniVersion: '1.0.0', name: 'v6', plugins: [{ type: 'bridge', bridge: 'dcbrv6x', ipam: { type: 'host-local', subnet: 'fd00:dc::/64', dataDir: path.join(d.root, 'ipam') } }] }));
  await write(path.join(d.confDir, '20-lease.conflist'), JSON.stringify({ cniVersion: '1.0.0', name: 'lease', plugins: [{ type: 'macvlan', master: 'nosuchlan0', ipam: { type: 'dhcp' } }] }));
  const ns = await netns(t);
  await sh('ip', ['netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv6.conf.all.forwarding=0']);
  const inside = await execa('ip', ['netns', 'exec', ns, 'unshare', '--uts', 'sh', '-c', `hostname localhost && node ${BIN} doctor -o json ${d.flags.join(' ')}`], { reject: false });
  checks = (JSON.parse(inside.stdout) as { checks: Check[] }).checks;
  t.regex(status(checks, 'ipv6 forwarding'), /^fail: net\.ipv6\.conf\.all\.forwarding = 0 while a network is IPv6/);
  t.regex(status(checks, 'hostname'), /^fail: "localhost"/);
  const dhcpUp = await sh('test', ['-S', '/run/cni/dhcp.sock'], { reject: false });
  if (dhcpUp.exitCode !== 0) t.regex(status(checks, 'dhcp daemon'), /^fail: networks lease use dhcp IPAM but \/run\/cni\/dhcp\.sock is missing/);
  else t.regex(status(checks, 'dhcp daemon'), /^ok: /, 'a dhcp daemon of the host answers: the check sees it');
  // dockerd, which the tests run, sets the FORWARD policy to DROP.
  t.regex((await sh('iptables', ['-S', 'FORWARD'])).stdout, /^-P FORWARD DROP/m);
  const host = (JSON.parse((await execa('node', [BIN, 'doctor', '-o', 'json', ...d.flags], { reject: false })).stdout) as { checks: Check[] }).checks;
  t.regex(status(host, 'forward policy'), /^warn: the IPv4 FORWARD policy is DROP .* network v6 .* has no firewall plugin/);
  // iptables that does not run: a PATH where the only iptables fails.
  const bin = await tempDir(t);
  await write(path.join(bin, 'iptables'), '#!/bin/sh\necho "iptables: broken on purpose" >&2\nexit 3\n', { mode: 0o755 });
  r = await execa('node', [BIN, 'doctor', '-o', 'json', ...d.flags], { reject: false, env: { PATH: `${bin}:${process.env['PATH'] ?? ''}` } });
  checks = (JSON.parse(r.stdout) as { checks: Check[] }).checks;
  t.regex(status(checks, 'iptables'), /^fail: iptables does not run: iptables: broken on purpose/);
});
