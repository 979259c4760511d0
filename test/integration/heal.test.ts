import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { addressOf, assertNoLeftovers, container, dirs, httpFromOtherHost, pingFrom, startDaemon, waitFor, type RunningDaemon } from '../helpers/docker.js';
import { bridgeNetwork, dockcni, hostTest, sh } from '../helpers/host.js';

const test = hostTest();

const macOf = async (id: string) => (await sh('docker', ['exec', id, 'cat', '/sys/class/net/eth0/address'])).stdout.trim();

/** The nat rules and chains of one container (bridge masquerade, portmap DNAT): what `iptables -t nat -F` of CNI's chains would take. */
async function flushNatOf(id: string): Promise<void> {
  const lines = (await sh('iptables-save', ['-t', 'nat'])).stdout.split('\n').filter((l) => l.startsWith('-A ') && l.includes(id));
  const chains = new Set(lines.map((l) => /-j (CNI-[\w-]+)/.exec(l)?.[1]).filter((c): c is string => c !== undefined && !c.startsWith('CNI-HOSTPORT')));
  for (const line of lines) await sh('sh', ['-c', `iptables -w -t nat ${line.replace(/^-A /, '-D ')}`]);
  for (const chain of chains) await sh('iptables', ['-w', '-t', 'nat', '-F', chain]);
}

/** The firewall plugin's accept rules for one address, in CNI-FORWARD. */
async function dropForwardOf(address: string): Promise<void> {
  const lines = (await sh('iptables-save', ['-t', 'filter'])).stdout.split('\n').filter((l) => l.startsWith('-A CNI-FORWARD') && l.includes(`${address}/32`));
  for (const line of lines) await sh('sh', ['-c', `iptables -w ${line.replace(/^-A /, '-D ')}`]);
}

const repairsLogged = (daemon: RunningDaemon) => daemon.log().split('\n').filter((l) => l.includes('repaired')).length;

test('self-healing: flushed nat rules, dropped forward rules and a deleted bridge are repaired with the same addresses and MACs; a healthy container elsewhere is never touched; reload does it with the daemon stopped', async (t) => {
  const d = await dirs(t);
  const net = await bridgeNetwork(t, d.confDir, d.root, 95, [{ type: 'portmap', capabilities: { portMappings: true }, snat: true }], true);
  const record = path.join(d.root, 'other-calls.jsonl');
  const other = await bridgeNetwork(t, d.confDir, d.root, 96, [{ type: 'fixture', record }]);
  let daemon = await startDaemon(t, d, ['--check-interval', '1']);
  const a = await container(t, ['--network', 'none', '-l', `dockcni.networks=${net.name}`, '-l', 'dockcni.ports=18195:80'], ['httpd', '-f', '-p', '80', '-h', '/etc']);
  const b = await container(t, ['--network', 'none', '-l', `dockcni.networks=${net.name}`]);
  const c = await container(t, ['--network', 'none', '-l', `dockcni.networks=${other.name}`]);
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
  for (const id of [a, b, c]) await sh('docker', ['rm', '-f', id]);
  await waitFor('all unwired', async () => (JSON.parse((await dockcni(['ls', '-o', 'json', ...d.flags])).stdout) as unknown[]).length === 0);
  await daemon.stop();
  await assertNoLeftovers(t, d, net, [a, b]);
  await assertNoLeftovers(t, d, other, [c]);
});
