import { existsSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import { execa } from 'execa';
import { addressOf, assertNoLeftovers, dirs, httpFromOtherHost, pingFrom, startDaemon, waitFor, type Dirs } from '../helpers/docker.js';
import { ROOT } from '../helpers/fixtures.js';
import { BUSYBOX_IMAGE, PAUSE_IMAGE, bridgeNetwork, dockcni, hostTest, hostVethsOn, reservations, restartDockerd, sh, uid, type TestNetwork } from '../helpers/host.js';

const test = hostTest();
const DAEMON_JSON = '/etc/docker/daemon.json';
const BACKUP = `${DAEMON_JSON}.dockcni-backup`;

/**
 * Reads daemon.json and its backup as they are, and gives back a function that puts both back and
 * makes dockerd forget runtimes the file no longer names. dockerd reloads runtimes only from a
 * daemon.json that names one, so only a restart makes it forget the last: the host is left as found.
 */
async function dockerConfigRestorer(): Promise<() => Promise<void>> {
  const read = async (f: string) => (existsSync(f) ? readFile(f) : undefined);
  const [file, backup] = [await read(DAEMON_JSON), await read(BACKUP)];
  const listed = async () => {
    const info = JSON.parse((await sh('docker', ['info', '--format', '{{json .}}'])).stdout) as { Runtimes: object; DefaultRuntime: string };
    return `${Object.keys(info.Runtimes).sort().join(',')} default ${info.DefaultRuntime}`;
  };
  const runtimesBefore = await listed();
  return async () => {
    for (const [f, content] of [[DAEMON_JSON, file], [BACKUP, backup]] as const) {
      if (content === undefined) await sh('rm', ['-f', f]);
      else await writeFile(f, content);
    }
    if ((await listed()) !== runtimesBefore) await restartDockerd();
  };
}

/**
 * dockcni registered in dockerd under a name of this test's own, on the test's dirs; removed again at
 * teardown, which (ava runs teardowns last-in first-out) comes after the test's containers are gone.
 */
async function runtime(t: ExecutionContext, d: Dirs, extra: string[] = []): Promise<string> {
  const name = uid('dcrt');
  const restore = await dockerConfigRestorer();
  t.teardown(async () => {
    await dockcni(['runtime', 'uninstall', '--name', name]);
    await restore();
  });
  await dockcni(['runtime', 'install', '--name', name, ...d.flags, ...extra]);
  return name;
}

/** `docker run` through the runtime; the container is removed at teardown whatever happened. */
async function run(t: ExecutionContext, rt: string, args: string[], command: string[], reject = true) {
  const name = uid('dcr');
  t.teardown(async () => { await sh('docker', ['rm', '-f', name], { reject: false }); });
  const r = await sh('docker', ['run', '--name', name, '--runtime', rt, ...args, BUSYBOX_IMAGE, ...command], { reject });
  return { ...r, name };
}

const records = async (d: Dirs) => readdir(path.join(d.root, 'state/attachments')).catch(() => [] as string[]);
const cacheEntries = async (d: Dirs) => readdir(path.join(d.root, 'cache/results')).catch(() => [] as string[]);
/** Containers runc still holds for Docker: a failed create must leave none. */
const runcContainers = async () => (await sh('runc', ['--root', '/run/docker/runtime-runc/moby', 'list', '-q'], { reject: false })).stdout.split('\n').filter(Boolean);

/** `reply`: a default route in the containers, for traffic from outside the host (a port mapping's). */
async function setup(t: ExecutionContext, octet: number, extra: string[] = [], reply = false): Promise<{ d: Dirs; net: TestNetwork; rt: string }> {
  const d = await dirs(t);
  const net = await bridgeNetwork(t, d.confDir, d.root, octet, undefined, reply);
  const rt = await runtime(t, d, extra);
  return { d, net, rt };
}

const settled = async (d: Dirs) => waitFor('the background DELs', async () => (await records(d)).length === 0);

test('runtime: the first instruction sees its address; the exit status is the app\'s; --rm twice with one port and address; nothing left', async (t) => {
  const { d, net, rt } = await setup(t, 71);
  const first = await run(t, rt, ['--rm', '--network', 'none', '-l', `dockcni.networks=${net.name}`], ['ip', '-4', '-o', 'addr', 'show', 'eth0']);
  t.regex(first.stdout, new RegExp(`inet 10\\.231\\.71\\.\\d+/24`), 'eth0 had its address when the container\'s first command ran');
  const exit = await run(t, rt, ['--rm', '--network', 'none', '-l', `dockcni.networks=${net.name}`], ['sh', '-c', 'exit 7'], false);
  t.is(exit.exitCode, 7);
  // Back to back, as a script would: the second waits for the first's DEL (in the background) to free both.
  const same = ['--rm', '--network', 'none', '-l', `dockcni.networks=${net.name}`, '-l', 'dockcni.ip=10.231.71.50', '-l', 'dockcni.ports=18071:80'];
  for (let i = 0; i < 2; i++) {
    const r = await run(t, rt, same, ['ip', '-4', '-o', 'addr', 'show', 'eth0']);
    t.regex(r.stdout, /inet 10\.231\.71\.50\/24/, `run ${i + 1}`);
  }
  await settled(d);
  await assertNoLeftovers(t, d, net, []);
});

test('runtime: docker exec, two containers that ping each other, ls shows them; docker stop DELs', async (t) => {
  const { d, net, rt } = await setup(t, 72);
  const label = ['--network', 'none', '-l', `dockcni.networks=${net.name}`];
  const a = await run(t, rt, ['-d', ...label], ['sleep', '600']);
  const b = await run(t, rt, ['-d', ...label], ['sleep', '600']);
  const addressB = await addressOf(b.name);
  t.truthy(addressB, 'docker exec reaches a runtime-wired container');
  t.true(await pingFrom(a.name, addressB!), 'a pings b');
  const ls = JSON.parse((await dockcni(['ls', '-o', 'json', ...d.flags])).stdout) as { name: string; origin: string }[];
  t.deepEqual(ls.map((r) => [r.name, r.origin]).sort(), [[a.name, 'runtime'], [b.name, 'runtime']].sort());
  await sh('docker', ['stop', '-t', '1', a.name, b.name]);
  await settled(d);
  await assertNoLeftovers(t, d, net, []);
});

test('runtime: --restart on-failure:2 wires each of the three starts, with one attachment each', async (t) => {
  const { d, net, rt } = await setup(t, 73);
  const out = path.join(d.root, 'out');
  await sh('mkdir', ['-p', out]);
  const c = await run(t, rt, ['-d', '--restart', 'on-failure:2', '-v', `${out}:/out`, '--network', 'none', '-l', `dockcni.networks=${net.name}`],
    ['sh', '-c', 'ip -4 -o addr show eth0 >> /out/starts; ls /sys/class/net >> /out/links; exit 3']);
  await waitFor('three starts and the last exit', async () => (await sh('docker', ['inspect', '-f', '{{.State.Status}} {{.RestartCount}}', c.name])).stdout.trim() === 'exited 2', 30_000);
  const starts = (await readFile(path.join(out, 'starts'), 'utf8')).split('\n').filter(Boolean);
  t.is(starts.length, 3);
  for (const line of starts) t.regex(line, /inet 10\.231\.73\.\d+\/24/);
  t.deepEqual((await readFile(path.join(out, 'links'), 'utf8')).split('\n').filter(Boolean).filter((l) => l.startsWith('eth')), ['eth0', 'eth0', 'eth0'], 'one interface per start');
  await waitFor('the last run\'s DEL', async () => (await records(d)).length === 0 && (await cacheEntries(d)).length === 0);
  await assertNoLeftovers(t, d, net, []);
});

test('runtime: a container without the label passes straight through, whatever its network mode', async (t) => {
  const { d, rt } = await setup(t, 74);
  const bridged = await run(t, rt, ['--rm'], ['ip', '-4', '-o', 'addr', 'show', 'eth0']);
  t.regex(bridged.stdout, /inet 172\.17\./, 'Docker\'s own bridge address, untouched');
  const none = await run(t, rt, ['--rm', '--network', 'none'], ['ls', '/sys/class/net']);
  t.deepEqual(none.stdout.split(/\s+/).filter(Boolean), ['lo']);
  t.deepEqual(await records(d), []);
  t.deepEqual(await cacheEntries(d), []);
});

test('runtime: an unknown network, a bad label, another network mode and a failing plugin fail docker run with their message and leave nothing', async (t) => {
  const { d, net, rt } = await setup(t, 75);
  // A chain whose last plugin fails ADD: the bridge plugin's veth, address and rules must be undone.
  const failing = uid('tnf');
  await writeFile(path.join(d.confDir, `60-${failing}.conflist`), JSON.stringify({
    cniVersion: '1.0.0', name: failing,
    plugins: [
      { type: 'bridge', bridge: net.bridge, isGateway: true, ipam: { type: 'host-local', dataDir: net.ipamDir, ranges: [[{ subnet: net.subnet }]] } },
      { type: 'fixture', fixture: { fail: { code: 7, msg: 'fixture says no' }, failOn: ['ADD'] } },
    ],
  }));
  const cases: [string[], RegExp][] = [
    [['--network', 'none', '-l', 'dockcni.networks=nosuchnet'], /no network named "nosuchnet".*fix: add a \.conflist/],
    [['--network', 'none', '-l', `dockcni.networks=${net.name}`, '-l', 'dockcni.ports=99999:80'], /invalid label dockcni\.ports "99999:80": port 99999 is outside 1-65535/],
    [['-l', `dockcni.networks=${net.name}`], /uses network mode "default", not "none".*fix: start it with --network none/],
    [['--network', 'none', '-l', `dockcni.networks=${failing}`], /fixture says no/],
  ];
  for (const [args, message] of cases) {
    const r = await run(t, rt, ['--rm', ...args], ['true'], false);
    t.not(r.exitCode, 0, args.join(' '));
    t.regex(r.stderr, /OCI runtime create failed: dockcni: /, args.join(' '));
    t.regex(r.stderr, message, args.join(' '));
    const id = (await sh('docker', ['inspect', '-f', '{{.Id}}', r.name], { reject: false })).stdout.trim();
    if (id !== '') t.false((await runcContainers()).includes(id), `runc holds no container for ${args.join(' ')}`);
  }
  await settled(d);
  t.deepEqual(await cacheEntries(d), []);
  await assertNoLeftovers(t, d, net, []);
});

test('runtime: a hung plugin fails the start once the timeout passes, leaving nothing', async (t) => {
  const d = await dirs(t);
  const hung = uid('tnh');
  await writeFile(path.join(d.confDir, `10-${hung}.conflist`), JSON.stringify({ cniVersion: '1.0.0', name: hung, plugins: [{ type: 'fixture', fixture: { sleepMs: 60_000, failOn: ['ADD'] } }] }));
  const rt = await runtime(t, d, ['--timeout', '2']);
  const started = Date.now();
  const r = await run(t, rt, ['--rm', '--network', 'none', '-l', `dockcni.networks=${hung}`], ['true'], false);
  t.not(r.exitCode, 0);
  t.regex(r.stderr, /timed out|did not finish|timeout/i);
  t.true(Date.now() - started < 30_000, 'bounded by the 2 s timeout, not the plugin\'s minute');
  await settled(d);
  t.deepEqual(await cacheEntries(d), []);
});

test('runtime and daemon share state: the daemon neither re-wires nor unwires a runtime container, across docker restart', async (t) => {
  const { d, net, rt } = await setup(t, 76);
  const daemon = await startDaemon(t, d, ['--debug']);
  const out = path.join(d.root, 'out');
  await sh('mkdir', ['-p', out]);
  const c = await run(t, rt, ['-d', '-v', `${out}:/out`, '--network', 'none', '-l', `dockcni.networks=${net.name}`], ['sh', '-c', 'ip -4 -o addr show eth0 >> /out/starts; ip -o link show eth0 >> /out/links; sleep 600']);
  const firstLine = async (n: number) => waitFor(`start ${n} written`, async () => {
    const lines = (await readFile(path.join(out, 'starts'), 'utf8').catch(() => '')).split('\n').filter(Boolean);
    return lines.length >= n && lines;
  });
  const first = (await firstLine(1))[0]!;
  const id = (await sh('docker', ['inspect', '-f', '{{.Id}}', c.name])).stdout.trim().slice(0, 12);
  // Its start event handled: the daemon finds the runtime's record of this incarnation and says it is wired.
  await waitFor('the daemon to handle the start', async () => new RegExp(`info +wired .*id=${id}`).test(daemon.log()));
  const address = /inet (\S+)\//.exec(first)?.[1];
  t.is(await addressOf(c.name), address, 'the address the first instruction saw is still there: the daemon did not re-wire it');
  t.is(Number((await sh('docker', ['exec', c.name, 'sh', '-c', 'ls /sys/class/net | wc -l'])).stdout.trim()), 2, 'lo and one eth0');
  await sh('docker', ['restart', '-t', '1', c.name]);
  const lines = await firstLine(2);
  // The first run's die: the daemon DELs that run if the runtime's delete has not yet, finds nothing
  // to do if it has, or keeps the second run's record if the runtime wired it first — never the live one.
  await waitFor('the daemon to handle the die', async () => new RegExp(`(info +unwired|debug +kept: its process lives, a newer incarnation wired by the runtime|debug +nothing to unwire) id=${id}`).test(daemon.log()));
  await waitFor('the daemon to handle the second start', async () => (daemon.log().match(new RegExp(`info +wired .*id=${id}`, 'g')) ?? []).length >= 2);
  t.regex(lines[1]!, /inet 10\.231\.76\.\d+\/24/);
  t.truthy(await addressOf(c.name), 'the restarted container keeps its networking after the daemon handled the old die');
  t.is((await cacheEntries(d)).length, 1, 'one attachment, not two');
  t.deepEqual(await reservations(net), [(await addressOf(c.name))!], 'one reservation: the previous one was DELeted');
  await sh('docker', ['rm', '-f', c.name]);
  await waitFor('teardown', async () => (await records(d)).length === 0);
  await assertNoLeftovers(t, d, net, []);
});

test('runtime keeps working with the daemon SIGKILLed in the middle of an ADD', async (t) => {
  const d = await dirs(t, { leavesState: 'the daemon is killed mid-ADD' });
  const net = await bridgeNetwork(t, d.confDir, d.root, 77);
  const slow = uid('tns');
  await writeFile(path.join(d.confDir, `10-${slow}.conflist`), JSON.stringify({ cniVersion: '1.0.0', name: slow, plugins: [{ type: 'fixture', fixture: { sleepMs: 6000, failOn: ['ADD'] } }] }));
  const rt = await runtime(t, d);
  const daemon = await startDaemon(t, d);
  const victim = uid('dcv');
  t.teardown(async () => { await sh('docker', ['rm', '-f', victim], { reject: false }); });
  await sh('docker', ['run', '-d', '--name', victim, '--network', 'none', '-l', `dockcni.networks=${slow}`, BUSYBOX_IMAGE, 'sleep', '600']);
  await waitFor('the daemon to be inside the slow ADD', async () => existsSync(path.join(d.root, 'state/attachments')) && (await records(d)).length > 0, 15_000);
  await daemon.kill();
  const r = await run(t, rt, ['--rm', '--network', 'none', '-l', `dockcni.networks=${net.name}`], ['ip', '-4', '-o', 'addr', 'show', 'eth0']);
  t.regex(r.stdout, /inet 10\.231\.77\.\d+\/24/);
  await sh('docker', ['rm', '-f', victim]);
  // Plugins outlive a killed daemon on purpose (a plugin cut short leaves half its state): this one ends on its own.
  await waitFor('the killed daemon\'s plugin to finish', async () => (await sh('pgrep', ['-f', 'test/fixtures/plugins/fixture'], { reject: false })).exitCode === 1, 20_000);
});

test('runtime install keeps every other key and runtime of daemon.json; uninstall gives it back', async (t) => {
  const d = await dirs(t);
  const before = existsSync(DAEMON_JSON) ? await readFile(DAEMON_JSON, 'utf8') : undefined;
  const original = { ...(before === undefined ? {} : JSON.parse(before) as Record<string, unknown>), 'log-level': 'info', runtimes: { ...((before === undefined ? {} : JSON.parse(before) as { runtimes?: object }).runtimes ?? {}), 'dockcni-test-other': { path: 'runc' } } };
  t.teardown(await dockerConfigRestorer());
  await writeFile(DAEMON_JSON, JSON.stringify(original, null, 2));
  const name = uid('dcrt');
  const installed = await dockcni(['runtime', 'install', '--name', name, ...d.flags]);
  t.regex(installed.stdout, new RegExp(`installed runtime ${name} in ${DAEMON_JSON}`));
  t.regex(installed.stdout, /previous file kept as \/etc\/docker\/daemon\.json\.dockcni-backup/);
  t.regex(installed.stdout, /dockerd \(pid \d+\) reloaded its config and lists/);
  const now = JSON.parse(await readFile(DAEMON_JSON, 'utf8')) as { 'log-level': string; runtimes: Record<string, { path: string; runtimeArgs: string[] }> };
  t.is(now['log-level'], 'info');
  t.deepEqual(now.runtimes['dockcni-test-other'], { path: 'runc' });
  t.true(now.runtimes[name]!.path.endsWith('bin/dockcni-runtime'));
  t.deepEqual(JSON.parse(await readFile(`${DAEMON_JSON}.dockcni-backup`, 'utf8')), original);
  const status = await dockcni(['runtime', 'status', '--name', name, '-o', 'json']);
  t.like(JSON.parse(status.stdout), { registered: true, answering: true });
  t.regex((await sh('docker', ['info', '--format', '{{json .Runtimes}}'])).stdout, new RegExp(name));
  await dockcni(['runtime', 'uninstall', '--name', name]);
  t.deepEqual(JSON.parse(await readFile(DAEMON_JSON, 'utf8')), original, 'uninstall restores the file');
  t.notRegex((await sh('docker', ['info', '--format', '{{json .Runtimes}}'])).stdout, new RegExp(name));
  const gone = await dockcni(['runtime', 'status', '--name', name], { reject: false });
  t.is(gone.exitCode, 1, 'status fails for a runtime that is not installed');
});

test('dockcni run through the runtime: one container, its first instruction sees its address, its exit status, --restart; nothing left', async (t) => {
  const { d, net, rt } = await setup(t, 78);
  const name = uid('dcrun');
  t.teardown(async () => { await sh('docker', ['rm', '-f', name], { reject: false }); });
  const r = await dockcni(['run', '--dockcni-runtime', rt, ...d.flags, '--network', net.name, '--ip', '10.231.78.40', '--name', name, '--rm', BUSYBOX_IMAGE, 'ip', '-4', '-o', 'addr', 'show', 'eth0'], { reject: false });
  t.is(r.exitCode, 0, r.stderr);
  t.regex(r.stdout, /inet 10\.231\.78\.40\/24/);
  const seven = await dockcni(['run', '--dockcni-runtime', rt, ...d.flags, '--network', net.name, '--rm', BUSYBOX_IMAGE, 'sh', '-c', 'exit 7'], { reject: false });
  t.is(seven.exitCode, 7);
  const bad = await dockcni(['run', '--dockcni-runtime', rt, ...d.flags, '-p', '99999:80', '--rm', BUSYBOX_IMAGE, 'true'], { reject: false });
  t.is(bad.exitCode, 125);
  t.regex(bad.stderr, /invalid -p\/--publish "99999:80"/, 'the flag the user typed is named');
  // --restart, which the sandbox path refuses: each start wired.
  const out = path.join(d.root, 'out');
  await sh('mkdir', ['-p', out]);
  const restarted = await dockcni(['run', '--dockcni-runtime', rt, ...d.flags, '--network', net.name, '-d', '--name', `${name}r`, '--restart', 'on-failure:1', '-v', `${out}:/out`, BUSYBOX_IMAGE, 'sh', '-c', 'ip -4 -o addr show eth0 >> /out/starts; exit 1']);
  t.teardown(async () => { await sh('docker', ['rm', '-f', `${name}r`], { reject: false }); });
  t.regex(restarted.stdout.trim(), /^[0-9a-f]{64}$/);
  await waitFor('two starts', async () => (await sh('docker', ['inspect', '-f', '{{.State.Status}} {{.RestartCount}}', `${name}r`])).stdout.trim() === 'exited 1', 20_000);
  t.deepEqual((await readFile(path.join(out, 'starts'), 'utf8')).split('\n').filter(Boolean).map((l) => /inet 10\.231\.78\.\d+\/24/.test(l)), [true, true]);
  t.deepEqual((await sh('docker', ['ps', '-a', '-q', '--filter', `name=${name}`])).stdout.trim().split('\n').filter(Boolean).length, 1, 'no sandbox container beside the app');
  await sh('docker', ['rm', '-f', `${name}r`]);
  await settled(d);
  await assertNoLeftovers(t, d, net, []);
});

test('dockcni run refuses a named runtime installed with other locations', async (t) => {
  const { d, rt } = await setup(t, 79);
  const other = await dirs(t);
  const r = await dockcni(['run', '--dockcni-runtime', rt, ...other.flags, '--rm', BUSYBOX_IMAGE, 'true'], { reject: false });
  t.is(r.exitCode, 125);
  t.regex(r.stderr, new RegExp(`runtime ${rt} was installed with other locations or settings than this run names`));
  t.deepEqual(await records(d), []);
});

test('compose through the runtime (examples/compose/runtime.yml): services wired before their first instruction, reachable through the mapping, down leaves nothing', async (t) => {
  const { d, net, rt } = await setup(t, 80, [], true);
  const project = uid('dcc');
  const file = path.join(ROOT, 'examples/compose/runtime.yml');
  const env = { DOCKCNI_RUNTIME: rt, APP_IMAGE: BUSYBOX_IMAGE, CNI_NETWORK: net.name, WEB_PORT: '18080' };
  const compose = (...args: string[]) => execa('docker-compose', ['-p', project, '-f', file, ...args], { env, timeout: 180_000 });
  t.teardown(async () => { await execa('docker-compose', ['-p', project, '-f', file, 'down', '-t', '1'], { env, reject: false }); });
  await compose('up', '-d');
  const log = await waitFor('the client\'s first line', async () => (await compose('logs', '--no-color', 'client')).stdout.match(/eth0 +inet 10\.231\.80\.\d+\/24/));
  t.truthy(log, 'the client\'s first instruction saw its address');
  const web = await addressOf(`${project}_web_1`);
  t.regex(web ?? '', /^10\.231\.80\./);
  t.true(await pingFrom(`${project}_client_1`, web!), 'client reaches web');
  t.true(await pingFrom(`${project}_client_1`, 'web'), 'by its compose service name');
  t.regex(await httpFromOtherHost(t, 18080, 80), /HTTP\/1\.[01] 200/, 'the port mapping answers from outside');
  await compose('down', '-t', '1');
  await settled(d);
  await assertNoLeftovers(t, d, net, []);
});

test('runtime: a create that fails without --rm (missing plugin, bad label, address taken) exits 125 with Docker\'s message, undoes its ADDs, leaves no runc container, record or reservation; docker start tries again and works once the cause is gone', async (t) => {
  const { d, net, rt } = await setup(t, 102);
  const ghost = uid('tng');
  // bridge and host-local run before the missing plugin: what they did must be undone.
  await writeFile(path.join(d.confDir, `60-${ghost}.conflist`), JSON.stringify({
    cniVersion: '1.0.0', name: ghost,
    plugins: [{ type: 'bridge', bridge: net.bridge, ipam: { type: 'host-local', dataDir: net.ipamDir, ranges: [[{ subnet: net.subnet }]] } }, { type: 'nosuchplugin' }],
  }));
  const holder = await run(t, rt, ['-d', '--network', 'none', '-l', `dockcni.networks=${net.name}`, '-l', 'dockcni.ip=10.231.102.40'], ['sleep', '600']);
  const cases: [string, string[], RegExp][] = [
    ['missing plugin', ['-l', `dockcni.networks=${ghost}`], /CNI plugin "nosuchplugin" not found/],
    ['bad label', ['-l', `dockcni.networks=${net.name}`, '-l', 'dockcni.mac=01:00:5e:00:00:01'], /invalid label dockcni\.mac "01:00:5e:00:00:01": a multicast MAC/],
    ['address taken', ['-l', `dockcni.networks=${net.name}`, '-l', 'dockcni.ip=10.231.102.40'], /10\.231\.102\.40.*already held by container/],
  ];
  const failed: string[] = [];
  for (const [what, args, message] of cases) {
    const r = await run(t, rt, ['-d', '--network', 'none', ...args], ['sleep', '600'], false);
    t.is(r.exitCode, 125, `${what}: docker run exits 125`);
    t.regex(r.stderr, /OCI runtime create failed: dockcni: /, what);
    t.regex(r.stderr, message, what);
    const id = (await sh('docker', ['inspect', '-f', '{{.Id}}', r.name])).stdout.trim();
    t.is((await sh('docker', ['inspect', '-f', '{{.State.Status}}', r.name])).stdout.trim(), 'created', `${what}: Docker keeps the container, created and not running`);
    t.false((await runcContainers()).includes(id), `${what}: runc holds no container`);
    t.false((await records(d)).includes(`${id}.json`), `${what}: no record`);
    failed.push(r.name);
  }
  const holderId = (await sh('docker', ['inspect', '-f', '{{.Id}}', holder.name])).stdout.trim();
  t.deepEqual(await reservations(net), ['10.231.102.40'], 'the holder\'s address only: the failed ADDs were undone');
  t.deepEqual(await records(d), [`${holderId}.json`]);
  t.is((await hostVethsOn(net.bridge)).length, 1, 'one veth on the bridge: the holder\'s');
  // docker start runs the create again: the same refusal while the cause is there, a wired container once it is gone.
  const again = await sh('docker', ['start', failed[2]!], { reject: false });
  t.not(again.exitCode, 0);
  t.regex(again.stderr, /already held by container/);
  await sh('docker', ['rm', '-f', holder.name]);
  await waitFor('the holder unwired', async () => (await reservations(net)).length === 0);
  await sh('docker', ['start', failed[2]!]);
  t.regex((await sh('docker', ['exec', failed[2]!, 'ip', '-4', '-o', 'addr', 'show', 'eth0'])).stdout, /inet 10\.231\.102\.40\/24/, 'wired with the address once it was free');
  for (const name of failed) await sh('docker', ['rm', '-f', name]);
  await settled(d);
  await assertNoLeftovers(t, d, net, []);
});

test('runtime install --daemon-json FILE --no-reload writes only that file and leaves dockerd alone; uninstall takes the entry out again', async (t) => {
  const d = await dirs(t);
  const restore = await dockerConfigRestorer();
  t.teardown(restore);
  const real = existsSync(DAEMON_JSON) ? await readFile(DAEMON_JSON, 'utf8') : undefined;
  const file = path.join(d.root, 'other-daemon.json');
  await writeFile(file, JSON.stringify({ 'log-level': 'warn' }));
  const name = uid('dcrt');
  const installed = await dockcni(['runtime', 'install', '--name', name, '--daemon-json', file, '--no-reload', ...d.flags]);
  t.regex(installed.stdout, new RegExp(`installed runtime ${name} in ${file.replace(/[/.]/g, '\\$&')}`));
  t.regex(installed.stdout, /dockerd not reloaded \(--no-reload\)/);
  const written = JSON.parse(await readFile(file, 'utf8')) as { 'log-level': string; runtimes: Record<string, { path: string; runtimeArgs: string[] }> };
  t.is(written['log-level'], 'warn');
  t.true(written.runtimes[name]!.path.endsWith('bin/dockcni-runtime'));
  t.true(written.runtimes[name]!.runtimeArgs.includes(`--dockcni-conf-dir=${d.confDir}`));
  t.is(existsSync(DAEMON_JSON) ? await readFile(DAEMON_JSON, 'utf8') : undefined, real, 'dockerd\'s own daemon.json untouched');
  t.notRegex((await sh('docker', ['info', '--format', '{{json .Runtimes}}'])).stdout, new RegExp(name), 'dockerd was not reloaded');
  await dockcni(['runtime', 'uninstall', '--name', name, '--daemon-json', file, '--no-reload']);
  t.deepEqual(JSON.parse(await readFile(file, 'utf8')), { 'log-level': 'warn' });
});

test('runtime install --default: containers that name no runtime go through dockcni (a labelled one is wired, an unlabelled one passes straight to runc); uninstall hands the default back', async (t) => {
  // Another runtime stays in daemon.json: dockerd then reloads its runtimes on uninstall, the case
  // where a default it no longer lists crashed dockerd 20.10.
  const d = await dirs(t);
  t.teardown(await dockerConfigRestorer());
  const original = existsSync(DAEMON_JSON) ? JSON.parse(await readFile(DAEMON_JSON, 'utf8')) as { runtimes?: object } : {};
  await writeFile(DAEMON_JSON, JSON.stringify({ ...original, runtimes: { ...original.runtimes, 'dockcni-test-other': { path: 'runc' } } }));
  const net = await bridgeNetwork(t, d.confDir, d.root, 103);
  const rt = await runtime(t, d, ['--default']);
  const info = async () => JSON.parse((await sh('docker', ['info', '--format', '{{json .}}'])).stdout) as { DefaultRuntime: string };
  t.is((await info()).DefaultRuntime, rt);
  const name = uid('dcd');
  t.teardown(async () => { await sh('docker', ['rm', '-f', name, `${name}b`], { reject: false }); });
  const labelled = await sh('docker', ['run', '--rm', '--name', name, '--network', 'none', '-l', `dockcni.networks=${net.name}`, BUSYBOX_IMAGE, 'ip', '-4', '-o', 'addr', 'show', 'eth0']);
  t.regex(labelled.stdout, /inet 10\.231\.103\.\d+\/24/, 'no --runtime flag, and wired before its first instruction');
  const plain = await sh('docker', ['run', '--rm', '--name', `${name}b`, BUSYBOX_IMAGE, 'ip', '-4', '-o', 'addr', 'show', 'eth0']);
  t.regex(plain.stdout, /inet 172\.17\./, 'an unlabelled container on Docker\'s bridge, as with runc');
  await settled(d);
  const out = await dockcni(['runtime', 'uninstall', '--name', rt]);
  t.regex(out.stdout, new RegExp(`uninstalled runtime ${rt}`));
  // Without the key dockerd would keep the runtime it no longer lists as its default (and 20.10 crashes on that).
  t.is((JSON.parse(await readFile(DAEMON_JSON, 'utf8')) as Record<string, unknown>)['default-runtime'], 'runc', 'default-runtime handed back to runc, dockerd\'s own');
  t.is((await info()).DefaultRuntime, 'runc', out.stdout);
  t.is((await sh('docker', ['run', '--rm', BUSYBOX_IMAGE, 'true'])).exitCode, 0, 'and dockerd still starts containers');
  await assertNoLeftovers(t, d, net, []);
});

test('runtime install\'s options reach every container it wires: --allow-networks and --allow-args refuse what is not allowed, --pod-namespace and --runc are used', async (t) => {
  const d = await dirs(t);
  const record = path.join(d.root, 'calls.jsonl');
  const net = await bridgeNetwork(t, d.confDir, d.root, 104, [{ type: 'fixture', record }]);
  const other = await bridgeNetwork(t, d.confDir, d.root, 105);
  const rt = await runtime(t, d, ['--allow-networks', ` ${net.name} , nosuchnet`, '--allow-args', 'TEAM', '--pod-namespace', 'payments', '--runc', '/usr/sbin/runc']);
  const entry = (JSON.parse(await readFile(DAEMON_JSON, 'utf8')) as { runtimes: Record<string, { runtimeArgs: string[] }> }).runtimes[rt]!;
  t.true(entry.runtimeArgs.includes(`--dockcni-allow-networks=${net.name},nosuchnet`), 'the list is written without its spaces');
  t.true(entry.runtimeArgs.includes('--dockcni-runc=/usr/sbin/runc'));
  const notAllowed = await run(t, rt, ['--rm', '--network', 'none', '-l', `dockcni.networks=${other.name}`], ['true'], false);
  t.is(notAllowed.exitCode, 125);
  t.regex(notAllowed.stderr, new RegExp(`network ${other.name} is not allowed on this host`));
  const badArg = await run(t, rt, ['--rm', '--network', 'none', '-l', `dockcni.networks=${net.name}`, '-l', 'dockcni.args=COLOR=red'], ['true'], false);
  t.is(badArg.exitCode, 125);
  t.regex(badArg.stderr, /CNI_ARGS key COLOR is not allowed on this host.*use one of: TEAM/);
  const ok = await run(t, rt, ['--rm', '--network', 'none', '-l', `dockcni.networks=${net.name}`, '-l', 'dockcni.args=TEAM=blue'], ['ip', '-4', '-o', 'addr', 'show', 'eth0']);
  t.regex(ok.stdout, /inet 10\.231\.104\.\d+\/24/);
  const add = (await readFile(record, 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as { phase: string; command: string; env: Record<string, string> })
    .find((c) => c.phase === 'start' && c.command === 'ADD');
  t.regex(add?.env['CNI_ARGS'] ?? '', /K8S_POD_NAMESPACE=payments;/);
  t.regex(add?.env['CNI_ARGS'] ?? '', /;TEAM=blue$/);
  await settled(d);
  await assertNoLeftovers(t, d, net, []);
});

test('dockcni run --sandbox takes the sandbox path though the runtime is installed; --ip6 gives the app its IPv6 address on either path', async (t) => {
  const { d, net, rt } = await setup(t, 106);
  const dual = uid('tnd');
  const bridge = uid('dcbr');
  t.teardown(async () => { await sh('ip', ['link', 'del', bridge], { reject: false }); });
  await writeFile(path.join(d.confDir, `40-${dual}.conflist`), JSON.stringify({
    cniVersion: '1.0.0', name: dual,
    plugins: [
      { type: 'bridge', bridge, isGateway: true, capabilities: { ips: true }, ipam: { type: 'host-local', dataDir: net.ipamDir, ranges: [[{ subnet: '10.231.107.0/24' }], [{ subnet: 'fd00:dc:107::/64' }]] } },
      { type: 'firewall', backend: 'iptables' },
    ],
  }));
  const viaRuntime = await dockcni(['run', '--dockcni-runtime', rt, ...d.flags, '--network', dual, '--ip6', 'fd00:dc:107::50', '--rm', BUSYBOX_IMAGE, 'ip', '-o', 'addr', 'show', 'eth0'], { reject: false });
  t.is(viaRuntime.exitCode, 0, viaRuntime.stderr);
  t.regex(viaRuntime.stdout, /inet6 fd00:dc:107::50\/64/, 'the runtime path: the address asked for');
  t.regex(viaRuntime.stdout, /inet 10\.231\.107\.\d+\/24/, 'and one from the IPv4 range');
  const name = uid('dcsb');
  t.teardown(async () => { await sh('docker', ['rm', '-f', name, `${name}.sandbox`], { reject: false }); });
  await dockcni(['run', '--dockcni-runtime', rt, '--sandbox', '--sandbox-image', PAUSE_IMAGE, ...d.flags, '-d', '--name', name, '--network', dual, '--ip6', 'fd00:dc:107::51', BUSYBOX_IMAGE, 'sleep', '600']);
  const sandboxId = (await sh('docker', ['inspect', '-f', '{{.Id}}', `${name}.sandbox`])).stdout.trim();
  t.is((await sh('docker', ['inspect', '-f', '{{.HostConfig.NetworkMode}} {{.HostConfig.Runtime}}', name])).stdout.trim(), `container:${sandboxId} runc`, 'the app joins its sandbox\'s netns, not through the runtime');
  t.regex((await sh('docker', ['exec', name, 'ip', '-o', 'addr', 'show', 'eth0'])).stdout, /inet6 fd00:dc:107::51\/64/, 'the sandbox path: the address asked for');
  await sh('docker', ['rm', '-f', name]);
  const gc = await dockcni(['gc', '--sandbox-grace', '0', ...d.flags]);
  t.regex(gc.stdout, new RegExp(`removed run sandbox ${name}\\.sandbox \\(${sandboxId.slice(0, 12)}\\): its app is not running`));
  t.is((await sh('docker', ['inspect', `${name}.sandbox`], { reject: false })).exitCode, 1, 'the sandbox went with its app');
  await settled(d);
  await assertNoLeftovers(t, d, net, []);
});
