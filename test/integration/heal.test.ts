import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { addressOf, assertNoLeftovers, container, dirs, httpFromOtherHost, pingFrom, startDaemon, waitFor, type RunningDaemon } from '../helpers/docker.js';
import { FIXTURE_PLUGINS } from '../helpers/fixtures.js';
import { dockerdPid } from '../../src/runtime/install.js';
import { bridgeNetwork, dockcni, hostTest, hostVethsOn, restartDockerd, sh } from '../helpers/host.js';

const test = hostTest();

const macOf = async (id: string) => (await sh('docker', ['exec', id, 'cat', '/sys/class/net/eth0/address'])).stdout.trim();

/** The nat rules and chains of one container (bridge masquerade, portmap DNAT): what `iptables -t nat -F` of CNI's chains would take. */
async function flushNatOf(id: string): Promise<void> {
  const lines = (await sh('iptables-save', ['-t', 'nat'])).stdout.split('\n').filter((l) => l.startsWith('-A ') && l.includes(id));
  const chains = new Set(lines.map((l) => /-j (CNI-[\w-]+)/.exec(l)?.[1]).filter((c): c is string => c !== undefined && !c.startsWith('CNI-HOSTPORT')));
  // In one transaction: a check round between two deletions would see only part of what went.
  const script = ['*nat', ...lines.map((l) => l.replace(/^-A /, '-D ')), ...[...chains].map((c) => `-F ${c}`), 'COMMIT', ''].join('\n');
  await sh('iptables-restore', ['-w', '--noflush'], { input: script });
}

/** The firewall plugin's accept rules for one address, in CNI-FORWARD. */
async function dropForwardOf(address: string): Promise<void> {
  const lines = (await sh('iptables-save', ['-t', 'filter'])).stdout.split('\n').filter((l) => l.startsWith('-A CNI-FORWARD') && l.includes(`${address}/32`));
  for (const line of lines) await sh('sh', ['-c', `iptables -w ${line.replace(/^-A /, '-D ')}`]);
}

const repairsLogged = (daemon: RunningDaemon) => daemon.log().split('\n').filter((l) => l.includes('repaired')).length;

test('self-healing: flushed nat rules, dropped forward rules and a deleted bridge are repaired with the same addresses and MACs; a healthy container elsewhere is never touched; reload does it with the daemon stopped', async (t) => {
  const d = await dirs(t);
  // A recording fixture at the end of the chain: which container got which DEL and ADD on this network.
  const sameRecord = path.join(d.root, 'same-calls.jsonl');
  const net = await bridgeNetwork(t, d.confDir, d.root, 95, [{ type: 'portmap', capabilities: { portMappings: true }, snat: true }, { type: 'fixture', record: sameRecord }], true);
  const record = path.join(d.root, 'other-calls.jsonl');
  const other = await bridgeNetwork(t, d.confDir, d.root, 96, [{ type: 'fixture', record }]);
  let daemon = await startDaemon(t, d, ['--check-interval', '1']);
  const a = await container(t, ['--network', 'none', '-l', `dockcni.networks=${net.name}`, '-l', 'dockcni.ports=18195:80'], ['httpd', '-f', '-p', '80', '-h', '/etc']);
  const b = await container(t, ['--network', 'none', '-l', `dockcni.networks=${net.name}`]);
  const c = await container(t, ['--network', 'none', '-l', `dockcni.networks=${other.name}`]);
  const peer = await container(t, ['--network', 'none', '-l', `dockcni.networks=${net.name}`]);
  await waitFor('the healthy peer wired', () => addressOf(peer));
  const callsOf = async (id: string) => (await readFile(sameRecord, 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as { phase: string; command: string; env: Record<string, string> })
    .filter((x) => x.phase === 'start' && x.env['CNI_CONTAINERID'] === id).map((x) => x.command);
  const before = { a: await waitFor('a wired', () => addressOf(a)), b: await waitFor('b wired', () => addressOf(b)), macA: '', macB: '' };
  await waitFor('c wired', () => addressOf(c));
  before.macA = await macOf(a);
  before.macB = await macOf(b);
  // Each probe from "another host" has its own /30 (10.233.<octet>.0): two probe links with one address would clash.
  let probe = 190;
  const whole = async (what: string) => {
    t.true(await waitFor(`${what}: a reaches b again`, () => pingFrom(a, before.b), 20_000), what);
    t.is(await addressOf(a), before.a, `${what}: a keeps its address`);
    t.is(await addressOf(b), before.b, `${what}: b keeps its address`);
    t.is(await macOf(a), before.macA, `${what}: a keeps its MAC`);
    t.is(await macOf(b), before.macB, `${what}: b keeps its MAC`);
    t.regex(await httpFromOtherHost(t, 18195, probe++), /^HTTP\/1\.[01] 200/, `${what}: the port mapping answers`);
  };
  await whole('at first');
  const calls = async () => (await readFile(record, 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as { phase: string; command: string }).filter((x) => x.phase === 'start').map((x) => x.command);
  t.deepEqual(await calls(), ['ADD']);

  await flushNatOf(a);
  await flushNatOf(b);
  await waitFor('nat repairs', async () => repairsLogged(daemon) >= 2, 20_000);
  await whole('after a flush of their nat rules');

  await dropForwardOf(before.a);
  await dropForwardOf(before.b);
  await waitFor('forward repairs', async () => repairsLogged(daemon) >= 4, 20_000);
  await whole('after their forward accept rules went');
  t.deepEqual(await callsOf(peer), ['ADD'], 'the healthy peer on the same network got no DEL or ADD from the four repairs');
  t.deepEqual(await callsOf(a), ['ADD', 'DEL', 'ADD', 'DEL', 'ADD'], 'while a was rebuilt twice');

  await sh('ip', ['link', 'del', net.bridge]);
  await waitFor('bridge repairs', async () => repairsLogged(daemon) >= 6, 20_000);
  await whole('after their bridge was deleted');
  t.regex(daemon.log(), new RegExp(`repaired .*missing="host link ${net.bridge}; host link veth\\w+ on bridge ${net.bridge}" tookMs=\\d+`), 'the log says what was missing, and how long the repair took');
  t.regex(daemon.log(), /repaired .*missing="masquerade rules \(nat\); port mapping 18195->/);
  const ls = (await dockcni(['ls', ...d.flags])).stdout;
  t.regex(ls, /wired \(repaired 3×, last /, 'ls counts the repairs');
  t.deepEqual(await calls(), ['ADD'], 'the healthy container on another network saw no DEL and no ADD');

  await daemon.stop();
  await flushNatOf(a);
  const dry = await dockcni(['reload', '--dry-run', ...d.flags], { reject: false });
  t.is(dry.exitCode, 1, 'something is broken');
  t.regex(dry.stdout, new RegExp(`${net.name} eth0: broken \\(missing: masquerade rules \\(nat\\); port mapping 18195->${before.a.replace(/\./g, '\\.')}:80 \\(nat\\)\\)`));
  t.notRegex(dry.stdout, new RegExp(other.name), 'the healthy one is not listed');
  const reloaded = await dockcni(['reload', ...d.flags], { reject: false });
  t.is(reloaded.exitCode, 0, reloaded.stdout + reloaded.stderr);
  t.regex(reloaded.stdout, /eth0: repaired in \d+ ms/);
  await whole('after dockcni reload, with the daemon stopped');
  t.is((await dockcni(['reload', ...d.flags])).stdout, 'every attachment is whole');
  t.deepEqual(await calls(), ['ADD']);

  daemon = await startDaemon(t, d, ['--check-interval', '1']);
  for (const id of [a, b, c, peer]) await sh('docker', ['rm', '-f', id]);
  await waitFor('all unwired', async () => (JSON.parse((await dockcni(['ls', '-o', 'json', ...d.flags])).stdout) as unknown[]).length === 0);
  await daemon.stop();
  await assertNoLeftovers(t, d, net, [a, b, peer]);
  await assertNoLeftovers(t, d, other, [c]);
});

test('a repair that cannot succeed (its plugin removed) is reported, backs off instead of looping, then --on-failure stops the container', async (t) => {
  const d = await dirs(t, { pluginDir: true });
  const copy = path.join(d.pluginDir!, 'fixturex');
  await sh('cp', [path.join(FIXTURE_PLUGINS, 'fixture'), copy]);
  const net = await bridgeNetwork(t, d.confDir, d.root, 97, [{ type: 'fixturex' }]);
  // The copy comes back, whatever happens, before teardown's gc needs it.
  t.teardown(async () => { await sh('cp', [path.join(FIXTURE_PLUGINS, 'fixture'), copy]); });
  const daemon = await startDaemon(t, d, ['--check-interval', '1', '--retries', '1', '--on-failure', 'stop']);
  const x = await container(t, ['--network', 'none', '-l', `dockcni.networks=${net.name}`]);
  // Its whole chain, not just the bridge's address: the fixture copy runs after it.
  await waitFor('x wired', async () => new RegExp(`info +wired .*id=${x.slice(0, 12)}`).test(daemon.log()));
  await sh('rm', [copy]);
  await flushNatOf(x);
  await waitFor('the policy applied', async () => (await sh('docker', ['inspect', '-f', '{{.State.Running}}', x])).stdout.trim() === 'false', 30_000);
  const failures = daemon.log().split('\n').filter((l) => l.includes('repair failed'));
  t.is(failures.length, 2, `two attempts (retries 1), not one per round; the log:\n${daemon.log()}`);
  t.regex(failures[0] ?? '', /attempt=1 retryInMs=2000 .*CNI plugin \\?"fixturex\\?" not found/);
  t.regex(failures[1] ?? '', /attempt=2 retryInMs=4000/);
  const at = (line: string) => Date.parse(line.slice(0, 24));
  t.true(at(failures[1]!) - at(failures[0]!) >= 1900, 'the second attempt waited for its backoff');
  t.regex(daemon.log(), /stopping container without its CNI networking \(--on-failure stop\)/);
  await sh('cp', [path.join(FIXTURE_PLUGINS, 'fixture'), copy]);
  await sh('docker', ['rm', '-f', x]);
  await waitFor('x unwired', async () => (JSON.parse((await dockcni(['ls', '-o', 'json', ...d.flags])).stdout) as unknown[]).length === 0);
  await daemon.stop();
  await assertNoLeftovers(t, d, net, [x]);
});

test('a 1.1.0 network whose plugin answers STATUS "not ready" holds new ADDs, with the reason logged, until it is ready', async (t) => {
  const d = await dirs(t);
  const record = path.join(d.root, 'calls.jsonl');
  const switchFile = path.join(d.root, 'not-ready');
  await writeFile(switchFile, '');
  await writeFile(record, '');
  await writeFile(path.join(d.confDir, '10-gated.conflist'), JSON.stringify({ cniVersion: '1.1.0', name: 'gated', plugins: [{ type: 'fixture', record, fixture: { notReadyIfExists: switchFile } }] }));
  const daemon = await startDaemon(t, d);
  const x = await container(t, ['--network', 'none', '-l', 'dockcni.networks=gated']);
  await waitFor('the hold logged', async () => /warn +network gated is not ready \(.*not ready: no uplink yet.*\): holding the ADD of container/.test(daemon.log()));
  const commands = async () => (await readFile(record, 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as { phase: string; command: string }).filter((c) => c.phase === 'start').map((c) => c.command);
  t.false((await commands()).includes('ADD'), 'no ADD while the network is not ready');
  t.notRegex(daemon.log(), /wiring failed/, 'the container is not failed for it');
  await rm(switchFile);
  await waitFor('wired once ready', async () => new RegExp(`info +wired .*id=${x.slice(0, 12)}`).test(daemon.log()));
  t.deepEqual((await commands()).filter((c) => c === 'ADD' || c === 'DEL'), ['ADD'], 'one ADD, after the STATUS calls that held it');
  t.true((await commands()).indexOf('ADD') > (await commands()).indexOf('STATUS'));
  await sh('docker', ['rm', '-f', x]);
  await waitFor('x unwired', async () => (JSON.parse((await dockcni(['ls', '-o', 'json', ...d.flags])).stdout) as unknown[]).length === 0);
});

test('dockerd restarted with live-restore: the containers keep running, and talking, with the same addresses', async (t) => {
  const daemonJson = '/etc/docker/daemon.json';
  const before = await readFile(daemonJson, 'utf8').catch(() => undefined);
  const config = before === undefined ? {} : JSON.parse(before) as Record<string, unknown>;
  await writeFile(daemonJson, JSON.stringify({ ...config, 'live-restore': true }));
  process.kill(dockerdPid(), 'SIGHUP');
  t.teardown(async () => {
    // A reload keeps the value of a key the file no longer names: it is switched back explicitly first.
    const was = config['live-restore'] === true;
    await writeFile(daemonJson, JSON.stringify({ ...config, 'live-restore': was }));
    process.kill(dockerdPid(), 'SIGHUP');
    await waitFor('live-restore back', async () => (await sh('docker', ['info', '--format', '{{.LiveRestoreEnabled}}'])).stdout.trim() === String(was));
    if (before === undefined) await rm(daemonJson, { force: true });
    else await writeFile(daemonJson, before);
  });
  await waitFor('live-restore on', async () => (await sh('docker', ['info', '--format', '{{.LiveRestoreEnabled}}'])).stdout.trim() === 'true');
  const d = await dirs(t);
  const net = await bridgeNetwork(t, d.confDir, d.root, 98, [{ type: 'portmap', capabilities: { portMappings: true }, snat: true }], true);
  const daemon = await startDaemon(t, d, ['--check-interval', '1']);
  const a = await container(t, ['--network', 'none', '-l', `dockcni.networks=${net.name}`, '-l', 'dockcni.ports=18198:80'], ['httpd', '-f', '-p', '80', '-h', '/etc']);
  const b = await container(t, ['--network', 'none', '-l', `dockcni.networks=${net.name}`]);
  await waitFor('both wired', async () => (daemon.log().match(/info +wired /g) ?? []).length >= 2);
  const [addressA, addressB] = [await addressOf(a), await addressOf(b)];
  await restartDockerd();
  await waitFor('the daemon to reconnect', async () => (daemon.log().match(/connected to Docker/g) ?? []).length >= 2, 60_000);
  t.true(await waitFor('a reaches b', () => pingFrom(a, addressB!), 20_000));
  t.is(await addressOf(a), addressA);
  t.is(await addressOf(b), addressB);
  t.regex(await httpFromOtherHost(t, 18198, 198), /^HTTP\/1\.[01] 200/, 'the port mapping answers');
  await sh('docker', ['rm', '-f', a, b]);
  await waitFor('unwired', async () => (JSON.parse((await dockcni(['ls', '-o', 'json', ...d.flags])).stdout) as unknown[]).length === 0);
  await daemon.stop();
  await assertNoLeftovers(t, d, net, [a, b]);
});

test('a repair keeps addresses and MACs on a network that declares no ips or mac capability (host-local and bridge read IP= and MAC=); doctor names a network where nothing can', async (t) => {
  const d = await dirs(t);
  const bridge = `dcbr${Math.random().toString(16).slice(2, 8)}`;
  const name = `plain${Math.random().toString(16).slice(2, 8)}`;
  t.teardown(async () => { await sh('ip', ['link', 'del', bridge], { reject: false }); });
  await writeFile(path.join(d.confDir, `50-${name}.conflist`), JSON.stringify({
    cniVersion: '1.0.0', name,
    plugins: [{ type: 'bridge', bridge, isGateway: true, ipMasq: true, ipam: { type: 'host-local', dataDir: path.join(d.root, 'ipam'), ranges: [[{ subnet: '10.231.97.0/24' }]] } }, { type: 'firewall', backend: 'iptables' }],
  }));
  const daemon = await startDaemon(t, d, ['--check-interval', '1']);
  const a = await container(t, ['--network', 'none', '-l', `dockcni.networks=${name}`]);
  const b = await container(t, ['--network', 'none', '-l', `dockcni.networks=${name}`]);
  const before = { a: await waitFor('a wired', () => addressOf(a)), b: await waitFor('b wired', () => addressOf(b)), macA: await macOf(a), macB: await macOf(b) };
  await sh('ip', ['link', 'del', bridge]);
  await waitFor('both repaired', async () => repairsLogged(daemon) >= 2, 20_000);
  t.true(await waitFor('a reaches b again', () => pingFrom(a, before.b), 20_000));
  t.deepEqual({ a: await addressOf(a), b: await addressOf(b), macA: await macOf(a), macB: await macOf(b) }, before, 'same addresses and MACs after the bridge was rebuilt');
  t.notRegex(daemon.log(), /may change/, 'no warning: both could be kept');
  // DHCP without the ips capability: nothing can ask for the old address, and doctor says so.
  await writeFile(path.join(d.confDir, '60-lease.conflist'), JSON.stringify({ cniVersion: '1.0.0', name: 'lease', plugins: [{ type: 'macvlan', master: 'lo', ipam: { type: 'dhcp' } }] }));
  const doctor = JSON.parse((await dockcni(['doctor', '-o', 'json', ...d.flags], { reject: false })).stdout) as { checks: { check: string; status: string; found: string }[] };
  const repairs = doctor.checks.filter((c) => c.check === 'repairs');
  t.deepEqual(repairs.map((c) => c.status), ['warn']);
  t.regex(repairs[0]?.found ?? '', /network lease .*: a repair may change its containers' addresses: no "ips"\/"mac" capability/);
  for (const id of [a, b]) await sh('docker', ['rm', '-f', id]);
  await waitFor('unwired', async () => JSON.parse((await dockcni(['ls', '-o', 'json', ...d.flags])).stdout).length === 0);
  await daemon.stop();
});

test('a container with NET_ADMIN that keeps flushing its own address is not repaired in a loop: the repairs back off and the log says the container changes its own network', async (t) => {
  const d = await dirs(t);
  const net = await bridgeNetwork(t, d.confDir, d.root, 99);
  const daemon = await startDaemon(t, d, ['--check-interval', '1']);
  const c = await container(t, ['--network', 'none', '--cap-add', 'NET_ADMIN', '-l', `dockcni.networks=${net.name}`], ['sh', '-c', 'while :; do ip addr flush dev eth0 2>/dev/null; sleep 0.2; done']);
  await waitFor('wired', async () => daemon.log().includes('wired container='));
  // Three relapses said: with a check every second, a loop would repair about once a second in between.
  const relapses = () => daemon.log().split('\n').filter((l) => l.includes('broken again right after its repair'));
  await waitFor('three relapses', async () => relapses().length >= 3, 30_000);
  const at = (line: string) => Date.parse(line.split(' ')[0] ?? '');
  const [first, third] = [at(relapses()[0]!), at(relapses()[2]!)];
  const between = daemon.log().split('\n').filter((l) => l.includes(' repaired ') && at(l) > first && at(l) < third).length;
  t.true(third - first >= 6000, `the backoff doubled: ${third - first} ms from the first relapse to the third`);
  t.true(between <= 2, `${between} repairs in those ${Math.round((third - first) / 1000)} s with a check every second: backed off, not a loop`);
  t.regex(daemon.log(), /broken again right after its repair: backing off .*missing="address 10\.231\.99\.\d+\/24 on eth0" relapses=\d+ retryInMs=\d+ why="the container changes its own network \(it holds NET_ADMIN\?\)"/);
  await sh('docker', ['rm', '-f', c]);
  await waitFor('unwired', async () => JSON.parse((await dockcni(['ls', '-o', 'json', ...d.flags])).stdout).length === 0);
  await daemon.stop();
  await assertNoLeftovers(t, d, net, [c]);
});

test('with --check-interval 0 nothing checks until SIGHUP, which checks at once: an address flushed inside the container, its host veth deleted and dockcni\'s CNI-ADMIN rule deleted are each repaired, with the same address', async (t) => {
  const d = await dirs(t);
  const net = await bridgeNetwork(t, d.confDir, d.root, 94, [{ type: 'portmap', capabilities: { portMappings: true }, snat: true }], true);
  const daemon = await startDaemon(t, d, ['--check-interval', '0']);
  const a = await container(t, ['--network', 'none', '-l', `dockcni.networks=${net.name}`, '-l', 'dockcni.ports=18194:80'], ['httpd', '-f', '-p', '80', '-h', '/etc']);
  const b = await container(t, ['--network', 'none', '-l', `dockcni.networks=${net.name}`]);
  const [addressA, addressB] = [await waitFor('a wired', () => addressOf(a)), await waitFor('b wired', () => addressOf(b))];
  const pidOf = async (id: string) => (await sh('docker', ['inspect', '-f', '{{.State.Pid}}', id])).stdout.trim();
  let probe = 184;
  /** Breaks one thing, sends SIGHUP, and waits for the repair the log names. */
  const repairedAfterSighup = async (what: string, missing: RegExp, breakIt: () => Promise<void>) => {
    const before = repairsLogged(daemon);
    await breakIt();
    t.is(repairsLogged(daemon), before, `${what}: no check runs by itself with --check-interval 0`);
    process.kill(daemon.process.pid!, 'SIGHUP');
    await waitFor(`${what}: repaired after SIGHUP`, async () => repairsLogged(daemon) > before, 20_000).catch((error: unknown) => { t.log(daemon.log()); throw error; });
    t.regex(daemon.log().split('\n').filter((l) => l.includes('repaired')).at(-1) ?? '', missing, what);
    t.true(await waitFor(`${what}: a reaches b`, () => pingFrom(a, addressB), 20_000), what);
    t.is(await addressOf(a), addressA, `${what}: a keeps its address`);
    t.is(await addressOf(b), addressB, `${what}: b keeps its address`);
    t.regex(await httpFromOtherHost(t, 18194, probe++), /^HTTP\/1\.[01] 200/, `${what}: the port mapping answers`);
  };
  await repairedAfterSighup('an address flushed inside the container', new RegExp(`missing="address ${addressB.replace(/\./g, '\\.')}/24 on eth0"`), async () => {
    await sh('nsenter', ['-t', await pidOf(b), '-n', 'ip', 'addr', 'flush', 'dev', 'eth0']);
  });
  await repairedAfterSighup('its host veth deleted', /missing="interface eth0 in the container; host link veth\w+"/, async () => {
    // The peer's index from inside (sysfs under nsenter would show the host's own eth0), and only a
    // link on the test's bridge is ever deleted.
    const peer = /eth0@if(\d+):/.exec((await sh('nsenter', ['-t', await pidOf(b), '-n', 'ip', '-o', 'link', 'show', 'eth0'])).stdout)?.[1];
    const veth = (await hostVethsOn(net.bridge)).find((l) => l.startsWith(`${peer}: veth`))?.split(':')[1]?.trim().split('@')[0];
    t.truthy(veth, 'b\'s veth on the test\'s bridge');
    await sh('ip', ['link', 'del', veth!]);
  });
  await repairedAfterSighup('dockcni\'s CNI-ADMIN rule deleted', new RegExp(`missing="dockcni's port-mapped rule for ${addressA.replace(/\./g, '\\.')} \\(filter\\)"`), async () => {
    const rule = (await sh('iptables-save', ['-t', 'filter'])).stdout.split('\n').find((l) => l.startsWith('-A CNI-ADMIN') && l.includes(a));
    t.truthy(rule);
    await sh('sh', ['-c', `iptables -w ${rule!.replace(/^-A /, '-D ')}`]);
  });
  await sh('docker', ['rm', '-f', a, b]);
  await waitFor('unwired', async () => JSON.parse((await dockcni(['ls', '-o', 'json', ...d.flags])).stdout).length === 0);
  await daemon.stop();
  await assertNoLeftovers(t, d, net, [a, b]);
});
