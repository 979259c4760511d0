// npm run bench: every figure measured in one run on this machine. Targets come from the issues; each
// line says whether it was met. Nothing here is a test: numbers vary with the machine's load.
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { execa } from 'execa';
import { ProcNetnsGuard } from '../../src/cni/netns-guard.js';
import { ChildProcessCommands } from '../../src/host-commands.js';
import { CniEngine } from '../../src/cni/engine.js';
import { SpawnPluginExec } from '../../src/cni/spawn-plugin-exec.js';
import { FileLocks } from '../../src/cni/lock.js';
import { parseConfList } from '../../src/cni/conf.js';
import { dockerdPid } from '../../src/runtime/install.js';
import { BIN, ROOT } from '../helpers/fixtures.js';
import { clusterAcrossHosts, clusterAtScale } from './cluster.js';
import { median, ms, now, pct, report, reported, timed, verdict } from './stats.js';

const PLUGINS = '/usr/lib/cni';
/** The reference runtime, built by test/host/setup.js (which `npm run bench` runs first). */
const CNITOOL = path.join(tmpdir(), 'dockcni-test-cnitool', 'cnitool');
const IMAGE = 'dockcni-test-busybox:latest';
const PAUSE = 'dockcni-test-pause:latest';
const CYCLES = Number(process.env['BENCH_CYCLES'] ?? 1000);
/**
 * In batches: dockerd 20.10 deadlocked once (libnetwork getSvcRecords, seen in its goroutine dump)
 * removing 50 --network none containers in one `docker rm -f`.
 */
async function removeAll(ids: readonly string[]): Promise<void> {
  for (let i = 0; i < ids.length; i += 10) await execa('docker', ['rm', '-f', ...ids.slice(i, i + 10)]);
}

async function workspace(octet: number) {
  const root = await mkdtemp(path.join(tmpdir(), 'dockcni-bench-'));
  const confDir = path.join(root, 'net.d');
  await execa('mkdir', ['-p', confDir]);
  const name = `bench${octet}`;
  const conf = { cniVersion: '1.0.0', name, plugins: [
    { type: 'bridge', bridge: `dcbench${octet}`, isGateway: true, ipMasq: true, ipam: { type: 'host-local', dataDir: path.join(root, 'ipam'), ranges: [[{ subnet: `10.232.${octet}.0/24` }]] } },
    { type: 'firewall', backend: 'iptables' },
    { type: 'portmap', capabilities: { portMappings: true } },
  ] };
  await writeFile(path.join(confDir, `${name}.conflist`), JSON.stringify(conf));
  const flags = ['--conf-dir', confDir, '--cni-path', PLUGINS, '--cache-dir', path.join(root, 'cache'), '--state-dir', path.join(root, 'state'), '--run-dir', path.join(root, 'run')];
  return {
    root, name, flags, bytes: Buffer.from(JSON.stringify(conf)),
    cleanup: async () => {
      await execa('ip', ['link', 'del', `dcbench${octet}`], { reject: false });
      await rm(root, { recursive: true, force: true });
    },
  };
}

async function engineCycles() {
  const ws = await workspace(101);
  await execa('ip', ['netns', 'add', 'dcbench']);
  const list = parseConfList(ws.bytes, 'bench');
  const rt = { containerId: 'bench', netns: '/var/run/netns/dcbench', ifName: 'eth0', args: [], capabilityArgs: { portMappings: [{ hostPort: 18999, containerPort: 80, protocol: 'tcp' }] } };
  const n = 20;
  // A process in the netns, as the daemon and the runtime know one (the container's): the engine reads
  // its links from /proc instead of starting nsenter for the ADD's pre-check. Without one (`cni add`,
  // cnitool's contract) that is one process more per ADD, measured apart below.
  const holder = execa('ip', ['netns', 'exec', 'dcbench', 'sleep', '3600'], { reject: false });
  const holderPid = holder.pid ?? 0;
  // `ip netns exec` enters the netns and then execs sleep in the same process.
  const inNetns = async () => (await stat(`/proc/${holderPid}/ns/net`).catch(() => undefined))?.ino === (await stat('/var/run/netns/dcbench')).ino;
  while (!(await inNetns())) await new Promise((r) => setTimeout(r, 10));
  const withPid = { ...rt, netnsPid: holderPid };
  // The engine's own time: a cycle minus its plugin processes' lifetimes (spawn to exit, as its exec
  // measures them). Whether its spawn costs more than the bare minimum is measured next, on a plugin
  // that does nothing: real plugins vary by more than the difference.
  let pluginMs = 0;
  let calls = 0;
  const engine = new CniEngine({ exec: new SpawnPluginExec(), locks: new FileLocks(path.join(ws.root, 'locks')), pluginPath: [PLUGINS],
    cacheDir: path.join(ws.root, 'cache'), timeoutMs: 60_000, trace: (r) => { pluginMs += r.durationMs; calls += 1; }, netns: new ProcNetnsGuard(new ChildProcessCommands()) });
  const own: number[] = [];
  const nsenter: number[] = [];
  for (let i = 0; i < n; i++) {
    for (const [into, addRt] of [[own, withPid], [nsenter, rt]] as const) {
      pluginMs = 0;
      calls = 0;
      const cycle = await timed(async () => {
        await engine.add(list, addRt);
        await engine.del(list.name, rt, list);
      });
      into.push((cycle - pluginMs) / calls);
    }
  }
  const noop = path.join(ws.root, 'noop');
  await writeFile(noop, '#!/bin/sh\nexec cat >/dev/null\n', { mode: 0o755 });
  const call = { file: noop, env: { CNI_COMMAND: 'VERSION' }, stdin: '{"cniVersion":"1.0.0"}', timeoutMs: 10_000 };
  const exec = new SpawnPluginExec();
  const spawned: number[] = [];
  const bare: number[] = [];
  for (let i = 0; i < 200; i++) {
    spawned.push(await timed(() => exec.run(call)));
    bare.push(await timed(() => bareRun({ ...call, plugin: 'noop', command: 'VERSION' })));
  }
  const spawnExtra = median(spawned.map((x, i) => x - bare[i]!));
  const perCall = median(own) + spawnExtra;
  report(`engine, in process, ADD+DEL of bridge+host-local+firewall+portmap (${n} cycles): its own time ${ms(median(own))} per plugin call; its spawn against a bare one ${ms(spawnExtra)} per call (200 pairs on a no-op plugin)`);
  report(`  engine overhead per plugin call: ${ms(perCall)} (target < 2 ms: ${verdict(perCall < 2)}); without a known pid (cni add) ${ms(median(nsenter))} own time per call (one nsenter per ADD)`);
  holder.kill();
  await holder;
  // As processes, against the reference runtime: libcni 1.1.2's cnitool doing the same ADD and DEL.
  const cli: number[] = [];
  const reference: number[] = [];
  const cnitoolEnv = { NETCONFPATH: path.join(ws.root, 'net.d'), CNI_PATH: PLUGINS };
  for (let i = 0; i < 10; i++) {
    cli.push(await timed(async () => {
      await execa('node', [BIN, 'cni', 'add', ws.name, 'dcbench', '--container-id', 'benchcli', ...ws.flags]);
      await execa('node', [BIN, 'cni', 'del', ws.name, 'dcbench', '--container-id', 'benchcli', ...ws.flags]);
    }));
    reference.push(await timed(async () => {
      await execa(CNITOOL, ['add', ws.name, '/var/run/netns/dcbench'], { env: cnitoolEnv });
      await execa(CNITOOL, ['del', ws.name, '/var/run/netns/dcbench'], { env: cnitoolEnv });
    }));
  }
  report(`dockcni cni add + del as two processes: ${ms(median(cli))} per cycle vs libcni's cnitool ${ms(median(reference))} (median of 10 interleaved): ${(median(cli) / median(reference)).toFixed(2)}x`);
  await execa('ip', ['netns', 'del', 'dcbench']);
  await ws.cleanup();
}

/** A plugin call with nothing but spawn, a pipe in and the output read: the floor of any runtime in Node. */
function bareRun(call: { readonly file: string; readonly plugin: string; readonly command: string; readonly env: Readonly<Record<string, string>>; readonly stdin: string }): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(call.file, [], { env: { ...process.env, ...call.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${call.plugin} ${call.command} exited ${code}: ${Buffer.concat(out).toString()}`))));
    child.stdin.end(call.stdin);
  });
}

/**
 * Each command's own start-up: wall time minus `node -e 0`, measured in alternation with it. `cni add`'s
 * start-up ends where its first plugin starts (a no-op plugin notes the time), as does `run`'s at its
 * first `docker` call (a stand-in `docker` notes it and fails). Then what each heavy module costs to
 * load in a fresh process, so the next person knows where the time goes.
 */
async function cliStartup() {
  const root = await mkdtemp(path.join(tmpdir(), 'dockcni-bench-cli-'));
  const plugins = path.join(root, 'plugins');
  const confDir = path.join(root, 'net.d');
  const fakeBin = path.join(root, 'bin');
  await execa('mkdir', ['-p', plugins, confDir, fakeBin]);
  const pluginStarted = path.join(root, 'plugin-started');
  await writeFile(path.join(plugins, 'noop'), `#!/bin/sh\ndate +%s%N > ${pluginStarted}\ncat >/dev/null\n[ "$CNI_COMMAND" = VERSION ] && exec echo '{"cniVersion":"1.0.0","supportedVersions":["1.0.0"]}'\necho '{"cniVersion":"1.0.0"}'\n`, { mode: 0o755 });
  await writeFile(path.join(confDir, 'noop.conflist'), JSON.stringify({ cniVersion: '1.0.0', name: 'noop', plugins: [{ type: 'noop' }] }));
  const dockerCalled = path.join(root, 'docker-called');
  await writeFile(path.join(fakeBin, 'docker'), `#!/bin/sh\ndate +%s%N > ${dockerCalled}\nexit 1\n`, { mode: 0o755 });
  await execa('ip', ['netns', 'add', 'dcbenchcli']);
  const flags = ['--conf-dir', confDir, '--cni-path', plugins, '--cache-dir', path.join(root, 'cache'), '--run-dir', path.join(root, 'run'), '--state-dir', path.join(root, 'state')];
  /** ms from the spawn of `node args` to the time the file names (a nanosecond clock written by the stand-in). */
  const until = async (args: readonly string[], stamp: string, env: Record<string, string> = {}) => {
    const t0 = Date.now() * 1e6;
    await execa('node', args, { reject: false, env });
    return (Number(await readFile(stamp, 'utf8')) - t0) / 1e6;
  };
  const rounds = 15;
  const node: number[] = [];
  const own: [string, number, number[]][] = [['--help', 60, []], ['ls', 60, []], ['cni version, to its plugin', 60, []], ['networks ls', 60, []], ['completion (one <TAB>)', 60, []], ['--version', 60, []],
    ['cni add, to its first plugin', 80, []], ['run, to its first docker call', 80, []]];
  const at = (name: string) => own.find(([n]) => n === name)![2];
  for (let i = 0; i < rounds; i++) {
    node.push(await timed(() => execa('node', ['-e', '0'])));
    at('--help').push(await timed(() => execa('node', [BIN, '--help'])));
    at('ls').push(await timed(() => execa('node', [BIN, 'ls', ...flags])));
    at('cni version, to its plugin').push(await until([BIN, 'cni', 'version', 'noop', ...flags], pluginStarted));
    at('networks ls').push(await timed(() => execa('node', [BIN, 'networks', 'ls', ...flags])));
    at('completion (one <TAB>)').push(await timed(() => execa('node', [BIN, '--get-yargs-completions', 'dockcni', 'networks', ''])));
    at('--version').push(await timed(() => execa('node', [BIN, '--version'])));
    at('cni add, to its first plugin').push(await until([BIN, 'cni', 'add', 'noop', 'dcbenchcli', ...flags], pluginStarted));
    await execa('node', [BIN, 'cni', 'del', 'noop', 'dcbenchcli', ...flags]);
    at('run, to its first docker call').push(await until([BIN, 'run', '--dockcni-quiet', IMAGE, 'true'], dockerCalled, { PATH: `${fakeBin}:${process.env['PATH'] ?? ''}` }));
  }
  const base = median(node);
  report(`CLI start-up, each command's own time over node -e 0 (${ms(base)}), median of ${rounds}:`);
  for (const [name, target, times] of own) {
    const over = median(times) - base;
    report(`  ${name}: ${ms(over)} (target <= ${target} ms: ${verdict(over <= target)})`);
  }
  const cost = async (what: string, code: string) => {
    const times: number[] = [];
    for (let i = 0; i < 7; i++) times.push(Number((await execa('node', ['--input-type=module', '-e', `const t = performance.now(); ${code}; process.stdout.write(String(performance.now() - t));`], { cwd: ROOT })).stdout));
    return `${what} ${ms(median(times))}`;
  };
  const dist = (p: string) => JSON.stringify(path.join(ROOT, 'dist', p));
  report(`  what each loads in a fresh process: ${[
    await cost('the CLI bundle\'s entry (yargs included)', `await import(${dist('cli/main.js')})`),
    await cost('yargs unbundled', "await import('yargs')"),
    await cost('the engine', `await import(${dist('src/cni/create-engine.js')})`),
    await cost('the wiring (engine, records, pins, firewall)', `await import(${dist('src/wiring/create-wirer.js')})`),
    await cost('dockerode', `(await import(${dist('src/docker/load-dockerode.js')})).loadDockerode()`),
    await cost('ora', "await import('ora')"),
    await cost('the runtime\'s Node half with its wiring (its check mode)', `process.argv = [process.argv[0], 'main', 'check']; await import(${dist('runtime/main.mjs')})`),
  ].join('; ')}`);
  await execa('ip', ['netns', 'del', 'dcbenchcli']);
  await rm(root, { recursive: true, force: true });
}

async function runVsDocker() {
  const ws = await workspace(102);
  const dockcni = [];
  const docker = [];
  for (let i = 0; i < 7; i++) {
    docker.push(await timed(() => execa('docker', ['run', '--rm', IMAGE, 'true'])));
    dockcni.push(await timed(() => execa('node', [BIN, 'run', ...ws.flags, '--network', ws.name, '--sandbox-image', PAUSE, '--dockcni-quiet', '--rm', IMAGE, 'true'])));
  }
  const ratio = median(dockcni) / median(docker);
  report(`dockcni run --rm true ${ms(median(dockcni))} vs docker run --rm true (Docker bridge) ${ms(median(docker))}: ${ratio.toFixed(2)}x (target <= 1.3x: ${verdict(ratio <= 1.3)})`);
  await ws.cleanup();
}

/**
 * Runtime mode, interleaved with the runs it is compared to: a labelled container through the runtime
 * vs Docker's bridge, and an unlabelled one through the runtime vs plain runc. The runtime's timing file
 * says what its Node half took per container (start-up included) and the plugins' part of that.
 */
async function runtimeVsDocker() {
  const ws = await workspace(104);
  const name = 'dockcni-bench';
  const timingFile = path.join(ws.root, 'timing.jsonl');
  // The installer has no flag for the timing file: it is a bench instrument, added to the entry by hand.
  await execa('node', [BIN, 'runtime', 'install', '--name', name, ...ws.flags]);
  const daemonJson = JSON.parse(await readFile('/etc/docker/daemon.json', 'utf8')) as { runtimes: Record<string, { runtimeArgs: string[] }> };
  daemonJson.runtimes[name]!.runtimeArgs.push(`--dockcni-timing-file=${timingFile}`);
  await writeFile('/etc/docker/daemon.json', JSON.stringify(daemonJson, null, 2));
  process.kill(dockerdPid(), 'SIGHUP');
  const listed = async () => JSON.stringify((JSON.parse((await execa('docker', ['info', '--format', '{{json .Runtimes}}'])).stdout) as Record<string, unknown>)[name]).includes(timingFile);
  while (!(await listed())) await new Promise((r) => setTimeout(r, 50));
  const times = { bridge: [] as number[], labelled: [] as number[], runc: [] as number[], passThrough: [] as number[], run: [] as number[], bridge2: [] as number[] };
  /** Until `docker run --rm` returned, for the labelled runs: their DEL goes on in the background after it. */
  const returned: number[] = [];
  const settled = async () => {
    while ((await readdir(path.join(ws.root, 'state', 'attachments')).catch(() => [])).length > 0) await new Promise((r) => setTimeout(r, 20));
  };
  // Like with like: Docker's own teardown of a --rm container is inside its `docker run`; the runtime's
  // DEL runs in the background after it returns, so each run is timed until its DEL is done as well.
  const run = async (into: number[], args: string[], returnedInto?: number[]) => {
    const t0 = now();
    await execa('docker', ['run', '--rm', ...args, IMAGE, 'true']);
    returnedInto?.push(now() - t0);
    await settled();
    into.push(now() - t0);
  };
  // Pairs run back to back, in alternating order, and the ratio is the median of the pairs' ratios: the
  // machine's slow drift and the order within a pair cancel out, which a ratio of two medians does not do.
  for (let i = 0; i < 25; i++) {
    const labelled = () => run(times.labelled, ['--runtime', name, '--network', 'none', '-l', `dockcni.networks=${ws.name}`], returned);
    const bridge = () => run(times.bridge, []);
    const passThrough = () => run(times.passThrough, ['--runtime', name]);
    const runc = () => run(times.runc, ['--runtime', 'runc']);
    const dockcniRun = async () => {
      const t0 = now();
      await execa('node', [BIN, 'run', '--dockcni-runtime', name, ...ws.flags, '--network', ws.name, '--dockcni-quiet', '--rm', IMAGE, 'true']);
      await settled();
      times.run.push(now() - t0);
    };
    const bridge2 = () => run(times.bridge2, []);
    for (const step of i % 2 === 0 ? [bridge, labelled, runc, passThrough, bridge2, dockcniRun] : [labelled, bridge, passThrough, runc, dockcniRun, bridge2]) await step();
  }
  const paired = (a: number[], b: number[]) => median(a.map((x, i) => x / b[i]!));
  const labelled = paired(times.labelled, times.bridge);
  const passThrough = paired(times.passThrough, times.runc);
  report(`runtime: docker run --rm --runtime dockcni --network none -l dockcni.networks=… true, until its DEL is done too, ${ms(median(times.labelled))} vs Docker's bridge ${ms(median(times.bridge))}: ${labelled.toFixed(2)}x, median of 25 pairs (target <= 1.3x: ${verdict(labelled <= 1.3)})`);
  report(`  until docker run returns (the DEL still running): ${ms(median(returned))}, ${paired(returned, times.bridge).toFixed(2)}x`);
  const viaRun = paired(times.run, times.bridge2);
  report(`  dockcni run --rm true through the runtime ${ms(median(times.run))} vs docker run --rm true ${ms(median(times.bridge2))}: ${viaRun.toFixed(2)}x (target <= 1.3x: ${verdict(viaRun <= 1.3)}; dockcni's own CLI start-up is in it)`);
  report(`  no label: --runtime dockcni ${ms(median(times.passThrough))} vs --runtime runc ${ms(median(times.runc))}: ${passThrough.toFixed(2)}x (target <= 1.05x: ${verdict(passThrough <= 1.05)})`);
  const lines = (await readFile(timingFile, 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as { op: string; tookMs: number; pluginMs: number });
  for (const op of ['add', 'del']) {
    const of = lines.filter((l) => l.op === op);
    report(`  per container, ${op === 'add' ? 'create (ADD)' : 'delete (DEL)'}: dockcni's Node process ${ms(median(of.map((l) => l.tookMs)))} (its start-up included), of which the plugins' own time ${ms(median(of.map((l) => l.pluginMs)))}`);
  }
  await execa('node', [BIN, 'runtime', 'uninstall', '--name', name]);
  await execa('node', [BIN, 'gc', '--sandbox-grace', '0', ...ws.flags]);
  await ws.cleanup();
}

/** A line of the daemon's JSON log, with the fields the bench reads. */
interface DaemonLine { readonly msg: string; readonly id?: string; readonly time: string; readonly tookMs: number; readonly pluginMs: number; readonly namesMs: number }

/** `dockcni daemon` as shipped, with JSON logs, on a workspace: each log line goes to `onLine`; resolves once it has reconciled. */
async function benchDaemon(ws: { flags: string[] }, extra: readonly string[], onLine: (line: DaemonLine) => void) {
  const daemon = execa('node', [...DAEMON_NODE_FLAGS, BIN, 'daemon', ...ws.flags, '--log-format', 'json', ...extra], { buffer: false, reject: false, all: true });
  let reconciled = false;
  eachLine(daemon.all, (text) => {
    if (!text.startsWith('{')) return;
    const line = JSON.parse(text) as DaemonLine;
    if (line.msg === 'reconciled') reconciled = true;
    onLine(line);
  });
  while (!reconciled) await new Promise((r) => setTimeout(r, 50));
  // In an object: an awaited execa process would be waited for until it exits.
  return { daemon };
}

/**
 * Name resolution's cost: 50 containers started one after another on one network, each making the
 * daemon rewrite the hosts files of everyone already there. From each `wired` line: the handler's time
 * (wired and resolvable by all peers) and the same without its names step.
 */
async function namesAtFifty() {
  const ws = await workspace(105);
  const wired = new Map<string, DaemonLine>();
  const { daemon } = await benchDaemon(ws, [], (line) => { if (line.msg === 'wired' && line.id !== undefined) wired.set(line.id, line); });
  const ids: string[] = [];
  for (let i = 0; i < 50; i++) {
    const id = (await execa('docker', ['run', '-d', '--network', 'none', '-l', `dockcni.networks=${ws.name}`, IMAGE, 'sleep', '600'])).stdout.trim();
    ids.push(id);
    while (!wired.has(id.slice(0, 12))) await new Promise((r) => setTimeout(r, 10));
  }
  const lines = ids.map((id) => wired.get(id.slice(0, 12))!);
  const withNames = median(lines.map((l) => l.tookMs));
  const without = median(lines.map((l) => l.tookMs - l.namesMs));
  const ratio = withNames / without;
  report(`names: 50 containers on one network, start to wired and resolvable by all peers p50 ${ms(withNames)} vs ${ms(without)} without the hosts-file step: ${ratio.toFixed(2)}x (target <= 1.2x: ${verdict(ratio <= 1.2)}); that step p50 ${ms(median(lines.map((l) => l.namesMs)))}, at the 50th container ${ms(lines.at(-1)!.namesMs)}`);
  await removeAll(ids);
  await new Promise((r) => setTimeout(r, 3000));
  daemon.kill('SIGTERM');
  await daemon;
  await execa('node', [BIN, 'gc', '--sandbox-grace', '0', ...ws.flags]);
  await ws.cleanup();
}

/**
 * The check loop's cost with 200 wired containers: the daemon's CPU (its own and its children's, i.e.
 * iptables-save) per round, and the time from a flushed nat chain to the repair.
 */
async function healing() {
  const ws = await workspace(106);
  const intervalS = 2;
  const wired = new Set<string>();
  const repaired = new Map<string, number>();
  const { daemon } = await benchDaemon(ws, ['--check-interval', String(intervalS)], (line) => {
    if (line.msg === 'wired' && line.id !== undefined) wired.add(line.id);
    if (line.msg === 'repaired' && line.id !== undefined) repaired.set(line.id, Date.parse(line.time));
  });
  const ids: string[] = [];
  for (let i = 0; i < 200; i += 10) {
    ids.push(...await Promise.all(Array.from({ length: 10 }, async () => (await execa('docker', ['run', '-d', '--network', 'none', '-l', `dockcni.networks=${ws.name}`, IMAGE, 'sleep', '600'])).stdout.trim())));
  }
  while (!ids.every((id) => wired.has(id.slice(0, 12)))) await new Promise((r) => setTimeout(r, 50));
  await new Promise((r) => setTimeout(r, 3000));
  const pid = daemon.pid ?? 0;
  const window = 10;
  const c0 = await processCpu(pid);
  await new Promise((r) => setTimeout(r, window * intervalS * 1000));
  const c1 = await processCpu(pid);
  const perRound = ((c1.self - c0.self) + (c1.children - c0.children)) / window;
  report(`self-healing, 200 wired containers, a check every ${intervalS} s: ${perRound.toFixed(2)} CPU-s per round (the daemon ${((c1.self - c0.self) / window).toFixed(2)} s, iptables-save ${((c1.children - c0.children) / window).toFixed(2)} s), ${((perRound / 200) * 1000).toFixed(2)} ms per container (target < 2 CPU-s per round: ${verdict(perRound < 2)})`);
  const latencies: number[] = [];
  for (const id of ids.slice(0, 10)) {
    const lines = (await execa('iptables-save', ['-t', 'nat'])).stdout.split('\n').filter((l) => l.startsWith('-A ') && l.includes(id));
    const t0 = Date.now();
    for (const line of lines) await execa('sh', ['-c', `iptables -w -t nat ${line.replace(/^-A /, '-D ')}`]);
    while (!repaired.has(id.slice(0, 12))) await new Promise((r) => setTimeout(r, 20));
    latencies.push(repaired.get(id.slice(0, 12))! - t0);
  }
  report(`  from a container's nat rules deleted to its repair: p50 ${ms(pct(latencies, 0.5))}, p99 ${ms(pct(latencies, 0.99))} (the check interval bounds it: ${intervalS} s)`);
  await removeAll(ids);
  await new Promise((r) => setTimeout(r, 5000));
  daemon.kill('SIGTERM');
  await daemon;
  await execa('node', [BIN, 'gc', '--sandbox-grace', '0', ...ws.flags]);
  await ws.cleanup();
}

async function rssOf(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
}

/** The daemon as the shipped systemd unit and sidecar image launch it (see examples/). */
const DAEMON_NODE_FLAGS = ['--max-semi-space-size=1'];

/** CPU seconds used so far: by the whole machine (all cores), and by one process and its reaped children. */
async function machineCpu(): Promise<number> {
  const fields = (await readFile('/proc/stat', 'utf8')).split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal: busy is all but idle and iowait.
  return (fields.reduce((a, b) => a + b, 0) - fields[3]! - fields[4]!) / 100;
}
async function processCpu(pid: number): Promise<{ self: number; children: number }> {
  const f = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ').map(Number);
  return { self: (f[11]! + f[12]!) / 100, children: (f[13]! + f[14]!) / 100 };
}

/**
 * Each complete line of a process's output, once, as it arrives: rescanning the whole output while
 * polling would load the machine during the burst it measures.
 */
function eachLine(stream: NodeJS.ReadableStream | null | undefined, onLine: (line: string) => void): void {
  let pending = '';
  stream?.on('data', (d: Buffer) => {
    const lines = (pending + d.toString()).split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) onLine(line);
  });
}

async function daemonBurst() {
  const ws = await workspace(103);
  const wired = new Map<string, DaemonLine>();
  const unwired = new Set<string>();
  const { daemon } = await benchDaemon(ws, ['--concurrency', '8'], (line) => {
    if (line.msg === 'wired' && line.id !== undefined) wired.set(line.id, line);
    if (line.msg === 'unwired' && line.id !== undefined) unwired.add(line.id);
  });
  // Docker's own start events, with Docker's own timestamps: where "event-to-wired" starts.
  const events = execa('docker', ['events', '--filter', 'type=container', '--filter', 'event=start', '--format', '{{.ID}} {{.TimeNano}}'], { buffer: false, reject: false });
  const startedAt = new Map<string, number>();
  eachLine(events.stdout, (line) => {
    const [id, nano] = line.split(' ');
    if (id && nano) startedAt.set(id.slice(0, 12), Number(BigInt(nano) / 1000n) / 1000);
  });
  const pid = daemon.pid ?? 0;
  // Idle means settled: V8 gives back what start-up and the first reconcile used after ~10 s of quiet.
  await new Promise((r) => setTimeout(r, 15_000));
  const idle = await rssOf(pid);
  const isWired = (id: string) => wired.has(id.slice(0, 12));
  /** From Docker's start event to the daemon's `wired` line, and the plugins' part of it. */
  const timing = (id: string) => {
    const line = wired.get(id.slice(0, 12));
    const event = startedAt.get(id.slice(0, 12));
    if (!line || event === undefined) throw new Error(`bench: ${id.slice(0, 12)} has no ${line ? 'start event' : 'wired line'}`);
    return { latency: Date.parse(line.time) - event, pluginMs: line.pluginMs };
  };
  // Done means: Docker's bridge has its address when `docker run -d` returns; a CNI container when the
  // daemon logs it wired (after the ADD). Each is then checked inside the container, outside the timing:
  // polling with `docker exec` during the burst would load the machine it measures.
  const always = () => true;
  const burst = async (args: string[], label: string, done: (id: string) => boolean) => {
    const ids: string[] = [];
    const [cpu0, daemon0] = [await machineCpu(), await processCpu(pid)];
    const t0 = now();
    await Promise.all(Array.from({ length: 50 }, async (_, i) => {
      ids.push((await execa('docker', ['run', '-d', '--name', `bench-${label}-${i}`, ...args, IMAGE, 'sleep', '600'])).stdout.trim());
    }));
    while (!ids.every(done)) await new Promise((res) => setTimeout(res, 10));
    const took = now() - t0;
    const [cpu1, daemon1] = [await machineCpu(), await processCpu(pid)];
    for (const id of ids) {
      const r = await execa('docker', ['exec', id, 'ip', '-4', '-o', 'addr', 'show', 'eth0'], { reject: false });
      if (!/inet /.test(r.stdout)) throw new Error(`bench: ${label} container ${id.slice(0, 12)} has no address`);
    }
    await removeAll(ids);
    // The next burst starts on a quiet machine: not while the daemon still runs the DELs of this one.
    if (done !== always) while (!ids.every((id) => unwired.has(id.slice(0, 12)))) await new Promise((res) => setTimeout(res, 50));
    await new Promise((res) => setTimeout(res, 2000));
    return { ids, took, cpu: cpu1 - cpu0, daemonCpu: daemon1.self - daemon0.self, pluginCpu: daemon1.children - daemon0.children };
  };
  // One container at a time on a quiet host: dockcni's own share without CPU contention.
  const quiet: number[] = [];
  for (let i = 0; i < 15; i++) {
    const id = (await execa('docker', ['run', '-d', '--network', 'none', '-l', `dockcni.networks=${ws.name}`, IMAGE, 'sleep', '600'])).stdout.trim();
    while (!isWired(id)) await new Promise((res) => setTimeout(res, 10));
    const { latency, pluginMs } = timing(id);
    quiet.push(latency - pluginMs);
    await removeAll([id]);
  }
  report(`one container at a time: event-to-wired minus the plugins' own time, p50 ${ms(pct(quiet, 0.5))}, p90 ${ms(pct(quiet, 0.9))} (target p50 <= 10 ms: ${verdict(pct(quiet, 0.5) <= 10)})`);
  // Three rounds, each Docker's bridge then CNI, so a slow moment of the machine does not decide the ratio.
  const rounds = [];
  for (let round = 0; round < 3; round++) {
    const docker = await burst([], `docker${round}`, always);
    const cni = await burst(['--network', 'none', '-l', `dockcni.networks=${ws.name}`], `cni${round}`, isWired);
    rounds.push({ docker, cni, ratio: cni.took / docker.took });
  }
  const middle = [...rounds].sort((a, b) => a.ratio - b.ratio)[1]!;
  report(`burst of 50 docker run -d until all have an address, median of 3 rounds: CNI via the daemon ${ms(middle.cni.took)} vs Docker's bridge ${ms(middle.docker.took)}: ${middle.ratio.toFixed(2)}x (target <= 1.2x: ${verdict(middle.ratio <= 1.2)}); rounds ${rounds.map((r) => `${r.ratio.toFixed(2)}x`).join(', ')}`);
  report(`  CPU over that round, all cores: CNI ${middle.cni.cpu.toFixed(1)} s (the daemon ${middle.cni.daemonCpu.toFixed(2)} s, its plugins ${middle.cni.pluginCpu.toFixed(2)} s) vs bridge ${middle.docker.cpu.toFixed(1)} s, on ${availableParallelism()} cores`);
  const latencies: number[] = [];
  const chains: number[] = [];
  const overheads: number[] = [];
  for (const id of rounds.flatMap((r) => r.cni.ids)) {
    const { latency, pluginMs } = timing(id);
    latencies.push(latency);
    chains.push(pluginMs);
    overheads.push(latency - pluginMs);
  }
  const overhead = pct(overheads, 0.5);
  report(`  during the bursts (150 containers): event-to-wired p50 ${ms(pct(latencies, 0.5))}, p99 ${ms(pct(latencies, 0.99))}; the chain's own time (its plugins, same containers) p50 ${ms(pct(chains, 0.5))}, p99 ${ms(pct(chains, 0.99))}`);
  report(`  latency minus its chain p50 ${ms(overhead)}, p99 ${ms(pct(overheads, 0.99))} (target p50 <= 10 ms: ${verdict(overhead <= 10)}): waiting for CPU on a saturated machine`);
  // Start/stop cycles on a few containers: each start is an ADD, each stop a DEL.
  const cycling = await Promise.all(Array.from({ length: 8 }, async (_, i) =>
    (await execa('docker', ['create', '--name', `bench-cycle-${i}`, '--network', 'none', '-l', `dockcni.networks=${ws.name}`, IMAGE, 'sleep', '600'])).stdout.trim()));
  await new Promise((r) => setTimeout(r, 15_000));
  const before = await rssOf(pid);
  const t0 = now();
  await Promise.all(cycling.map(async (id, i) => {
    for (let k = i; k < CYCLES; k += cycling.length) {
      await execa('docker', ['start', id]);
      await execa('docker', ['kill', id]);
    }
  }));
  await new Promise((r) => setTimeout(r, 3000));
  const peak = await rssOf(pid);
  // Growth is what stays: V8 gives back heap it grew for the churn once the daemon is idle again.
  await new Promise((r) => setTimeout(r, 15_000));
  const settled = await rssOf(pid);
  report(`daemon RSS (node ${DAEMON_NODE_FLAGS.join(' ')}, as shipped), idle 15 s after start-up: ${idle.toFixed(1)} MB (target <= 60 MB: ${verdict(idle <= 60)})`);
  // The baseline is the idle daemon before any work: what the bursts left is growth too.
  report(`  after 3 bursts of 50 and ${CYCLES} start/stop cycles (${((now() - t0) / 1000).toFixed(0)} s): ${before.toFixed(1)} MB before the cycles, ${peak.toFixed(1)} MB right after, ${settled.toFixed(1)} MB 15 s later; growth over idle ${(settled - idle).toFixed(1)} MB (target <= 5 MB: ${verdict(settled - idle <= 5)})`);
  await removeAll(cycling);
  await new Promise((r) => setTimeout(r, 2000));
  daemon.kill('SIGTERM');
  events.kill('SIGTERM');
  await Promise.all([daemon, events]);
  await execa('node', [BIN, 'gc', '--sandbox-grace', '0', ...ws.flags]);
  await ws.cleanup();
}

/**
 * The README quotes no number typed by hand: its block between the markers below is this run's output,
 * written with BENCH_README=1 (with the machine it ran on). A run of some sections only says so.
 */
async function writeReadme(sections: readonly string[], all: boolean): Promise<void> {
  const file = path.join(ROOT, 'README.md');
  const text = await readFile(file, 'utf8');
  const [begin, end] = ['<!-- bench:begin -->', '<!-- bench:end -->'];
  if (!text.includes(begin) || !text.includes(end)) throw new Error(`bench: ${file} has no ${begin} … ${end} block to write`);
  const docker = (await execa('docker', ['version', '--format', '{{.Server.Version}}'])).stdout.trim();
  const kernel = (await execa('uname', ['-r'])).stdout.trim();
  const block = [
    begin,
    `\`npm run bench\`${all ? '' : ` (sections ${sections.join(', ')})`}, ${new Date().toISOString().slice(0, 10)}: ${availableParallelism()} cores, Node ${process.version}, Docker ${docker}, kernel ${kernel}.`,
    '', '```', ...reported, '```', end,
  ].join('\n');
  await writeFile(file, `${text.slice(0, text.indexOf(begin))}${block}${text.slice(text.indexOf(end) + end.length)}`);
}

// BENCH_ONLY=runtimeVsDocker (comma-separated) runs only those sections.
const only = process.env['BENCH_ONLY']?.split(',');
const sections = [engineCycles, cliStartup, runVsDocker, runtimeVsDocker, namesAtFifty, healing, daemonBurst, clusterAcrossHosts, clusterAtScale].filter((s) => only === undefined || only.includes(s.name));
for (const section of sections) await section();
if (process.env['BENCH_README'] === '1') await writeReadme(sections.map((s) => s.name), only === undefined);
