import { mkdir, readFile, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import Docker from 'dockerode';
import { execa } from 'execa';
import { BIN } from '../helpers/fixtures.js';
import { BUSYBOX_IMAGE, bridgeNetwork, hostTest, sh, uid, type TestNetwork } from '../helpers/host.js';
import { addressOf, container, dirs, sleep, startDaemon, waitFor, type Dirs, type RunningDaemon } from '../helpers/docker.js';
import { checkInvariants } from '../helpers/invariants.js';

/**
 * The bad-input catalogue: every case goes to one running daemon next to a healthy container, and each
 * must end with a log line naming the bad value and the fix, the daemon alive, the healthy container
 * still wired, and nothing leaked (the invariant checker).
 */
const test = hostTest();

interface LogLine { level: string; msg: string; id?: string; error?: string; fix?: string }

interface Scene {
  readonly d: Dirs;
  readonly daemon: RunningDaemon;
  /** Label on every container of the scene: what the invariant checker looks at. */
  readonly label: string;
  readonly networks: TestNetwork[];
  readonly good: TestNetwork;
  readonly healthy: string;
}

interface Case {
  readonly name: string;
  /** dockcni.networks defaults to the scene's good network. */
  readonly labels: Readonly<Record<string, string>>;
  readonly error: RegExp;
  readonly fix: RegExp;
}

const lines = (daemon: RunningDaemon): LogLine[] => daemon.log().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as LogLine);

/** A daemon (JSON logs, no retries, --on-failure kill) and a healthy container at .50 of the good network. */
async function scene(t: ExecutionContext, octet: number, before?: (d: Dirs) => Promise<TestNetwork[]>, flags: (good: TestNetwork) => string[] = () => []): Promise<Scene> {
  const d = await dirs(t);
  const good = await bridgeNetwork(t, d.confDir, d.root, octet);
  const others = before ? await before(d) : [];
  const daemon = await startDaemon(t, d, ['--log-format', 'json', '--debug', '--retries', '0', '--on-failure', 'kill', '--timeout', '4', ...flags(good)]);
  const label = `catalogue=${uid('')}`;
  const healthy = await container(t, ['--network', 'none', '-l', label, '-l', `dockcni.networks=${good.name}`, '-l', `dockcni.ip=10.231.${octet}.50`]);
  await waitFor('the healthy container wired', () => addressOf(healthy));
  return { d, daemon, label, networks: [good, ...others], good, healthy };
}

/** The invariants once the daemon has finished with the case (DEL after a failure takes a moment), or what still breaks them after 15 s. */
async function settled(s: Scene): Promise<string[]> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const violations = await checkInvariants(s.d, s.networks, s.label);
    if (violations.length === 0 || Date.now() > deadline) return violations;
    await sleep(100);
  }
}

async function stillFine(t: ExecutionContext, s: Scene, name: string): Promise<void> {
  t.is(s.daemon.process.exitCode, null, `${name}: the daemon is alive`);
  t.deepEqual(await settled(s), [], `${name}: invariants (healthy container wired, nothing leaked)`);
}

async function running(id: string): Promise<boolean> {
  return (await sh('docker', ['inspect', '-f', '{{.State.Running}}', id])).stdout.trim() === 'true';
}

/** The case's container is refused: killed by policy, with one error line naming the value and the fix. */
async function refused(t: ExecutionContext, s: Scene, c: Case, start?: (labels: Record<string, string>) => Promise<string>): Promise<void> {
  const labels: Record<string, string> = { 'dockcni.networks': s.good.name, ...c.labels };
  labels[s.label.split('=')[0]!] = s.label.split('=')[1]!;
  const id = start ? await start(labels) : await container(t, ['--network', 'none', ...Object.entries(labels).flatMap(([k, v]) => ['-l', `${k}=${v}`])]);
  await waitFor(`${c.name}: the container killed by policy`, async () => !(await running(id)));
  const said = lines(s.daemon).find((l) => l.level === 'error' && l.id === id.slice(0, 12));
  t.truthy(said, `${c.name}: an error line for the container`);
  t.regex(said?.error ?? '', c.error, `${c.name}: names the value`);
  t.regex(said?.fix ?? '', c.fix, `${c.name}: says the fix`);
  await stillFine(t, s, c.name);
}

const long = 'x'.repeat(5000);

const labelCases = (good: string, forbidden: string): Case[] => [
  { name: 'invalid address', labels: { 'dockcni.ip': '10.0.0.300' }, error: /"10\.0\.0\.300" is not an IP address/, fix: /write addresses as 10\.1\.0\.5/ },
  { name: 'address outside the range', labels: { 'dockcni.ip': '192.168.77.5' }, error: /"192\.168\.77\.5": outside the network's range 10\.231\.80\.0\/24/, fix: /pick an address inside 10\.231\.80\.0\/24/ },
  { name: 'address in use', labels: { 'dockcni.ip': '10.231.80.50' }, error: /"10\.231\.80\.50": already held by container dc/, fix: /pick another address/ },
  { name: 'port 0', labels: { 'dockcni.ports': '0:80' }, error: /"0:80": port 0 is outside 1-65535/, fix: /ports from 1 to 65535/ },
  { name: 'port 65536', labels: { 'dockcni.ports': '65536:80' }, error: /port 65536 is outside 1-65535/, fix: /ports from 1 to 65535/ },
  { name: 'port a:b', labels: { 'dockcni.ports': 'a:b' }, error: /port "a" is not a number/, fix: /HOSTPORT:CONTAINERPORT/ },
  { name: 'port range', labels: { 'dockcni.ports': '8080-8081:80' }, error: /"8080-8081" is not a number \(ranges are not supported\)/, fix: /HOSTPORT:CONTAINERPORT/ },
  { name: 'unknown protocol', labels: { 'dockcni.ports': '80:80/icmp' }, error: /unknown protocol "icmp"/, fix: /tcp, udp or sctp/ },
  { name: 'CNI_ARGS ";" smuggling an identity key', labels: { 'dockcni.args': 'A=1;K8S_POD_NAME=admin' }, error: /K8S_POD_NAME is set by dockcni/, fix: /remove K8S_POD_NAME/ },
  { name: 'CNI_ARGS "=" inside a value', labels: { 'dockcni.args': 'A=b=c' }, error: /"A=b=c": a value must be/, fix: /remove the separator/ },
  { name: 'CNI_ARGS newline', labels: { 'dockcni.args': 'A=1\nK8S_POD_NAMESPACE=kube-system' }, error: /"A=1\\nK8S_POD_NAMESPACE=kube-system": a value must be/, fix: /remove the separator/ },
  { name: 'CNI_ARGS NUL', labels: { 'dockcni.args': 'A=1\0B=2' }, error: /"A=1\\u0000B=2": a value must be/, fix: /remove the separator/ },
  { name: 'network name with "/"', labels: { 'dockcni.networks': 'a/b' }, error: /network name "a\/b" is invalid/, fix: /dockcni networks ls/ },
  { name: 'network name ".."', labels: { 'dockcni.networks': '..' }, error: /network name "\.\." is invalid/, fix: /dockcni networks ls/ },
  { name: 'unknown network', labels: { 'dockcni.networks': 'nosuchnet' }, error: /no network named "nosuchnet" in /, fix: /add a \.conflist with "name": "nosuchnet"/ },
  { name: 'network outside --allow-networks', labels: { 'dockcni.networks': forbidden }, error: new RegExp(`network ${forbidden} is not allowed on this host`), fix: new RegExp(`ask for one of: ${good}`) },
  { name: 'oversize value', labels: { 'dockcni.args': `A=${long}` }, error: /longer than 4096 characters/, fix: /shorten it/ },
  { name: 'too many networks', labels: { 'dockcni.networks': Array.from({ length: 17 }, (_, i) => `n${i}`).join(',') }, error: /more than 16 networks/, fix: /at most 16/ },
  { name: 'network listed twice', labels: { 'dockcni.networks': `${good},${good}` }, error: new RegExp(`network ${good} is listed twice`), fix: /list each network once/ },
  { name: 'option for a network not asked for', labels: { 'dockcni.ip.other': '10.1.0.5' }, error: /network "other" is not in dockcni\.networks/, fix: /add it to dockcni\.networks/ },
  { name: 'multicast MAC', labels: { 'dockcni.mac': '01:00:5e:00:00:01' }, error: /"01:00:5e:00:00:01": a multicast MAC/, fix: /even first octet/ },
  { name: 'bandwidth not a number', labels: { 'dockcni.bandwidth': 'ingressRate=fast' }, error: /ingressRate value "fast" is not a number/, fix: /ingressRate=10M/ },
  { name: 'unknown dockcni label', labels: { 'dockcni.ipp': '1.2.3.4' }, error: /dockcni\.ipp "1\.2\.3\.4": unknown dockcni label/, fix: /dockcni\.networks or dockcni\.\{ip,mac,ports,bandwidth,args,aliases\}/ },
];

/** Starts a container through the Docker API: a NUL cannot travel in a command-line argument. */
function viaApi(t: ExecutionContext) {
  return async (labels: Record<string, string>): Promise<string> => {
    const docker = new Docker();
    const created = await docker.createContainer({ name: uid('dc'), Image: BUSYBOX_IMAGE, Cmd: ['sleep', '600'], Labels: labels, HostConfig: { NetworkMode: 'none' } });
    t.teardown(async () => { await created.remove({ force: true }).catch(() => undefined); });
    await created.start();
    return created.id;
  };
}

test('bad labels: each refused with the value and the fix; the daemon and the healthy container carry on', async (t) => {
  let forbidden: TestNetwork | undefined;
  const s = await scene(t, 80, async (d) => [forbidden = await bridgeNetwork(t, d.confDir, d.root, 81)], (good) => ['--allow-networks', `${good.name},nosuchnet`]);
  const cases = labelCases(s.good.name, forbidden!.name);
  for (const c of cases) await refused(t, s, c, c.name === 'CNI_ARGS NUL' ? viaApi(t) : undefined);
  t.log(`${cases.length} label cases`);
});

const fixtureNetwork = async (t: ExecutionContext, d: Dirs, octet: number) => bridgeNetwork(t, d.confDir, d.root, octet, [{ type: 'fixture', fixture: {} }]);

/** Rewrites the fixture plugin's behaviour in the network's file; the daemon reads the conf dir per container. */
async function behave(d: Dirs, net: TestNetwork, fixture: Record<string, unknown>, record?: string): Promise<void> {
  const file = path.join(d.confDir, `50-${net.name}.conflist`);
  const conf = JSON.parse(await readFile(file, 'utf8')) as { plugins: { fixture?: unknown; record?: string }[] };
  conf.plugins[conf.plugins.length - 1] = { ...conf.plugins[conf.plugins.length - 1], fixture, ...(record === undefined ? {} : { record }) };
  await writeFile(file, JSON.stringify(conf));
}

const CODES: [number, RegExp, RegExp][] = [
  [1, /incompatible CNI version/, /set the network's cniVersion/],
  [2, /unsupported field in network configuration/, /remove the field/],
  [3, /container unknown or does not exist/, /start the container again/],
  [4, /invalid necessary environment variables/, /dockcni\.args label/],
  [5, /I\/O failure/, /disk space/],
  [6, /failed to decode content/, /dockcni networks validate/],
  [7, /invalid network configuration/, /correct the network config/],
  [11, /try again later/, /retried later/],
  [50, /plugin not available/, /not ready/],
  [51, /plugin not available, existing containers may have limited connectivity/, /not ready/],
];

test('failing plugins: every spec error code and every broken-protocol shape is reported, rolled back, and survived', async (t) => {
  let plug: TestNetwork | undefined;
  const s = await scene(t, 82, async (d) => [plug = await fixtureNetwork(t, d, 83)]);
  const cases: (Case & { fixture: Record<string, unknown> })[] = [
    ...CODES.map(([code, meaning, fix]) => ({
      name: `CNI error code ${code}`, labels: {}, fixture: { fail: { code, msg: `case ${code}`, details: 'from the catalogue' }, failOn: ['ADD'] },
      error: new RegExp(`plugin "fixture" failed \\(ADD\\) \\[CNI code ${code}: ${meaning.source}\\]: case ${code} \\(from the catalogue\\)`), fix,
    })),
    { name: 'garbage on stdout', labels: {}, fixture: { stdout: 'this is no JSON', exit: 1, failOn: ['ADD'] }, error: /its output is not JSON: "this is no JSON"/, fix: /broke the CNI protocol/ },
    { name: 'exit 0 with garbage', labels: {}, fixture: { stdout: '{"cniVersion":', failOn: ['ADD'] }, error: /result is not JSON/, fix: /broke the CNI protocol/ },
    { name: 'crash', labels: {}, fixture: { signal: 'SIGKILL', failOn: ['ADD'] }, error: /killed by SIGKILL/, fix: /the plugin crashed/ },
    { name: 'hang', labels: {}, fixture: { sleepMs: 60_000, failOn: ['ADD'] }, error: /did not finish within 4 s and was killed/, fix: /raise --timeout/ },
    { name: 'huge output', labels: {}, fixture: { stdout: 'x'.repeat(1024), repeat: 8192, failOn: ['ADD'] }, error: /printed more output than any result needs/, fix: /broke the CNI protocol/ },
    { name: 'ADD exits 0 with no result', labels: {}, fixture: { stdout: '', failOn: ['ADD'] }, error: /plugin "fixture" failed \(ADD\): exited 0 but printed no result/, fix: /broke the CNI protocol/ },
  ];
  for (const c of cases) {
    await behave(s.d, plug!, c.fixture);
    await refused(t, s, { ...c, labels: { 'dockcni.networks': plug!.name } });
  }
  t.log(`${cases.length} plugin cases`);
});

test('broken config files: each named with its reason, never hiding the other networks', async (t) => {
  const names = ['badjson', 'badtype', 'badver', 'huge', 'fifo', 'loop'];
  let dup: TestNetwork | undefined;
  const s = await scene(t, 84, async (d) => {
    const file = (n: string) => path.join(d.confDir, `60-${n}.conflist`);
    await writeFile(file('badjson'), '{"cniVersion": "1.0.0", "name": "badjson", "plugins": [');
    await writeFile(file('badtype'), JSON.stringify({ cniVersion: '1.0.0', name: 'badtype', plugins: [{ type: 42 }] }));
    await writeFile(file('badver'), JSON.stringify({ cniVersion: '9.9.9', name: 'badver', plugins: [{ type: 'bridge' }] }));
    await writeFile(file('huge'), JSON.stringify({ cniVersion: '1.0.0', name: 'huge', plugins: [{ type: 'bridge', pad: 'x'.repeat(2 * 1024 * 1024) }] }));
    await sh('mkfifo', [file('fifo')]);
    await symlink(file('loop'), file('loop'));
    // Two files, one name: the first in libcni's order wins, the other is reported as shadowed.
    dup = await bridgeNetwork(t, d.confDir, d.root, 85);
    const loser = JSON.parse(await readFile(path.join(d.confDir, `50-${dup.name}.conflist`), 'utf8')) as { plugins: { bridge: string }[] };
    loser.plugins[0]!.bridge = 'dcbr-never';
    await writeFile(path.join(d.confDir, `90-${dup.name}.conflist`), JSON.stringify(loser));
    return [dup];
  });
  const reasons: Record<string, RegExp> = {
    badjson: /60-badjson\.conflist: [^;]*JSON/,
    badtype: /60-badtype\.conflist: [^;]*type/,
    badver: /60-badver\.conflist: [^;]*9\.9\.9/,
    huge: /60-huge\.conflist: file is \d+ bytes, over the 1048576-byte limit/,
    fifo: /60-fifo\.conflist: not a regular file/,
    loop: /60-loop\.conflist: cannot read: symlink loop/,
  };
  for (const n of names) {
    await refused(t, s, { name: `config ${n}`, labels: { 'dockcni.networks': n }, error: reasons[n]!, fix: /correct it \(`dockcni networks validate`\)/ });
  }
  const warned = lines(s.daemon).filter((l) => l.msg === 'unusable network config').map((l) => l.error ?? '');
  for (const n of names) t.true(warned.some((w) => reasons[n]!.test(w)), `the daemon warned about ${n} at start`);
  t.true(lines(s.daemon).some((l) => l.msg === `network ${dup!.name} is defined twice; the first file wins`), 'the shadowed file is reported');

  const twin = await container(t, ['--network', 'none', '-l', s.label, '-l', `dockcni.networks=${dup!.name}`]);
  t.regex(await waitFor('the duplicate-named network wires from its first file', () => addressOf(twin)) ?? '', /^10\.231\.85\./);
  await stillFine(t, s, 'two files, one name');

  // A file changing between ADD and DEL: DEL runs from the cached config, so nothing leaks.
  const changing = path.join(s.d.confDir, `50-${dup!.name}.conflist`);
  await writeFile(changing, '{ not a config any more');
  await rm(path.join(s.d.confDir, `90-${dup!.name}.conflist`));
  await sh('docker', ['rm', '-f', twin]);
  await stillFine(t, s, 'file changed between ADD and DEL');

  const fresh = await container(t, ['--network', 'none', '-l', s.label, '-l', `dockcni.networks=${s.good.name}`]);
  t.regex(await waitFor('a new container on the good network, next to six broken files', () => addressOf(fresh)), /^10\.231\./);
  await stillFine(t, s, 'good network amid broken files');
  await Promise.all(names.map((n) => unlink(path.join(s.d.confDir, `60-${n}.conflist`))));
});

test('Docker cases: gone before inspect, PID 0, restarted mid-ADD, Docker unreachable', async (t) => {
  let plug: TestNetwork | undefined;
  const s = await scene(t, 86, async (d) => [plug = await fixtureNetwork(t, d, 87)]);
  const pid = s.daemon.process.pid!;
  const run = (labels: string[], command: string[] = ['sleep', '600']) => container(t, ['--network', 'none', '-l', s.label, ...labels.flatMap((l) => ['-l', l])], command);
  const debugFor = (id: string) => waitFor(`the daemon to see ${id.slice(0, 12)} gone`, async () => lines(s.daemon).some((l) => l.id === id.slice(0, 12) && l.msg === 'not running any more; nothing to wire'));

  // Frozen, the daemon reads the start event only after the container is gone (or stopped).
  process.kill(pid, 'SIGSTOP');
  let gone: string;
  let exited: string;
  try {
    gone = await run([`dockcni.networks=${s.good.name}`]);
    await sh('docker', ['rm', '-f', gone]);
    exited = await run([`dockcni.networks=${s.good.name}`]);
    await sh('docker', ['stop', '-t', '0', exited]);
  } finally {
    // A failure above must not leave a stopped daemon behind.
    process.kill(pid, 'SIGCONT');
  }
  t.true(await debugFor(gone), 'container gone between event and inspect');
  t.true(await debugFor(exited), 'container with PID 0');
  t.false(lines(s.daemon).some((l) => l.level === 'error'), 'neither is an error');
  await stillFine(t, s, 'gone / PID 0');

  // Restarted while its ADD hangs: the old incarnation's attachment is DELeted, the new one wired once.
  const hold = path.join(s.d.root, 'hold-add');
  await writeFile(hold, '');
  await behave(s.d, plug!, { hangIfExists: hold, hangMs: 2500 }, path.join(s.d.root, 'calls.jsonl'));
  const restarted = await run([`dockcni.networks=${plug!.name}`]);
  await waitFor('its ADD to be under way', async () => (await readFile(path.join(s.d.root, 'calls.jsonl'), 'utf8').catch(() => '')).includes('"ADD"'));
  const firstPid = (await sh('docker', ['inspect', '-f', '{{.State.Pid}}', restarted])).stdout.trim();
  await sh('docker', ['restart', '-t', '0', restarted]);
  await unlink(hold);
  await waitFor('the new incarnation wired', async () => (await addressOf(restarted)) && (await settled(s)).length === 0, 30_000);
  t.not((await sh('docker', ['inspect', '-f', '{{.State.Pid}}', restarted])).stdout.trim(), firstPid);
  t.is((await readFile(path.join(plug!.ipamDir, plug!.name, (await addressOf(restarted))!), 'utf8')).split(/\r?\n/)[0], restarted, 'one reservation, of the live container');
  await stillFine(t, s, 'restarted mid-ADD');

  // Docker unreachable: a second daemon pointed at a socket nobody serves keeps retrying and says why.
  const other = await dirs(t);
  await mkdir(path.join(other.root, 'sock'));
  const nowhere = `unix://${path.join(other.root, 'sock', 'docker.sock')}`;
  const lost = execa('node', [BIN, 'daemon', ...other.flags, '--log-format', 'json', '--docker-host', nowhere], { reject: false, all: true });
  let output = '';
  lost.all?.on('data', (chunk: Buffer) => { output += chunk.toString(); });
  await waitFor('two failed attempts', async () => output.split('\n').filter((l) => l.includes('Docker unavailable; retrying')).length >= 2);
  const line = JSON.parse(output.split('\n').find((l) => l.includes('Docker unavailable'))!) as LogLine;
  t.regex(line.error ?? '', new RegExp(`cannot reach the Docker daemon at ${nowhere.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
  t.regex(line.fix ?? '', /start dockerd, or point --docker-host/);
  t.is(lost.exitCode, null, 'still alive, retrying');
  lost.kill('SIGTERM');
  t.is((await lost).exitCode, 0);
  await stillFine(t, s, 'Docker unreachable');
});

test('a corrupt attachment record: reconcile DELs from the cache and re-wires; nothing leaks, the daemon carries on', async (t) => {
  const s = await scene(t, 88);
  const before = await waitFor('wired', () => addressOf(s.healthy));
  await writeFile(path.join(s.d.root, 'state/attachments', `${s.healthy}.json`), '{"containerId": "trunc');
  await s.daemon.stop();
  const daemon = await startDaemon(t, s.d, ['--log-format', 'json']);
  const again = { ...s, daemon };
  // The address never left the container: what proves the re-wiring is the daemon's own line, and a
  // record that parses again, in the wired state.
  await waitFor('re-wired', async () => daemon.log().split('\n').some((l) => l.includes('"msg":"wired"') && l.includes(s.healthy.slice(0, 12))));
  const record = JSON.parse(await readFile(path.join(s.d.root, 'state/attachments', `${s.healthy}.json`), 'utf8')) as { networks: { state: string; addresses: string[] }[] };
  t.deepEqual(record.networks.map((n) => n.state), ['wired']);
  t.is(await addressOf(s.healthy), before, 'the static address comes back');
  await stillFine(t, again, 'corrupt record');
  const gc = await execa('node', [BIN, 'gc', '--dry-run', ...s.d.flags], { reject: false });
  t.is(gc.exitCode, 0, gc.stderr);
  t.notRegex(gc.stdout, /not valid JSON/, 'nothing left for gc');
  // Removed while this daemon runs (its teardown would stop it first): its DEL is the product's to do.
  await sh('docker', ['rm', '-f', s.healthy]);
  await waitFor('the record gone with its container', async () => !existsSync(path.join(s.d.root, 'state/attachments', `${s.healthy}.json`)));
});
