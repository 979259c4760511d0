import { createServer } from 'node:net';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { BIN, FIXTURE_PLUGINS, tempDir } from '../helpers/fixtures.js';
import { BUSYBOX_IMAGE, bridgeNetwork, dockcni, hostTest, netns, PAUSE_IMAGE, PLUGIN_DIR, reservations, rulesMentioning, sh, uid } from '../helpers/host.js';
import { addressOf, container, dirs, startDaemon, waitFor } from '../helpers/docker.js';

const test = hostTest();

/** A 1.1.0 network of the recording fixture plugin: no real link is ever touched through it. */
async function fixtureNetwork(confDir: string, record: string, name = 'fx'): Promise<string> {
  await mkdir(confDir, { recursive: true });
  await writeFile(path.join(confDir, `10-${name}.conflist`), JSON.stringify({ cniVersion: '1.1.0', name, plugins: [{ type: 'fixture', record }] }));
  await writeFile(record, '', { flag: 'a' });
  return name;
}

const recorded = async (record: string) => (await readFile(record, 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as { phase: string; command: string; env: Record<string, string>; stdin: Record<string, unknown> }).filter((c) => c.phase === 'start');

test('cni add refuses an interface name that already exists in the netns; the link and its peer stay', async (t) => {
  const dir = await tempDir(t);
  const confDir = path.join(dir, 'net.d');
  const net = await bridgeNetwork(t, confDir, dir, 41);
  const ns = await netns(t);
  await sh('ip', ['-n', ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'peer0']);
  const common = ['--conf-dir', confDir, '--cni-path', PLUGIN_DIR, '--cache-dir', path.join(dir, 'cache'), '--run-dir', path.join(dir, 'run')];
  const added = await dockcni(['cni', 'add', net.name, ns, '--container-id', 'hard1', ...common], { reject: false });
  t.is(added.exitCode, 1);
  t.regex(added.stderr, /interface eth0 already exists in \/var\/run\/netns\/dct/);
  const links = (await sh('ip', ['-n', ns, '-o', 'link'])).stdout;
  t.regex(links, /\beth0@peer0\b/, 'the pre-existing eth0 is still there');
  t.regex(links, /\bpeer0@eth0\b/, 'and so is its peer');
  t.deepEqual(await reservations(net), [], 'no plugin ran: nothing reserved');
});

test('no plugin runs in the host\'s own netns, for ADD, CHECK or DEL', async (t) => {
  const dir = await tempDir(t);
  const confDir = path.join(dir, 'net.d');
  const record = path.join(dir, 'calls.jsonl');
  const net = await fixtureNetwork(confDir, record);
  const common = ['--conf-dir', confDir, '--cni-path', FIXTURE_PLUGINS, '--cache-dir', path.join(dir, 'cache'), '--ifname', 'dctnohost0'];
  // The host's netns as dockcni sees it, and pinned under another name (as a reused pid would pin it).
  const pin = path.join(dir, 'pin');
  await writeFile(pin, '');
  await sh('mount', ['--bind', '/proc/self/ns/net', pin]);
  t.teardown(async () => { await sh('umount', [pin], { reject: false }); });
  for (const target of ['/proc/self/ns/net', pin]) {
    for (const command of ['add', 'check', 'del']) {
      const r = await dockcni(['cni', command, net, target, '--container-id', 'hosttest', ...common], { reject: false });
      t.is(r.exitCode, 1, `${command} ${target}`);
      t.regex(r.stderr, /it is the host's own network namespace/, `${command} ${target}`);
    }
  }
  t.deepEqual(await recorded(record), [], 'the fixture plugin was never called');
});

test('container ids and interface names are checked before any file is named after them', async (t) => {
  const dir = await tempDir(t);
  const confDir = path.join(dir, 'net.d');
  const record = path.join(dir, 'calls.jsonl');
  const net = await fixtureNetwork(confDir, record);
  const ns = await netns(t);
  const common = ['--conf-dir', confDir, '--cni-path', FIXTURE_PLUGINS, '--cache-dir', path.join(dir, 'cache'), '--run-dir', path.join(dir, 'run')];
  for (const [flag, value, message] of [
    ['--container-id', '../../x', /invalid container id "\.\.\/\.\.\/x"/], ['--ifname', 'a/b', /invalid interface name "a\/b"/],
    ['--ifname', 'averylonginterfacename', /longer than 15 characters/], ['--ifname', '..', /not a link name/],
  ] as const) {
    const r = await dockcni(['cni', 'add', net, ns, flag, value, ...common], { reject: false });
    t.is(r.exitCode, 1);
    t.regex(r.stderr, message);
  }
  t.deepEqual(await recorded(record), []);
  t.deepEqual(await readdir(dir).then((names) => names.sort()), ['calls.jsonl', 'net.d'], 'no cache, lock or stray file anywhere');
});

test('the daemon refuses a labelled container on Docker\'s bridge: its own eth0 is untouched, no plugin runs', async (t) => {
  const d = await dirs(t);
  const net = await bridgeNetwork(t, d.confDir, d.root, 45);
  const daemon = await startDaemon(t, d, ['--on-failure', 'ignore']);
  const bridged = await container(t, ['-l', `dockcni.networks=${net.name}`]);
  const before = await waitFor('its Docker address', () => addressOf(bridged));
  await waitFor('the refusal', async () => daemon.log().includes('network mode'));
  t.regex(daemon.log(), /wiring failed .*uses network mode \\?"default\\?", not \\?"none\\?".*fix=.*--network none/);
  t.is((daemon.log().match(/wiring failed/g) ?? []).length, 1, 'refused once, not retried');
  t.is(await addressOf(bridged), before, 'Docker\'s eth0 keeps its address');
  t.deepEqual(await reservations(net), []);
  const joined = await container(t, ['--network', `container:${bridged}`, '-l', `dockcni.networks=${net.name}`]);
  await waitFor('the second refusal', async () => (daemon.log().match(/wiring failed/g) ?? []).length === 2);
  t.regex(daemon.log(), new RegExp(`network mode \\\\?"container:${bridged}`));
  t.is(await addressOf(bridged), before);
  t.is(await addressOf(joined), before, 'the joined container sees Docker\'s eth0 of the one it joined, nothing of dockcni\'s');
  t.deepEqual(await reservations(net), [], 'no plugin ran for it');
});

test('labels never make the daemon remove or DEL another container: a forged dockcni.sandbox naming a real run sandbox leaves it and its app wired', async (t) => {
  const d = await dirs(t);
  const net = await bridgeNetwork(t, d.confDir, d.root, 43);
  const daemon = await startDaemon(t, d);
  // A real `run` app and its sandbox: the kind of container whose removal a forger would want.
  const app = (await execa('node', [BIN, 'run', ...d.flags, '--sandbox-image', PAUSE_IMAGE, '--dockcni-quiet', '-d', '--network', net.name, BUSYBOX_IMAGE, 'sleep', '600'])).stdout.trim().split('\n').at(-1) ?? '';
  t.teardown(async () => { await sh('docker', ['rm', '-f', app], { reject: false }); });
  const sandbox = (JSON.parse((await dockcni(['ls', '-o', 'json', ...d.flags])).stdout) as { containerId: string; origin: string }[]).find((r) => r.origin === 'run')?.containerId ?? '';
  t.regex(sandbox, /^[0-9a-f]{64}$/, 'run wired a sandbox');
  t.teardown(async () => { await sh('docker', ['rm', '-f', sandbox], { reject: false }); });
  const ip = await waitFor('the app has its address', () => addressOf(app));
  // The forger dies at once; its die names the sandbox as its own.
  const forger = uid('forger');
  await sh('docker', ['run', '--rm', '--name', forger, '--network', 'none', '-l', 'dockcni.role=app', '-l', `dockcni.sandbox=${sandbox}`, BUSYBOX_IMAGE, 'true']);
  // The daemon says when it has handled the forger's die and left the named sandbox alone.
  await waitFor('the forged label handled', async () => daemon.log().includes(`left alone the container its dockcni.sandbox label names: no run sandbox of this container`) && daemon.log().includes(`named=${sandbox}`));
  t.is((await sh('docker', ['inspect', '-f', '{{.State.Running}}', sandbox])).stdout.trim(), 'true', 'the sandbox still runs');
  t.is(await addressOf(app), ip, 'and the app keeps its address');
  t.notRegex(daemon.log(), /removed sandbox/);
  await sh('docker', ['rm', '-f', app]);
  await waitFor('the daemon removes the real app\'s sandbox', async () => /removed sandbox/.test(daemon.log()), 20_000);
});

test('a host port is handed out once: a second container and a host listener are refused, naming the holder', async (t) => {
  const d = await dirs(t);
  const net = await bridgeNetwork(t, d.confDir, d.root, 44);
  const daemon = await startDaemon(t, d, ['--on-failure', 'ignore']);
  const first = await container(t, ['--network', 'none', '-l', `dockcni.networks=${net.name}`, '-l', 'dockcni.ports=18441:80']);
  await waitFor('first wired', () => addressOf(first));
  const second = await container(t, ['--network', 'none', '-l', `dockcni.networks=${net.name}`, '-l', 'dockcni.ports=18441:80']);
  await waitFor('the refusal', async () => daemon.log().includes('18441/tcp is already taken'));
  t.regex(daemon.log(), new RegExp(`host port 18441/tcp is already taken by container ${(await sh('docker', ['inspect', '-f', '{{.Name}}', first])).stdout.trim().slice(1)}`));
  t.is(await addressOf(second), undefined, 'the second is not wired');
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(18442, '127.0.0.1', resolve));
  t.teardown(() => { server.close(); });
  await container(t, ['--network', 'none', '-l', `dockcni.networks=${net.name}`, '-l', 'dockcni.ports=18442:80']);
  await waitFor('the host listener named', async () => daemon.log().includes('18442/tcp is already taken'));
  t.regex(daemon.log(), new RegExp(`18442/tcp is already taken by pid ${process.pid} \\(node\\) on 127\\.0\\.0\\.1:18442/tcp`));
  t.is((await reservations(net)).length, 1, 'only the first holds an address');
});

test('other runtimes\' cache entries and stray files: gc and the daemon read them, never DEL or remove them', async (t) => {
  const d = await dirs(t);
  const record = path.join(d.root, 'calls.jsonl');
  const net = await fixtureNetwork(d.confDir, record);
  const results = path.join(d.root, 'cache/results');
  await mkdir(results, { recursive: true });
  // As libcni 1.1.2 writes it (no netns field), and what older or broken writers leave.
  const config = Buffer.from(JSON.stringify({ cniVersion: '1.1.0', name: net, plugins: [{ type: 'fixture', record }] })).toString('base64');
  // A CRI sandbox id as containerd names it (64 hex digits, like Docker's), under libcni's file name.
  const sandboxId = '3f'.repeat(32);
  const foreign = { kind: 'cniCacheV1', containerId: sandboxId, config, ifName: 'eth0', networkName: net, cniArgs: [['K8S_POD_NAMESPACE', 'default'], ['K8S_POD_NAME', 'web-0']], result: { cniVersion: '1.1.0', ips: [{ address: '10.1.0.9/24' }] } };
  await writeFile(path.join(results, `${net}-${sandboxId}-eth0`), JSON.stringify(foreign));
  await writeFile(path.join(results, `${net}-old-eth0`), JSON.stringify({ cniVersion: '0.3.1', ips: [] }));
  await writeFile(path.join(results, 'empty'), '');
  await mkdir(path.join(results, 'a-directory'));
  // And an attachment another runtime made in a netns of its own, with dockcni's engine as cnitool.
  const ns = await netns(t);
  const flags = ['--conf-dir', d.confDir, '--cni-path', FIXTURE_PLUGINS, '--cache-dir', path.join(d.root, 'cache'), '--run-dir', path.join(d.root, 'run')];
  await dockcni(['cni', 'add', net, ns, '--container-id', 'other-runtime', ...flags]);
  const before = (await readdir(results)).sort();
  const gc = await dockcni(['gc', ...d.flags]);
  t.regex(gc.stdout, /left alone .*-old-eth0: not a cniCacheV1 entry/);
  t.regex(gc.stdout, /left alone 2 attachment\(s\) of other CNI runtimes/);
  t.regex(gc.stdout, /nothing to remove/);
  t.deepEqual((await readdir(results)).sort(), before);
  const doctor = await dockcni(['doctor', ...d.flags], { reject: false });
  t.regex(doctor.stdout, /other runtimes +2 attachment\(s\) of other CNI runtimes \(fx: 2\)/);
  const daemon = await startDaemon(t, d);
  t.regex(daemon.log(), /left alone a file in the CNI cache .*-old-eth0/);
  t.deepEqual((await readdir(results)).sort(), before);
  t.deepEqual((await recorded(record)).map((c) => c.command), ['ADD', 'GC', 'GC'], 'no DEL: gc and the daemon only sent spec GC');
  await dockcni(['cni', 'del', net, ns, '--container-id', 'other-runtime', ...flags]);
});

test('a pid that is not the container\'s (reused, or read too long ago) is never pinned', async (t) => {
  const dir = await tempDir(t);
  const { BindMountPins } = await import('../../src/wiring/netns-pins.js');
  const { ChildProcessCommands } = await import('../../src/host-commands.js');
  const pins = new BindMountPins(path.join(dir, 'netns'), new ChildProcessCommands());
  const id = 'f'.repeat(64);
  await t.throwsAsync(pins.pin(id, process.pid), { message: /process \d+ is no longer container ffffffffffff's: refusing to wire its netns/ });
  t.false(pins.isPinned(id));
  t.deepEqual(await pins.list(), [], 'nothing mounted, nothing left');
  const c = await container(t, ['--network', 'none']);
  const pid = Number((await sh('docker', ['inspect', '-f', '{{.State.Pid}}', c])).stdout.trim());
  await pins.pin(c, pid);
  t.true(pins.isPinned(c), 'the container\'s own process is pinned');
  await pins.unpin(c);
});

/** Built by test/host/setup.js from libcni 1.1.2 with the workplace's shared tool. */
const CNITOOL = path.join(tmpdir(), 'dockcni-test-cnitool', 'cnitool');

// Outside this workplace (no ../shared/tools/cnitool to build it from) the test is skipped, visibly;
// under CI it runs and fails without cnitool.
const withCnitool = existsSync(CNITOOL) || process.env['CI'] === 'true' ? test : test.skip;

withCnitool('the reference runtime (libcni 1.1.2\'s cnitool): its attachments are left alone; each reads the other\'s cache', async (t) => {
  t.true(existsSync(CNITOOL), `cnitool at ${CNITOOL}: test/host/setup.js builds it from ../shared/tools/cnitool`);
  const dir = await tempDir(t);
  const confDir = path.join(dir, 'net.d');
  const record = path.join(dir, 'calls.jsonl');
  await mkdir(confDir);
  await writeFile(record, '');
  // libcni 1.1.2 speaks up to 1.0.0; dockcni picks 1.1.0 from cniVersions, so its GC runs too.
  const net = `ref${Date.now().toString(36)}`;
  await writeFile(path.join(confDir, `10-${net}.conflist`), JSON.stringify({ cniVersion: '1.0.0', cniVersions: ['1.0.0', '1.1.0'], name: net, plugins: [{ type: 'fixture', record }] }));
  const ns = await netns(t);
  const env = { NETCONFPATH: confDir, CNI_PATH: FIXTURE_PLUGINS };
  const cnitool = (command: string) => sh('env', [...Object.entries(env).map(([k, v]) => `${k}=${v}`), CNITOOL, command, net, `/var/run/netns/${ns}`]);
  const flags = ['--conf-dir', confDir, '--cni-path', FIXTURE_PLUGINS, '--cache-dir', '/var/lib/cni', '--state-dir', path.join(dir, 'state'), '--run-dir', path.join(dir, 'run')];
  const cached = async () => (await readdir('/var/lib/cni/results').catch(() => [] as string[])).filter((f) => f.startsWith(`${net}-`));
  t.teardown(async () => { for (const f of await cached()) await sh('rm', ['-f', path.join('/var/lib/cni/results', f)]); });

  await cnitool('add');
  const [entryName] = await cached();
  const entry = JSON.parse(await readFile(path.join('/var/lib/cni/results', entryName ?? ''), 'utf8')) as Record<string, unknown>;
  t.is(entry['kind'], 'cniCacheV1');
  t.false('netns' in entry, 'libcni 1.1 writes no netns field');
  const gc = await dockcni(['gc', ...flags]);
  // Other tests' runtimes may share /var/lib/cni at the same moment: this network's count is the claim.
  t.regex(gc.stdout, new RegExp(`left alone \\d+ attachment\\(s\\) of other CNI runtimes \\((.*, )?${net}: 1[,)]`));
  t.regex(gc.stdout, /nothing to remove/);
  t.deepEqual(await cached(), [entryName]);
  const doctor = JSON.parse((await dockcni(['doctor', '-o', 'json', ...flags], { reject: false })).stdout) as { checks: { check: string; found: string }[] };
  t.regex(doctor.checks.find((c) => c.check === 'other runtimes')?.found ?? '', new RegExp(`\\d+ attachment\\(s\\) of other CNI runtimes \\((.*, )?${net}: 1[,)]`));
  const sent = await recorded(record);
  t.deepEqual(sent.map((c) => c.command), ['ADD', 'GC'], 'dockcni sent spec GC and no DEL');
  t.regex(JSON.stringify(sent[1]?.stdin['cni.dev/valid-attachments']), /"containerID":"cnitool-[0-9a-f]{20}"/, 'and counted the attachment as valid');
  await cnitool('del');
  t.deepEqual(await cached(), []);

  // The other way round: dockcni's entry is one libcni reads for its DEL (on a 1.0.0 list: libcni 1.1
  // cannot read a 1.1.0 result, whoever cached it).
  await writeFile(path.join(confDir, `10-${net}.conflist`), JSON.stringify({ cniVersion: '1.0.0', name: net, plugins: [{ type: 'fixture', record }] }));
  await dockcni(['cni', 'add', net, ns, ...flags]);
  t.is((await cached()).length, 1);
  await cnitool('del');
  t.deepEqual(await cached(), [], 'cnitool found and removed dockcni\'s cache entry');
  const del = (await recorded(record)).filter((c) => c.command === 'DEL').at(-1) as { stdin: Record<string, unknown> } | undefined;
  t.deepEqual((del?.stdin['prevResult'] as { ips?: { address: string }[] } | undefined)?.ips?.[0]?.address, '10.1.0.2/24', 'with the result dockcni cached as prevResult');
});

withCnitool('gc on a host shared with another runtime whose cache lives elsewhere: its reservations and chains stay', async (t) => {
  t.true(existsSync(CNITOOL), `cnitool at ${CNITOOL}: test/host/setup.js builds it from ../shared/tools/cnitool`);
  const d = await dirs(t);
  const net = await bridgeNetwork(t, d.confDir, d.root, 100);
  const ns = await netns(t);
  const cnitool = (command: string) => sh('env', [`NETCONFPATH=${d.confDir}`, `CNI_PATH=${PLUGIN_DIR}`, CNITOOL, command, net.name, `/var/run/netns/${ns}`], { reject: command !== 'del' });
  // cnitool caches in libcni's default dir, /var/lib/cni; dockcni here has a cache dir of its own.
  // A DEL that fails (a gc that wrongly took its chain, say) must not leave that cache entry behind.
  const cached = async () => (await readdir('/var/lib/cni/results').catch(() => [] as string[])).filter((f) => f.startsWith(`${net.name}-`));
  t.teardown(async () => {
    const del = await cnitool('del');
    const left = await cached();
    for (const f of left) await sh('rm', ['-f', path.join('/var/lib/cni/results', f)]);
    if (left.length > 0) throw new Error(`cnitool del (exit ${del.exitCode}) left ${left.join(', ')} in /var/lib/cni/results, removed now: ${del.stderr}`);
  });
  await cnitool('add');
  const [reservation] = await reservations(net);
  t.truthy(reservation, 'host-local reserved an address for cnitool\'s attachment');
  const file = path.join(net.ipamDir, net.name, reservation ?? '');
  const id = (await readFile(file, 'utf8')).split(/\r?\n/)[0] ?? '';
  t.regex(id, /^cnitool-[0-9a-f]{20}$/);
  await sh('touch', ['-d', '2 minutes ago', file]);
  const chainsBefore = await rulesMentioning(id);
  t.not(chainsBefore.length, 0, 'bridge\'s masquerade chain for it');
  const gc = await dockcni(['gc', ...d.flags]);
  t.regex(gc.stdout, /nothing to remove/);
  t.deepEqual(await reservations(net), [reservation], 'its reservation stays');
  t.deepEqual(await rulesMentioning(id), chainsBefore, 'and its chains');
  const doctor = JSON.parse((await dockcni(['doctor', '-o', 'json', ...d.flags], { reject: false })).stdout) as { checks: { check: string; status: string; found: string }[] };
  t.notRegex(doctor.checks.filter((c) => c.check === 'leftovers').map((c) => c.found).join('\n'), new RegExp(id), 'doctor does not call them leftovers');
  await cnitool('del');
  t.deepEqual(await reservations(net), []);
});

test('the host-port race: four containers started at once asking for one host port, one wins and three are refused naming it; the same for one static address', async (t) => {
  const d = await dirs(t);
  const net = await bridgeNetwork(t, d.confDir, d.root, 45);
  const daemon = await startDaemon(t, d, ['--on-failure', 'ignore', '--concurrency', '8']);
  for (const [label, taken] of [['dockcni.ports=18451:80', /18451\/tcp is already taken by container/], ['dockcni.ip=10.231.45.77', /10\.231\.45\.77\W{1,3}: already held by container/]] as const) {
    const ids = await Promise.all(Array.from({ length: 4 }, () => container(t, ['--network', 'none', '-l', `dockcni.networks=${net.name}`, '-l', label])));
    await waitFor(`${label}: every one decided`, async () => ids.every((id) => daemon.log().includes(`id=${id.slice(0, 12)}`)));
    const wired = (await Promise.all(ids.map((id) => addressOf(id)))).filter((a) => a !== undefined);
    t.is(wired.length, 1, `${label}: exactly one wired`);
    t.is(daemon.log().split('\n').filter((l) => taken.test(l)).length, 3, `${label}: three refused, the holder named`);
    await sh('docker', ['rm', '-f', ...ids]);
    await waitFor('unwired', async () => (await reservations(net)).length === 0);
  }
  await daemon.stop();
});
