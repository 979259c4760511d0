import { addressOf, assertNoLeftovers, container, dirs, startDaemon, waitFor } from '../helpers/docker.js';
import { bridgeNetwork, dockcni, hostTest, sh } from '../helpers/host.js';

const test = hostTest();

/** The address `name` resolves to inside the container (busybox ping prints it), or undefined when it does not resolve. */
async function resolves(id: string, name: string): Promise<string | undefined> {
  const r = await sh('docker', ['exec', id, 'ping', '-c', '1', '-W', '1', name], { reject: false });
  return /^PING \S+ \((\d+\.\d+\.\d+\.\d+)\)/m.exec(r.stdout)?.[1];
}

test('names resolve per network: by name and alias where two containers share a network, not across; they follow a restart and a daemon killed and restarted', async (t) => {
  const d = await dirs(t);
  const front = await bridgeNetwork(t, d.confDir, d.root, 89);
  const back = await bridgeNetwork(t, d.confDir, d.root, 92);
  let daemon = await startDaemon(t, d);
  const labels = (nets: string, ...more: string[]) => ['--network', 'none', '-l', `dockcni.networks=${nets}`, ...more.flatMap((l) => ['-l', l])];
  const a = await container(t, labels(front.name));
  const b = await container(t, labels(`${front.name},${back.name}`, `dockcni.aliases.${back.name}=db`));
  const c = await container(t, labels(back.name));
  const name = async (id: string) => (await sh('docker', ['inspect', '-f', '{{.Name}}', id])).stdout.trim().slice(1);
  const na = await name(a);
  const nb = await name(b);
  const nc = await name(c);
  const bFront = await waitFor('b wired', () => addressOf(b));
  const bBack = await waitFor('b wired on back', () => addressOf(b, 'eth1'));
  await waitFor('c wired', () => addressOf(c));
  t.is(await waitFor('a resolves b', () => resolves(a, nb)), bFront, 'a finds b on front, at its front address');
  t.is(await resolves(c, nb), bBack, 'c finds b on back, at its back address');
  t.is(await resolves(c, 'db'), bBack, 'the alias on back');
  t.is(await resolves(a, 'db'), undefined, 'the back alias does not exist on front');
  t.is(await resolves(a, nc), undefined, 'a (front only) does not resolve c (back only)');
  t.truthy(await resolves(b, na));
  t.truthy(await resolves(b, nc));
  t.is(await resolves(a, na), await addressOf(a), 'its own name');

  // A restart with a new address: taking b's address first makes host-local hand b another one.
  await sh('docker', ['stop', '-t', '1', b]);
  await waitFor('b gone from a\'s hosts', async () => (await resolves(a, nb)) === undefined);
  const squatter = await container(t, labels(front.name, `dockcni.ip=${bFront}`));
  await waitFor('the squatter wired', () => addressOf(squatter));
  await sh('docker', ['start', b]);
  const moved = await waitFor('b wired again', () => addressOf(b));
  t.not(moved, bFront);
  t.is(await waitFor('a follows b', async () => { const r = await resolves(a, nb); return r === moved && r; }), moved, 'a resolves b at its new address');

  // The daemon killed: what changes meanwhile is caught up by its reconcile on restart.
  await daemon.kill();
  await sh('docker', ['stop', '-t', '1', c]);
  const e = await container(t, labels(back.name));
  daemon = await startDaemon(t, d);
  const ne = await name(e);
  const ea = await waitFor('e wired by the restarted daemon', () => addressOf(e));
  t.is(await waitFor('b resolves e', () => resolves(b, ne)), ea, 'a container started while the daemon was down resolves once it is back');
  t.true(await waitFor('c gone from b\'s hosts', async () => (await resolves(b, nc)) === undefined), 'c, stopped meanwhile, no longer resolves');
  for (const id of [a, b, e, squatter]) await sh('docker', ['rm', '-f', id]);
  await waitFor('all unwired', async () => JSON.parse((await dockcni(['ls', '-o', 'json', ...d.flags])).stdout).length === 0);
  await daemon.stop();
  await assertNoLeftovers(t, d, front, [a, b, c, e, squatter]);
  await assertNoLeftovers(t, d, back, []);
});

test('attach --alias and detach --network keep the names in step; dockcni run --network-alias resolves', async (t) => {
  const d = await dirs(t);
  const front = await bridgeNetwork(t, d.confDir, d.root, 93);
  const a = await container(t, ['--network', 'none']);
  const b = await container(t, ['--network', 'none']);
  await dockcni(['attach', a, '--network', front.name, ...d.flags]);
  await dockcni(['attach', b, '--network', front.name, '--alias', 'cache', ...d.flags]);
  t.is(await resolves(a, 'cache'), await addressOf(b));
  await dockcni(['detach', b, '--network', front.name, ...d.flags]);
  t.is(await resolves(a, 'cache'), undefined, 'detached: the alias is gone from its peers');
  t.is(await resolves(b, 'cache'), undefined, 'and from its own file');
  const r = await dockcni(['run', ...d.flags, '--network', front.name, '--network-alias', 'api', '--rm', '--sandbox-image', 'dockcni-test-pause:latest', 'dockcni-test-busybox:latest', 'ping', '-c', '1', '-W', '1', 'api'], { reject: false });
  t.is(r.exitCode, 0, r.stderr);
  t.regex(r.stdout, /^PING api \(10\.231\.93\.\d+\)/m, 'the app resolves its own alias');
  await dockcni(['detach', a, ...d.flags]);
  await assertNoLeftovers(t, d, front, [a, b]);
});

test('a hostname with a newline cannot add a line to its peers\' /etc/hosts: that container is refused with the fix, its peers\' files do not change', async (t) => {
  const d = await dirs(t);
  const net = await bridgeNetwork(t, d.confDir, d.root, 94);
  const daemon = await startDaemon(t, d);
  const labels = ['--network', 'none', '-l', `dockcni.networks=${net.name}`];
  const peer = await container(t, labels);
  await waitFor('the peer wired', () => addressOf(peer));
  const hostsOf = async (id: string) => (await sh('docker', ['exec', id, 'cat', '/etc/hosts'])).stdout;
  const before = await hostsOf(peer);
  const evil = await container(t, [...labels, '--hostname', 'x\n10.0.0.66 db']);
  await waitFor('the refusal in the log', async () => daemon.log().includes(evil.slice(0, 12)) && /invalid hostname/.test(daemon.log()));
  t.regex(daemon.log(), /invalid hostname \\"x\\\\n10\.0\.0\.66 db\\": not a DNS name.*fix="give the container a hostname of letters, digits and \\"-\\"/);
  t.is(await addressOf(evil), undefined, 'the container with the bad hostname got no interface');
  t.is(await hostsOf(peer), before, 'the peer\'s hosts file is as it was');
  t.notRegex(await hostsOf(peer), /10\.0\.0\.66/);
  await sh('docker', ['rm', '-f', peer, evil]);
  await waitFor('all unwired', async () => JSON.parse((await dockcni(['ls', '-o', 'json', ...d.flags])).stdout).filter((r: { networks: { state: string }[] }) => r.networks.some((n) => n.state !== 'failed')).length === 0);
  await daemon.stop();
  await assertNoLeftovers(t, d, net, [peer, evil]);
});
