import { readdir } from 'node:fs/promises';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import { execa } from 'execa';
import { BIN } from '../helpers/fixtures.js';
import { BUSYBOX_IMAGE, PAUSE_IMAGE, bridgeNetwork, hostTest, reservations, sh, uid, type TestNetwork } from '../helpers/host.js';
import { addressOf, assertNoLeftovers, dirs, httpFromOtherHost, pingFrom, waitFor, type Dirs } from '../helpers/docker.js';

const test = hostTest();

function run(d: Dirs, args: string[], options: { reject?: boolean } = {}) {
  return execa('node', [BIN, 'run', ...d.flags, '--sandbox-image', PAUSE_IMAGE, '--dockcni-quiet', ...args], { reject: options.reject ?? false, timeout: 60_000 });
}

/** `run -d` apps removed at teardown, their sandboxes by the dirs' gc. */
async function detached(t: ExecutionContext, d: Dirs, args: string[], command: string[] = ['sleep', '600']): Promise<string> {
  const r = await run(d, ['-d', '--name', uid('dr'), ...args, BUSYBOX_IMAGE, ...command], { reject: true });
  const id = r.stdout.trim().split('\n').at(-1) ?? '';
  t.teardown(async () => { await sh('docker', ['rm', '-f', id], { reject: false }); });
  return id;
}

async function dockcniContainers(): Promise<string[]> {
  return (await sh('docker', ['ps', '-aq', '--filter', 'label=dockcni.role'])).stdout.split('\n').filter(Boolean);
}

async function noLeftovers(t: ExecutionContext, d: Dirs, net: TestNetwork): Promise<void> {
  t.deepEqual(await dockcniContainers(), [], 'sandbox and app containers');
  await assertNoLeftovers(t, d, net, []);
}

test('the app sees its address from its first instruction; --rm leaves nothing', async (t) => {
  const d = await dirs(t);
  const net = await bridgeNetwork(t, d.confDir, d.root, 31);
  const r = await run(d, ['--rm', '--network', net.name, BUSYBOX_IMAGE, 'ip', '-4', '-o', 'addr', 'show', 'eth0']);
  t.is(r.exitCode, 0, r.stderr);
  t.regex(r.stdout.split('\n')[0] ?? '', /inet 10\.231\.31\.\d+\/24/);
  await noLeftovers(t, d, net);
});

test('the app\'s exit status is dockcni\'s', async (t) => {
  const d = await dirs(t);
  const net = await bridgeNetwork(t, d.confDir, d.root, 32);
  const r = await run(d, ['--rm', '--network', net.name, BUSYBOX_IMAGE, 'sh', '-c', 'exit 7']);
  t.is(r.exitCode, 7);
  await noLeftovers(t, d, net);
});

test('SIGINT during an attached run reaches the app and everything is cleaned up', async (t) => {
  const d = await dirs(t);
  const net = await bridgeNetwork(t, d.confDir, d.root, 33);
  const child = run(d, ['--rm', '--network', net.name, BUSYBOX_IMAGE, 'sh', '-c', 'trap "echo got-int; exit 130" INT TERM; echo ready; while :; do sleep 1; done']);
  let out = '';
  child.stdout?.on('data', (c: Buffer) => { out += c.toString(); });
  await waitFor('the app to start', async () => out.includes('ready'));
  child.kill('SIGINT');
  const r = await child;
  t.is(r.exitCode, 130);
  t.regex(out, /got-int/);
  await noLeftovers(t, d, net);
});

test('two run -d containers ping each other; --ip gives the address; -p reaches httpd from another host', async (t) => {
  const d = await dirs(t);
  const net = await bridgeNetwork(t, d.confDir, d.root, 34, undefined, true);
  const web = await detached(t, d, ['--network', net.name, '--ip', '10.231.34.50', '-p', '18134:80'], ['httpd', '-f', '-p', '80', '-h', '/etc']);
  const client = await detached(t, d, ['--network', net.name]);
  t.is(await addressOf(web), '10.231.34.50');
  t.true(await pingFrom(client, '10.231.34.50'));
  t.true(await pingFrom(web, (await addressOf(client)) ?? ''));
  t.regex(await httpFromOtherHost(t, 18134, 34), /^HTTP\/1\.[01] 200/);
  t.is((await reservations(net)).length, 2);
  // The app goes; gc (no daemon here) finishes the job.
  await sh('docker', ['rm', '-f', web, client]);
  const gc = await execa('node', [BIN, 'gc', '--sandbox-grace', '0', ...d.flags]);
  t.regex(gc.stdout, /removed run sandbox/);
  await noLeftovers(t, d, net);
});

test('two --network flags give eth0 and eth1 on different subnets', async (t) => {
  const d = await dirs(t);
  const a = await bridgeNetwork(t, d.confDir, d.root, 35);
  const b = await bridgeNetwork(t, d.confDir, d.root, 36, []);
  const r = await run(d, ['--rm', '--network', a.name, '--network', b.name, BUSYBOX_IMAGE, 'ip', '-4', '-o', 'addr']);
  t.is(r.exitCode, 0, r.stderr);
  t.regex(r.stdout, /eth0 +inet 10\.231\.35\.\d+\/24/);
  t.regex(r.stdout, /eth1 +inet 10\.231\.36\.\d+\/24/);
  await noLeftovers(t, d, a);
  await noLeftovers(t, d, b);
});

test('unknown network, failing plugin, busy static IP: non-zero exit, a clear message, nothing left', async (t) => {
  const d = await dirs(t);
  const net = await bridgeNetwork(t, d.confDir, d.root, 37);
  const unknown = await run(d, ['--rm', '--network', 'nosuchnet', BUSYBOX_IMAGE, 'true']);
  t.is(unknown.exitCode, 125);
  t.regex(unknown.stderr, /no network named "nosuchnet"/);

  const failing = await bridgeNetwork(t, d.confDir, d.root, 38, [{ type: 'fixture', fixture: { fail: { code: 7, msg: 'vlan 5000 out of range' }, failOn: ['ADD'] } }]);
  const failed = await run(d, ['--rm', '--network', failing.name, BUSYBOX_IMAGE, 'true']);
  t.is(failed.exitCode, 125);
  t.regex(failed.stderr, /plugin "fixture" failed \(ADD\) \[CNI code 7: invalid network configuration\]: vlan 5000 out of range/);
  t.deepEqual(await reservations(failing), []);

  const holder = await detached(t, d, ['--network', net.name, '--ip', '10.231.37.9']);
  const busy = await run(d, ['--rm', '--network', net.name, '--ip', '10.231.37.9', BUSYBOX_IMAGE, 'true']);
  t.is(busy.exitCode, 125);
  t.regex(busy.stderr, /"10\.231\.37\.9": already held by container \S+ \([0-9a-f]{12}\)\n {2}fix: pick another address/);
  t.deepEqual(await reservations(net), ['10.231.37.9']);
  await sh('docker', ['rm', '-f', holder]);
  await execa('node', [BIN, 'gc', '--sandbox-grace', '0', ...d.flags]);
  await noLeftovers(t, d, net);
  t.deepEqual((await readdir(path.join(d.root, 'cache/results')).catch(() => [])), []);
});

test('the app sees --dns, --add-host, --hostname and --mac-address, which dockcni applies for it; --trace shows the CNI exchange', async (t) => {
  const d = await dirs(t);
  const net = await bridgeNetwork(t, d.confDir, d.root, 39);
  const r = await run(d, ['--rm', '--trace', '--network', net.name, '--dns', '10.231.39.53', '--dns-search', 'corp.example', '--add-host', 'db.internal:10.231.39.9',
    '--hostname', 'webhost', '--mac-address', '02:42:0a:e7:25:0b', BUSYBOX_IMAGE, 'sh', '-c', 'cat /etc/resolv.conf /etc/hosts; hostname; ip -o link show eth0']);
  t.is(r.exitCode, 0, r.stderr);
  t.regex(r.stdout, /^nameserver 10\.231\.39\.53$/m);
  t.regex(r.stdout, /^search corp\.example$/m);
  t.regex(r.stdout, /^10\.231\.39\.9\tdb\.internal$/m);
  t.regex(r.stdout, /^10\.231\.39\.\d+\twebhost( \S+)?\t# dockcni$/m, 'its own name on its CNI address');
  t.regex(r.stdout, /^webhost$/m);
  t.regex(r.stdout, /link\/ether 02:42:0a:e7:25:0b/);
  t.regex(r.stderr, /── ADD bridge \(\/usr\/lib\/cni\/bridge\) ──[\s\S]*"mac": "02:42:0a:e7:25:0b"/);
  t.regex(r.stderr, /── DEL bridge/);
  await noLeftovers(t, d, net);
});
