import { mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { BIN, FIXTURE_PLUGINS, ROOT, tempDir } from '../helpers/fixtures.js';
import { dockcni, hostTest, netns, sh } from '../helpers/host.js';
import { container, dirs } from '../helpers/docker.js';

const test = hostTest();

interface Call { phase: string; command: string; env: Record<string, string>; stdin: Record<string, unknown> }
const calls = async (record: string): Promise<Call[]> => (await import('node:fs/promises')).readFile(record, 'utf8')
  .then((t) => t.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Call).filter((c) => c.phase === 'start'));

/** A network of the recording fixture plugin; `caps` declares capabilities. */
async function fixtureNet(confDir: string, record: string, name: string, cniVersion = '1.0.0', caps: Record<string, boolean> = {}) {
  await mkdir(confDir, { recursive: true });
  await writeFile(path.join(confDir, `10-${name}.conflist`), JSON.stringify({ cniVersion, name, plugins: [{ type: 'fixture', record, capabilities: caps }] }));
  await writeFile(record, '', { flag: 'a' });
}

test('an error is reported once, with its fix; usage errors point to --help; --help lists run; completion and examples exist', async (t) => {
  const r = await dockcni(['inspect', 'nosuchcontainer', '--state-dir', await tempDir(t)], { reject: false });
  t.is(r.exitCode, 1);
  t.is((r.stderr.match(/no container "nosuchcontainer" is wired by dockcni/g) ?? []).length, 1, r.stderr);
  t.is((r.stderr.match(/fix: see `dockcni ls`/g) ?? []).length, 1);
  const usage = await dockcni(['nosuchcommand'], { reject: false });
  t.is(usage.exitCode, 2);
  t.is(usage.stderr.trim(), 'dockcni: Unknown command: nosuchcommand\nrun `dockcni --help` for usage');
  const help = await dockcni(['--help']);
  t.regex(help.stdout, /dockcni run \[docker run flags\] IMAGE/);
  t.regex(help.stdout, /dockcni completion/);
  t.regex((await dockcni(['completion'])).stdout, /complete -o bashdefault -o default -F _dockcni_yargs_completions dockcni/);
  // What the completion script asks on each <TAB>: the words typed so far, the program's name first.
  const complete = async (...words: string[]) => (await dockcni(['--get-yargs-completions', 'dockcni', ...words])).stdout.split('\n').filter(Boolean);
  t.deepEqual(await complete('networks', ''), ['ls', 'inspect', 'validate', 'create', 'rm'], 'a group\'s commands');
  t.deepEqual(await complete('cni', 'd'), ['del']);
  t.true((await complete('')).includes('run') && (await complete('')).includes('runtime'), 'every command, run included');
  t.deepEqual(await complete('ru'), ['run', 'runtime']);
  for (const command of [['daemon'], ['ls'], ['inspect'], ['gc'], ['attach'], ['detach'], ['doctor'], ['networks', 'ls'], ['networks', 'inspect'], ['networks', 'validate'],
    ['cni', 'add'], ['cni', 'check'], ['cni', 'del'], ['cni', 'gc'], ['cni', 'status'], ['cni', 'version']]) {
    t.regex((await dockcni([...command, '--help'])).stdout, /Examples:\n\s+dockcni /, command.join(' '));
  }
  t.regex((await dockcni(['run', '--help'])).stdout, /^dockcni run \[DOCKCNI FLAGS\]/);
});

test('run as a non-root user: one message saying dockcni needs root', async (t) => {
  const dir = await tempDir(t);
  await mkdir(path.join(dir, 'attachments'), { mode: 0o700 });
  const r = await execa('su', ['-s', '/bin/sh', 'nobody', '-c', `node ${BIN} ls --state-dir ${dir}`], { reject: false });
  t.is(r.exitCode, 1);
  t.is(r.stderr.trim(), `dockcni: permission denied: ${dir}/attachments\n  fix: run dockcni as root (sudo dockcni …): it manages network namespaces, iptables and CNI state under /var/lib and /run`);
});

test('cni commands take NETCONFPATH, CNI_PATH, CNI_ARGS, CAP_ARGS and CNI_IFNAME from the environment, as cnitool does', async (t) => {
  const dir = await tempDir(t);
  const confDir = path.join(dir, 'net.d');
  const record = path.join(dir, 'calls.jsonl');
  await fixtureNet(confDir, record, 'envnet', '1.0.0', { portMappings: true });
  const ns = await netns(t);
  const env = {
    NETCONFPATH: confDir, CNI_PATH: FIXTURE_PLUGINS, CNI_ARGS: 'FOO=bar', CNI_IFNAME: 'net7',
    CAP_ARGS: '{"portMappings":[{"hostPort":18777,"containerPort":80,"protocol":"tcp"}]}',
  };
  const flags = ['--cache-dir', path.join(dir, 'cache'), '--run-dir', path.join(dir, 'run'), '--container-id', 'envtest'];
  await dockcni(['cni', 'add', 'envnet', ns, ...flags], { env });
  const [add] = await calls(record);
  t.like(add?.env, { CNI_ARGS: 'FOO=bar', CNI_IFNAME: 'net7', CNI_PATH: FIXTURE_PLUGINS, CNI_CONTAINERID: 'envtest' });
  t.deepEqual(add?.stdin['runtimeConfig'], { portMappings: [{ hostPort: 18777, containerPort: 80, protocol: 'tcp' }] });
  t.deepEqual(await readdir(path.join(dir, 'cache/results')), ['envnet-envtest-net7']);
  await dockcni(['cni', 'del', 'envnet', ns, ...flags], { env });
  t.deepEqual(await readdir(path.join(dir, 'cache/results')), []);
});

test('cni gc, status and version on a 1.1.0 network; cni add, as cnitool, passes only declared capabilities to plugins', async (t) => {
  const dir = await tempDir(t);
  const confDir = path.join(dir, 'net.d');
  const record = path.join(dir, 'calls.jsonl');
  await fixtureNet(confDir, record, 'newnet', '1.1.0');
  const ns = await netns(t);
  const common = ['--conf-dir', confDir, '--cni-path', FIXTURE_PLUGINS, '--cache-dir', path.join(dir, 'cache'), '--run-dir', path.join(dir, 'run')];
  t.is((await dockcni(['cni', 'status', 'newnet', ...common])).stdout.trim(), 'ready');
  t.regex((await dockcni(['cni', 'version', 'newnet', ...common])).stdout, /^fixture: 0\.3\.0, 0\.3\.1, 0\.4\.0, 1\.0\.0, 1\.1\.0$/m);
  await dockcni(['cni', 'add', 'newnet', ns, '--container-id', 'keepme', ...common]);
  await dockcni(['cni', 'add', 'newnet', ns, '--container-id', 'dropme', '--ifname', 'eth1', ...common]);
  const gc = await dockcni(['cni', 'gc', 'newnet', '--valid-attachments', '[{"containerID":"keepme","ifname":"eth0"}]', ...common]);
  t.is(gc.stdout.trim(), 'deleted newnet/dropme/eth1');
  t.deepEqual(await readdir(path.join(dir, 'cache/results')), ['newnet-keepme-eth0']);
  const sent = (await calls(record)).find((c) => c.command === 'GC');
  t.deepEqual(sent?.stdin['cni.dev/valid-attachments'], [{ containerID: 'keepme', ifname: 'eth0' }, { containerID: 'keepme', ifname: 'eth0' }]);
  const bad = await dockcni(['cni', 'gc', 'newnet', '--valid-attachments', '{"oops"', ...common], { reject: false });
  t.regex(bad.stderr, /invalid --valid-attachments "\{\\"oops\\"": not JSON/);
  await dockcni(['cni', 'del', 'newnet', ns, '--container-id', 'keepme', ...common]);
  const cap = await dockcni(['cni', 'add', 'newnet', ns, '--container-id', 'capx', '--cap-args', '{"bandwidth":{"ingressRate":1000}}', ...common], { reject: false });
  t.is(cap.exitCode, 0, 'cni add passes capability args as cnitool does: undeclared ones are no error');
  const capAdd = (await calls(record)).filter((c) => c.command === 'ADD').at(-1);
  t.is(capAdd?.env['CNI_CONTAINERID'], 'capx');
  t.is(capAdd?.stdin['runtimeConfig'], undefined, 'and no plugin got the bandwidth it does not declare');
  await dockcni(['cni', 'del', 'newnet', ns, '--container-id', 'capx', ...common]);
});

test('attach with a capability no plugin declares fails before any plugin runs; ls, inspect, --trace, modes of state files', async (t) => {
  const d = await dirs(t);
  const record = path.join(d.root, 'calls.jsonl');
  await fixtureNet(d.confDir, record, 'plain');
  const c = await container(t, ['--network', 'none']);
  const refused = await dockcni(['attach', c, '--network', 'plain', '-p', '18778:80', ...d.flags], { reject: false });
  t.is(refused.exitCode, 1);
  t.regex(refused.stderr, /network "plain" has no plugin that declares the "portMappings" capability/);
  t.regex(refused.stderr, /fix: add "capabilities": \{"portMappings": true\}/);
  t.deepEqual(await calls(record), []);
  const attached = await dockcni(['attach', c, '--network', 'plain', '--trace', ...d.flags]);
  t.regex(attached.stderr, /── ADD fixture \(.*fixture\) ──/);
  t.regex(attached.stdout, /eth0 plain 10\.1\.0\.2\/24/);
  const ls = await dockcni(['ls', ...d.flags]);
  t.regex(ls.stdout, new RegExp(`^${c.slice(0, 12)} +\\S+ +plain +eth0 +10\\.1\\.0\\.2/24 +wired$`, 'm'));
  const listed = JSON.parse((await dockcni(['ls', '-o', 'json', ...d.flags])).stdout) as { containerId: string; origin: string }[];
  t.deepEqual(listed.map((r) => [r.containerId, r.origin]), [[c, 'attach']]);
  const inspected = JSON.parse((await dockcni(['inspect', c.slice(0, 8), ...d.flags])).stdout) as { results: { network: string; result: { ips: { address: string }[] } }[] };
  t.is(inspected.results[0]?.result.ips[0]?.address, '10.1.0.2/24');
  for (const [file, mode] of [['state/attachments', 0o700], [`state/attachments/${c}.json`, 0o600], ['cache/results', 0o700], [`cache/results/plain-${c}-eth0`, 0o600], ['run/netns', 0o700]] as const) {
    t.is((await stat(path.join(d.root, file))).mode & 0o777, mode, file);
  }
  const detached = await dockcni(['detach', c, '--trace', ...d.flags]);
  t.regex(detached.stderr, /── DEL fixture/);
  t.is((await dockcni(['gc', '--trace', ...d.flags])).stdout.trim(), 'nothing to remove');
});

test('networks inspect prints the conflist dockcni will use; the embedded one by name', async (t) => {
  const dir = await tempDir(t);
  const text = await dockcni(['networks', 'inspect', 'dockcni', '--conf-dir', dir]);
  t.regex(text.stdout, /^NAME +dockcni\nVERSION +1\.0\.0\nSOURCE +<embedded>\nPLUGINS +bridge → firewall → portmap\n/);
  const r = await dockcni(['networks', 'inspect', 'dockcni', '-o', 'json', '--conf-dir', dir]);
  const shown = JSON.parse(r.stdout) as { name: string; source: string; plugins: string[]; config: { plugins: { type: string; bridge?: string }[] } };
  t.is(shown.name, 'dockcni');
  t.is(shown.source, '<embedded>');
  t.deepEqual(shown.plugins, ['bridge', 'firewall', 'portmap']);
  t.is(shown.config.plugins[0]?.bridge, 'dockcni0');
});

test('examples/programmatic.mjs: the library adds and deletes the embedded network in a netns', async (t) => {
  const ns = await netns(t);
  const hadBridge = (await sh('ip', ['link', 'show', 'dockcni0'], { reject: false })).exitCode === 0;
  t.teardown(async () => { if (!hadBridge) await sh('ip', ['link', 'del', 'dockcni0'], { reject: false }); });
  const r = await execa('node', [path.join(ROOT, 'examples/programmatic.mjs'), ns], { cwd: ROOT });
  t.regex(r.stdout, /^addresses: 10\.199\.\d+\.\d+\/16\ndeleted$/);
  t.regex(r.stderr, /ADD bridge: exit 0 in/);
  t.regex(r.stderr, /DEL bridge: exit 0 in/);
});

test('flags as Docker users write them, numbers checked when parsed, errors naming what was typed, checks that check', async (t) => {
  const d = await dirs(t);
  const record = path.join(d.root, 'calls.jsonl');
  await fixtureNet(d.confDir, record, 'ports', '1.0.0', { portMappings: true, ips: true, mac: true });
  const c = await container(t, ['--network', 'none']);
  // Repeated -p (as with docker run) and a comma list mean the same; --mac-address as run and docker spell it.
  await dockcni(['attach', c, '--network', 'ports', '-p', '18801:80', '-p', '18802:443,18803:53/udp', '--mac-address', '02:00:00:00:00:0a', ...d.flags]);
  const [add] = await calls(record);
  t.deepEqual(add?.stdin['runtimeConfig'], {
    portMappings: [{ hostPort: 18801, containerPort: 80, protocol: 'tcp' }, { hostPort: 18802, containerPort: 443, protocol: 'tcp' }, { hostPort: 18803, containerPort: 53, protocol: 'udp' }],
    mac: '02:00:00:00:00:0a',
  });
  t.regex((await dockcni(['inspect', c, '-o', 'text', ...d.flags])).stdout, /NETWORK +IFACE +ADDRESSES +MAC +STATE\nports +eth0 +10\.1\.0\.2\/24 +- +wired/);
  t.is((await dockcni(['detach', c, ...d.flags])).exitCode, 0);
  for (const [args, message] of [
    [['gc', '--timeout', 'abc'], /invalid --timeout "abc": must be a number of seconds, at least 0\.1/],
    [['doctor', '--timeout', '0'], /invalid --timeout "0"/],
    [['gc', '--sandbox-grace', 'soon'], /invalid --sandbox-grace "soon"/],
    [['daemon', '--concurrency', '0'], /invalid --concurrency "0": must be a whole number of containers, at least 1/],
    [['run', '-p', '99999:80', 'img'], /invalid -p\/--publish "99999:80": port 99999 is outside 1-65535/],
    [['run', '--timeout', 'x', 'img'], /invalid --timeout "x"/],
  ] as const) {
    const r = await dockcni([...args], { reject: false });
    t.not(r.exitCode, 0, args.join(' '));
    t.regex(r.stderr, message, args.join(' '));
  }
  t.regex((await dockcni(['gc', '--timeout', 'abc'], { reject: false })).stderr, /\n {2}fix: write e\.g\. --timeout 120$/m, 'with its fix');
  const missing = await dockcni(['networks', 'validate', '--conf-dir', path.join(d.root, 'nonexistent')], { reject: false });
  t.is(missing.exitCode, 1);
  t.regex(missing.stderr, /conf dir .*nonexistent does not exist: nothing there to validate/);
  const { writeFile: write } = await import('node:fs/promises');
  await write(path.join(d.confDir, '20-typo.conflist'), JSON.stringify({ cniVersion: '1.0.0', name: 'typo', plugins: [{ type: 'fixture', ipam: { type: 'host-locall' } }] }));
  const typo = await dockcni(['networks', 'validate', ...d.flags], { reject: false });
  t.is(typo.exitCode, 1);
  t.regex(typo.stdout, /20-typo\.conflist \(typo\): IPAM plugin of fixture: CNI plugin "host-locall" not found/);
  const emptyPath = await tempDir(t);
  const noPlugins = await dockcni(['networks', 'validate', '--conf-dir', d.confDir, '--cni-path', emptyPath], { reject: false });
  t.regex(noPlugins.stdout, /<embedded> \(dockcni\): CNI plugin "bridge" not found/, 'the embedded network is checked too');
  const version = JSON.parse((await dockcni(['version', '-o', 'json', ...d.flags])).stdout) as { dockcni: string; node: string; docker: { api?: string }; plugins: { plugin: string; versions?: string[] }[] };
  t.is(version.node, process.version);
  t.regex(version.docker.api ?? '', /^1\.\d+$/);
  t.deepEqual(version.plugins.find((p) => p.plugin === 'bridge')?.versions?.includes('1.0.0'), true);
});

/** Code in Markdown: fenced blocks' lines and inline `spans`, where commands are shown to be typed. */
function codeOf(markdown: string): string[] {
  const out: string[] = [];
  let fenced = false;
  for (const line of markdown.split('\n')) {
    if (line.trimStart().startsWith('```')) { fenced = !fenced; continue; }
    if (fenced) out.push(line.split(' #')[0] ?? '');
    else out.push(...[...line.matchAll(/`([^`]+)`/g)].map((m) => m[1] ?? ''));
  }
  return out;
}

test('every dockcni command and flag the README and the examples show exists in the CLI', async (t) => {
  const { readFile } = await import('node:fs/promises');
  const docs = ['README.md', 'examples/run-walkthrough.md', 'examples/networks/README.md', 'examples/cluster/README.md', 'src/README.md'];
  const groups = new Set(['cni', 'networks', 'runtime', 'cluster']);
  const shown = new Map<string, Set<string>>();
  for (const doc of docs) {
    for (const code of codeOf(await readFile(path.join(ROOT, doc), 'utf8'))) {
      for (const m of code.matchAll(/(?:^|[\s;&|(])dockcni ([a-z]+)(?: ([a-z]+))?([^;&|)]*)/g)) {
        const [first = '', second, rest = ''] = [m[1], m[2], m[3]];
        if (first === 'run' || first === 'completion') continue; // run's flags are docker run's; completion takes none
        const command = groups.has(first) && second ? `${first} ${second}` : first;
        const tail = groups.has(first) ? rest : `${second ?? ''}${rest}`;
        const key = `${doc}: ${command}`;
        const flags = shown.get(key) ?? new Set<string>();
        for (const f of tail.matchAll(/(?:^|\s|\[)(--[a-z][a-z0-9-]*|-[a-zA-Z])\b/g)) flags.add(f[1] ?? '');
        shown.set(key, flags);
      }
    }
  }
  t.true(shown.size > 20, `found ${shown.size} commands in the docs`);
  const helps = new Map<string, string>();
  for (const [where, flags] of shown) {
    const command = where.split(': ')[1] ?? '';
    if (!helps.has(command)) {
      const r = await dockcni([...command.split(' '), '--help'], { reject: false });
      helps.set(command, r.exitCode === 0 && !/Unknown|Not enough/.test(r.stderr) ? r.stdout : '');
    }
    const help = helps.get(command) ?? '';
    t.not(help, '', `${where}: \`dockcni ${command}\` is a command`);
    for (const flag of flags) t.regex(help, new RegExp(`(^|[\\s,])${flag.replace(/-/g, '\\-')}[\\s,]`, 'm'), `${where}: \`dockcni ${command}\` has ${flag}`);
  }
});

test('help as a newcomer meets it: usage errors point at the right --help; shared path flags grouped apart; every flag described; ls -q', async (t) => {
  const cases = [
    [['cni', 'add'], /Not enough non-option arguments: got 0, need at least 2\nrun `dockcni cni add --help` for usage/],
    [['cni', 'foo'], /unknown cni command "foo": use one of add, check, del, gc, status, version\nrun `dockcni cni --help` for usage/],
    [['networks'], /name a networks command: ls, inspect, validate, create, rm\nrun `dockcni networks --help` for usage/],
    [['ls', '--bogus'], /Unknown argument: bogus\nrun `dockcni ls --help` for usage/],
  ] as const;
  for (const [args, message] of cases) {
    const r = await dockcni([...args], { reject: false });
    t.is(r.exitCode, 2, args.join(' '));
    t.regex(r.stderr, message, args.join(' '));
  }
  for (const command of [['ls'], ['gc'], ['daemon'], ['cni', 'add'], ['attach'], ['version']]) {
    const help = (await dockcni([...command, '--help'])).stdout;
    t.regex(help, /Paths \(shared by every command\):\n\s+--conf-dir/, command.join(' '));
    const own = help.slice(help.indexOf('Options:'), help.indexOf('Examples:'));
    for (const line of own.split('\n').filter((l) => /^\s+(-\w, )?--[a-z]/.test(l))) {
      t.regex(line, /^\s+(-\w, )?--[\w-]+(, --?[\w-]+)*\s{2,}\S/, `${command.join(' ')}: a description for ${line.trim().split(/\s+/)[0]}`);
    }
  }
  t.notRegex((await dockcni(['ls', '--help'])).stdout, /--timeout|--trace/, 'ls runs no plugin: no plugin flags');
  t.is((await dockcni(['ls', '-q', '--state-dir', await tempDir(t)])).stdout, '');
});

test('the Docker endpoint: the API client follows the current docker context as the docker CLI does', async (t) => {
  const { createHash } = await import('node:crypto');
  const { writeFile: write } = await import('node:fs/promises');
  const dir = await tempDir(t);
  const id = createHash('sha256').update('elsewhere').digest('hex');
  await mkdir(path.join(dir, 'contexts', 'meta', id), { recursive: true });
  await write(path.join(dir, 'config.json'), JSON.stringify({ currentContext: 'elsewhere' }));
  const socket = path.join(dir, 'nobody-here.sock');
  await write(path.join(dir, 'contexts', 'meta', id, 'meta.json'), JSON.stringify({ Name: 'elsewhere', Endpoints: { docker: { Host: `unix://${socket}` } } }));
  const env = { DOCKER_CONFIG: dir };
  const cli = await sh('env', [`DOCKER_CONFIG=${dir}`, 'docker', 'version', '--format', '{{.Server.Version}}'], { reject: false });
  t.regex(cli.stderr, new RegExp(socket.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')), 'the docker CLI goes to the context\'s socket');
  const doctor = JSON.parse((await dockcni(['doctor', '-o', 'json', '--state-dir', path.join(dir, 'state'), '--run-dir', path.join(dir, 'run')], { reject: false, env })).stdout) as { checks: { check: string; found: string }[] };
  t.regex(doctor.checks.find((c) => c.check === 'docker')?.found ?? '', new RegExp(`cannot reach the Docker daemon at unix://${socket.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} \\(from docker context elsewhere\\)`));
});

test('npm run demo\'s script: two containers wired on the embedded network ping each other, then everything goes', async (t) => {
  const hadBridge = (await sh('ip', ['link', 'show', 'dockcni0'], { reject: false })).exitCode === 0;
  t.teardown(async () => { if (!hadBridge) await sh('ip', ['link', 'del', 'dockcni0'], { reject: false }); });
  const r = await execa('node', [path.join(ROOT, 'examples/demo.mjs')], { cwd: ROOT, env: { DEMO_IMAGE: 'dockcni-test-busybox:latest', DEMO_SANDBOX_IMAGE: 'dockcni-test-pause:latest' }, timeout: 120_000 });
  t.regex(r.stdout, /demo-a eth0 10\.199\.\d+\.\d+\ndemo-b eth0 10\.199\.\d+\.\d+/);
  t.regex(r.stdout, /2 packets transmitted, 2 packets received/);
  t.regex(r.stdout, /removed run sandbox demo-a\.sandbox/);
  t.deepEqual((await sh('docker', ['ps', '-aq', '--filter', 'name=demo-'])).stdout.trim(), '');
});
