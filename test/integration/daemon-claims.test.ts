import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { BIN, FIXTURE_PLUGINS, tempDir } from '../helpers/fixtures.js';
import { bridgeNetwork, hostTest, netns, reservations, sh } from '../helpers/host.js';
import { addressOf, container, dirs, pingFrom, startDaemon, waitFor } from '../helpers/docker.js';

const test = hostTest();

interface Call { phase: string; command: string; env: Record<string, string> }
const calls = async (record: string): Promise<Call[]> => (await readFile(record, 'utf8').catch(() => ''))
  .split('\n').filter(Boolean).map((l) => JSON.parse(l) as Call);
const record = async (d: { root: string }, id: string) => JSON.parse(await readFile(path.join(d.root, 'state/attachments', `${id}.json`), 'utf8')) as { networks: { state: string }[] };

test('a daemon SIGKILLed in the middle of a chain: the next one DELs what was half done, then wires the container once', async (t) => {
  const d = await dirs(t);
  const calls_ = path.join(d.root, 'calls.jsonl');
  // bridge + host-local, then a plugin that takes 3 s: the kill lands between the two.
  const net = await bridgeNetwork(t, d.confDir, d.root, 61, [{ type: 'fixture', record: calls_, fixture: { holdMs: 3000 } }]);
  const first = await startDaemon(t, d);
  const c = await container(t, ['--network', 'none', '-l', `dockcni.networks=${net.name}`]);
  await waitFor('the slow plugin started', async () => (await calls(calls_)).some((x) => x.phase === 'start' && x.command === 'ADD'));
  t.deepEqual((await record(d, c)).networks.map((n) => n.state), ['adding'], 'the intent record says the chain is under way');
  t.is((await reservations(net)).length, 1, 'bridge and host-local already ran');
  await first.kill();
  await startDaemon(t, d);
  const ip = await waitFor('wired by the second daemon', () => addressOf(c));
  await waitFor('the record wired', async () => (await record(d, c)).networks.every((n) => n.state === 'wired'));
  const commands = (await calls(calls_)).filter((x) => x.phase === 'start').map((x) => x.command);
  t.deepEqual(commands.slice(-2), ['DEL', 'ADD'], 'the half-done attachment was DELeted before the new ADD');
  t.deepEqual(await reservations(net), [ip], 'one address, none leaked by the killed run');
  await sh('docker', ['rm', '-f', c]);
  await waitFor('unwired', async () => (await reservations(net)).length === 0);
});

test('SIGTERM: an ADD in flight finishes and is recorded before the daemon exits; --on-failure ignore leaves a failing container running', async (t) => {
  const d = await dirs(t);
  const calls_ = path.join(d.root, 'calls.jsonl');
  const net = await bridgeNetwork(t, d.confDir, d.root, 62, [{ type: 'fixture', record: calls_, fixture: { holdMs: 1500 } }]);
  const bad = await bridgeNetwork(t, d.confDir, d.root, 63, [{ type: 'fixture', fixture: { fail: { code: 7, msg: 'no such vlan' }, failOn: ['ADD'] } }]);
  const daemon = await startDaemon(t, d, ['--on-failure', 'ignore']);
  const failing = await container(t, ['--network', 'none', '-l', `dockcni.networks=${bad.name}`]);
  await waitFor('the failure logged', async () => daemon.log().includes('no such vlan'));
  t.is((await sh('docker', ['inspect', '-f', '{{.State.Running}}', failing])).stdout.trim(), 'true', '--on-failure ignore: still running');
  t.notRegex(daemon.log(), /stopping container|killing container/);
  const c = await container(t, ['--network', 'none', '-l', `dockcni.networks=${net.name}`]);
  await waitFor('the slow plugin started', async () => (await calls(calls_)).some((x) => x.phase === 'start' && x.command === 'ADD'));
  await daemon.stop();
  t.is(daemon.process.exitCode, 0);
  t.regex(daemon.log(), new RegExp(`wired container=\\S+ id=${c.slice(0, 12)}[\\s\\S]*stopped`));
  t.deepEqual((await record(d, c)).networks.map((n) => n.state), ['wired']);
  t.truthy(await addressOf(c), 'the container keeps its networking after the daemon is gone');
  const second = await startDaemon(t, d, ['--on-failure', 'ignore']);
  await sh('docker', ['rm', '-f', c, failing]);
  await waitFor('unwired', async () => (await readdir(path.join(d.root, 'state/attachments'))).length === 0);
  t.regex(second.log(), new RegExp(`unwired .*id=${c.slice(0, 12)}`), 'the second daemon unwired the container the first one left wired');
});

test('the bandwidth label through the daemon shapes the container\'s traffic; gc while the daemon runs removes nothing live', async (t) => {
  const d = await dirs(t);
  const net = await bridgeNetwork(t, d.confDir, d.root, 64, [{ type: 'bandwidth', capabilities: { bandwidth: true } }]);
  const daemon = await startDaemon(t, d, ['--trace']);
  const a = await container(t, ['--network', 'none', '-l', `dockcni.networks=${net.name}`, '-l', 'dockcni.bandwidth=ingressRate=8M,egressRate=4M']);
  const b = await container(t, ['--network', 'none', '-l', `dockcni.networks=${net.name}`]);
  const ipA = await waitFor('a wired', () => addressOf(a));
  await waitFor('b wired', () => addressOf(b));
  t.regex(daemon.log(), /── ADD bandwidth \(\/usr\/lib\/cni\/bandwidth\) ──[\s\S]*"ingressRate": 8000000/, '--trace on the daemon shows each call');
  // The container's own devices, not the host's: its host-side veth (the peer of its eth0) and the ifb its ingress is mirrored to.
  const vethOf = async (id: string) => {
    const index = (await sh('docker', ['exec', id, 'cat', '/sys/class/net/eth0/iflink'])).stdout.trim();
    return new RegExp(`^${index}: ([^:@]+)`, 'm').exec((await sh('ip', ['-o', 'link'])).stdout)?.[1] ?? '';
  };
  const [vethA, vethB] = [await vethOf(a), await vethOf(b)];
  t.regex((await sh('tc', ['qdisc', 'show', 'dev', vethA])).stdout, /tbf .* rate 8Mbit/, 'ingress shaping on a\'s host-side veth');
  t.notRegex((await sh('tc', ['qdisc', 'show', 'dev', vethB])).stdout, /tbf/, 'none on b\'s, which asked for none');
  const ifb = /mirred \(Egress Redirect to device (bwp\w+)\)/.exec((await sh('tc', ['filter', 'show', 'dev', vethA, 'ingress'])).stdout)?.[1] ?? '';
  t.regex(ifb, /^bwp/, 'a\'s egress is redirected to an ifb device of its own');
  t.regex((await sh('tc', ['qdisc', 'show', 'dev', ifb])).stdout, /tbf .* rate 4Mbit/, 'egress shaping on that ifb device');
  const gc = await execa('node', [BIN, 'gc', ...d.flags]);
  t.is(gc.stdout.trim(), 'nothing to remove');
  t.true(await pingFrom(b, ipA), 'both still wired and talking after gc');
});

test('plugins run in their own process group: Ctrl-C on dockcni does not cut a plugin short', async (t) => {
  const dir = await tempDir(t);
  const confDir = path.join(dir, 'net.d');
  const calls_ = path.join(dir, 'calls.jsonl');
  const { mkdir, writeFile } = await import('node:fs/promises');
  await mkdir(confDir);
  await writeFile(path.join(confDir, 'slow.conflist'), JSON.stringify({ cniVersion: '1.0.0', name: 'slow', plugins: [{ type: 'fixture', record: calls_, fixture: { holdMs: 1500 } }] }));
  const ns = await netns(t);
  const cli = execa('node', [BIN, 'cni', 'add', 'slow', ns, '--container-id', 'ctrlc', '--conf-dir', confDir, '--cni-path', FIXTURE_PLUGINS, '--cache-dir', path.join(dir, 'cache'), '--run-dir', path.join(dir, 'run')],
    { reject: false, detached: true });
  await waitFor('the plugin started', async () => (await calls(calls_)).some((x) => x.phase === 'start'));
  // As a terminal does: SIGINT to the whole foreground process group of dockcni.
  process.kill(-(cli.pid ?? 0), 'SIGINT');
  const interrupted = await cli;
  t.is(interrupted.signal, 'SIGINT', 'dockcni itself was interrupted');
  await waitFor('the plugin to end', async () => (await calls(calls_)).some((x) => x.phase === 'end'));
  t.deepEqual((await calls(calls_)).map((x) => `${x.phase} ${x.command}`), ['start ADD', 'end ADD'], 'the plugin ran to its end');
});
