import { createHash } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, rmdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { BIN } from './fixtures.js';
import { BUSYBOX_IMAGE, PLUGIN_DIR, sh, sleep, waitFor } from './shell.js';
import { TestEtcd } from './etcd.js';

/**
 * Three Docker hosts on this machine, for the cluster tests and the bench: each a network namespace
 * (`dcct1`…) on an underlay bridge (`dcctu`, 10.247.0.0/24, host N at 10.247.0.1N), with a mount and
 * UTS namespace of its own held by one process (so its dockerd, its dockcni daemon and the CLI run in
 * one "machine", /sys showing its own links), its own dockerd (own data and exec roots and socket,
 * `--bridge=none`, cgroups under /dcctN), its own dockcni daemon and dirs, and an etcd member; FORWARD
 * is DROP in each host, as Docker leaves it. `down` removes all of it, whatever state a failed run left,
 * and is run before `up` too. Everything is named dcct*: nothing else on the machine is touched.
 */
export const HOSTS = [1, 2, 3] as const;
const UNDERLAY_BRIDGE = 'dcctu';
const UNDERLAY_RULE = ['FORWARD', '-i', UNDERLAY_BRIDGE, '-o', UNDERLAY_BRIDGE, '-m', 'comment', '--comment', 'dockcni cluster test underlay', '-j', 'ACCEPT'];
const SHIM_SOCKETS = '/run/containerd/s';
/** An image the tests' busybox, saved once from the machine's dockerd and loaded into each host's. */
const IMAGE_TAR = '/var/lib/dcct-image.tar';

const ns = (n: number) => `dcct${n}`;
const runDir = (n: number) => `/run/dcct${n}`;
const libDir = (n: number) => `/var/lib/dcct${n}`;
const execRoot = (n: number) => `${runDir(n)}/x`;
export const underlayAddress = (n: number) => `10.247.0.${10 + n}`;

/** dockerd 20.10's shims name their sockets after containerd's address, namespace and container id. */
const shimSocket = (n: number, id: string) => path.join(SHIM_SOCKETS, createHash('sha256').update(`${execRoot(n)}/containerd/containerd.sock/moby/${id}`).digest('hex'));

// The holder: `ip netns exec` gave it a mount namespace with /sys for the host's netns; cgroups are
// mounted again (the same hierarchies, so containers' cgroups are the real ones, under /dcctN), then it
// takes its own hostname (dockerd reports it) and waits. Everything of the host runs in its namespaces.
const HOLDER = `
set -e
echo "$CG" | while read -r fstype mp opts src; do
  [ -n "$fstype" ] || continue
  mkdir -p "$mp" && mount -t "$fstype" -o "$opts" "$src" "$mp"
done
hostname "$1"
exec sleep infinity`;

export interface RunResult { readonly exitCode: number; readonly stdout: string; readonly stderr: string }

export class ClusterHost {
  private holder: ChildProcess | undefined;
  private daemon: { child: ChildProcess; log: string[]; exited: Promise<void> } | undefined;
  /** Every log line of every daemon this host ran, for a failing test's message. */
  readonly daemonLines: string[] = [];

  constructor(readonly n: number, private readonly etcdEndpoints: () => string[]) {}

  get name(): string { return ns(this.n); }
  get address(): string { return underlayAddress(this.n); }
  get dockerHost(): string { return `unix://${runDir(this.n)}/docker.sock`; }
  get paths() {
    return { confDir: `${runDir(this.n)}/net.d`, stateDir: `${libDir(this.n)}/dockcni`, runDir: `${runDir(this.n)}/dockcni`, cacheDir: `${libDir(this.n)}/cni` };
  }
  get pathFlags(): string[] {
    const p = this.paths;
    return ['--conf-dir', p.confDir, '--state-dir', p.stateDir, '--run-dir', p.runDir, '--cache-dir', p.cacheDir, '--cni-path', PLUGIN_DIR, '--docker-host', this.dockerHost];
  }

  /** A command inside this host: its network, mount and UTS namespaces. */
  async run(file: string, args: readonly string[], options: { reject?: boolean; input?: string; timeout?: number } = {}): Promise<RunResult> {
    if (this.holder?.pid === undefined) throw new Error(`${this.name} is not up`);
    const r = await execa('nsenter', ['-t', String(this.holder.pid), '-m', '-n', '-u', '--', file, ...args], { reject: options.reject ?? true, timeout: options.timeout ?? 60_000, ...(options.input === undefined ? {} : { input: options.input }) });
    return { exitCode: r.exitCode ?? 1, stdout: String(r.stdout), stderr: String(r.stderr) };
  }

  async docker(args: readonly string[], options: { reject?: boolean; timeout?: number } = {}): Promise<RunResult> {
    const r = await execa('docker', ['-H', this.dockerHost, ...args], { reject: options.reject ?? true, timeout: options.timeout ?? 60_000 });
    return { exitCode: r.exitCode ?? 1, stdout: String(r.stdout), stderr: String(r.stderr) };
  }

  /** The dockcni CLI on this host, with its paths (and the cluster's etcd for commands that take it). */
  async dockcni(args: readonly string[], options: { reject?: boolean; etcd?: boolean } = {}): Promise<RunResult> {
    const etcd = options.etcd === true ? ['--etcd', this.etcdEndpoints().join(',')] : [];
    // `cluster` commands read etcd alone; every other one reads this host's dirs, never the machine's.
    const paths = args[0] === 'cluster' ? [] : this.pathFlags;
    return this.run('node', [BIN, ...args, ...paths, ...etcd], { reject: options.reject ?? true });
  }

  async up(): Promise<void> {
    const n = this.n;
    await sh('ip', ['netns', 'add', ns(n)]);
    await sh('ip', ['link', 'add', `${ns(n)}u`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns(n)]);
    await sh('ip', ['link', 'set', `${ns(n)}u`, 'master', UNDERLAY_BRIDGE, 'up']);
    for (const args of [['link', 'set', 'lo', 'up'], ['link', 'set', 'eth0', 'up'], ['addr', 'add', `${this.address}/24`, 'dev', 'eth0']]) await sh('ip', ['-n', ns(n), ...args]);
    const cgroups = readFileSync('/proc/self/mounts', 'utf8').split('\n').map((l) => l.split(' ')).filter((f) => f[1]?.startsWith('/sys/fs/cgroup')).map((f) => `${f[2]} ${f[1]} ${f[3]} ${f[0]}`).join('\n');
    this.holder = spawn('ip', ['netns', 'exec', ns(n), 'unshare', '--uts', 'sh', '-c', HOLDER, 'holder', ns(n)], { env: { ...process.env, CG: cgroups }, stdio: 'ignore', detached: true });
    const pid = this.holder.pid;
    await waitFor(`${ns(n)}'s holder`, async () => {
      if (this.holder?.exitCode !== null) throw new Error(`${ns(n)}'s holder exited (${this.holder?.exitCode}): cgroups could not be mounted in its namespace`);
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').startsWith('sleep');
    });
    await this.run('sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
    await this.run('iptables', ['-w', '-P', 'FORWARD', 'DROP']);
    for (const d of [runDir(n), libDir(n), this.paths.confDir]) mkdirSync(d, { recursive: true });
    // deprecated-key-path: dockerd 20.10 takes its engine id from /etc/docker/key.json otherwise, the same for every host.
    writeFileSync(`${runDir(n)}/daemon.json`, JSON.stringify({ 'deprecated-key-path': `${libDir(n)}/key.json` }));
    await this.startDockerd();
  }

  async startDockerd(): Promise<void> {
    const n = this.n;
    const log = openSync(`${libDir(this.n)}/dockerd.log`, 'a');
    const child = spawn('nsenter', ['-t', String(this.holder?.pid), '-m', '-n', '-u', '--', 'dockerd',
      '--data-root', `${libDir(n)}/docker`, '--exec-root', execRoot(n), '--host', this.dockerHost, '--pidfile', `${runDir(n)}/docker.pid`,
      '--config-file', `${runDir(n)}/daemon.json`, '--cgroup-parent', `/${ns(n)}`, '--bridge=none', '--iptables=false', '--ip6tables=false'], { stdio: ['ignore', log, log], detached: true });
    closeSync(log);
    child.unref();
    await waitFor(`${ns(n)}'s dockerd`, async () => (await this.docker(['version'], { reject: false })).exitCode === 0, 60_000)
      .catch((error: unknown) => { throw new Error(`${(error as Error).message}: ${readFileSync(`${libDir(n)}/dockerd.log`, 'utf8').slice(-2000)}`); });
  }

  /** SIGTERM to dockerd by its pid file (it stops its containers and containerd), then waits. */
  async stopDockerd(): Promise<void> {
    const pidFile = `${runDir(this.n)}/docker.pid`;
    if (!existsSync(pidFile)) return;
    const pid = Number(readFileSync(pidFile, 'utf8'));
    if (!alive(pid) || !cmdline(pid).includes(runDir(this.n))) return;
    const ids = (await this.docker(['ps', '-aq', '--no-trunc'], { reject: false })).stdout.split('\n').filter(Boolean);
    this.containerIds.push(...ids);
    process.kill(pid, 'SIGTERM');
    await waitFor(`${this.name}'s dockerd to stop`, async () => !alive(pid), 60_000);
  }

  /** Container ids this host's dockerd had when stopped: their shims' sockets are removed at the end. */
  private readonly containerIds: string[] = [];

  /** The host's dockcni daemon, joined to the cluster; resolves once it has reconciled. */
  async startDaemon(extra: readonly string[] = []): Promise<void> {
    if (this.daemon !== undefined) throw new Error(`${this.name}'s daemon runs already`);
    const child = spawn('nsenter', ['-t', String(this.holder?.pid), '-m', '-n', '-u', '--', 'node', BIN, 'daemon', ...this.pathFlags,
      '--etcd', this.etcdEndpoints().join(','), '--advertise-address', this.address, '--host-name', this.name,
      '--host-ttl', '5', '--check-interval', '1', '--retries', '6', '--log-format', 'json', '--debug', ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
    const log: string[] = [];
    const take = (chunk: Buffer) => { for (const l of chunk.toString().split('\n').filter(Boolean)) { log.push(l); this.daemonLines.push(`${this.name} ${l}`); } };
    child.stdout?.on('data', take);
    child.stderr?.on('data', take);
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    this.daemon = { child, log, exited };
    await waitFor(`${this.name}'s daemon to reconcile`, async () => {
      if (child.exitCode !== null) throw new Error(`${this.name}'s daemon exited (${child.exitCode}): ${log.join('\n')}`);
      return log.some((l) => l.includes('reconciled'));
    }, 60_000);
  }

  /** A daemon that does not stop within `graceMs` of the signal is killed, and that is an error naming its last lines. */
  async stopDaemon(signal: NodeJS.Signals = 'SIGTERM', graceMs = 30_000): Promise<number | null> {
    const d = this.daemon;
    if (d === undefined) return null;
    this.daemon = undefined;
    if (d.child.exitCode === null && d.child.signalCode === null) {
      d.child.kill(signal);
      const stopped = await Promise.race([d.exited.then(() => true), sleep(graceMs).then(() => false)]);
      if (!stopped) {
        d.child.kill('SIGKILL');
        await d.exited;
        throw new Error(`${this.name}'s daemon did not stop within ${graceMs / 1000} s of ${signal} and was killed; its last lines:\n${d.log.slice(-40).join('\n')}`);
      }
    }
    return d.child.exitCode;
  }

  get daemonRunning(): boolean {
    return this.daemon !== undefined && this.daemon.child.exitCode === null;
  }

  daemonLog(): string[] {
    return this.daemon?.log ?? [];
  }

  signalDaemon(signal: NodeJS.Signals): void {
    this.daemon?.child.kill(signal);
  }

  /** Waits for a daemon log line matching `re` (after the `from`th line). */
  async logLine(re: RegExp, timeoutMs = 30_000, from = 0): Promise<string> {
    return waitFor(`${this.name}'s daemon to log ${re}`, async () => this.daemonLog().slice(from).find((l) => re.test(l)), timeoutMs);
  }

  /** A busybox container on cluster networks through the daemon's label. */
  async container(name: string, networks: string, extra: readonly string[] = [], command: readonly string[] = ['sleep', '3600']): Promise<string> {
    const r = await this.docker(['run', '-d', '--name', name, '--network', 'none', '-l', `dockcni.networks=${networks}`, ...extra, BUSYBOX_IMAGE, ...command]);
    return r.stdout.trim();
  }

  async pidOf(container: string): Promise<number> {
    return Number((await this.docker(['inspect', '-f', '{{.State.Pid}}', container])).stdout.trim());
  }

  async addressOf(container: string, ifName = 'eth0'): Promise<string | undefined> {
    const r = await this.docker(['exec', container, 'ip', '-4', '-o', 'addr', 'show', ifName], { reject: false });
    return /inet (\d+\.\d+\.\d+\.\d+)\//.exec(r.stdout)?.[1];
  }

  /** Waits until the daemon has wired the container and its address shows inside it. */
  async wiredAddress(container: string, timeoutMs = 30_000): Promise<string> {
    return waitFor(`${container} on ${this.name} to get an address`, () => this.addressOf(container), timeoutMs);
  }

  async ping(container: string, target: string, size?: number): Promise<boolean> {
    const r = await this.docker(['exec', container, 'ping', '-c', '1', '-W', '2', ...(size === undefined ? [] : ['-s', String(size)]), target], { reject: false });
    return r.exitCode === 0;
  }

  /** Removes every container of this host (the daemon, running, DELs them) and waits for its records to go. */
  async removeContainers(): Promise<void> {
    const ids = (await this.docker(['ps', '-aq'], { reject: false })).stdout.split('\n').filter(Boolean);
    if (ids.length > 0) await this.docker(['rm', '-f', ...ids]);
    if (this.daemonRunning) await waitFor(`${this.name}'s records to go`, async () => this.records().length === 0, 60_000);
  }

  records(): string[] {
    const dir = path.join(this.paths.stateDir, 'attachments');
    return existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.json')) : [];
  }

  /** Everything of this host goes: daemon, containers, dockerd, every process in its namespaces, cgroups, dirs. */
  async down(): Promise<void> {
    const n = this.n;
    await this.stopDaemon();
    if ((await this.docker(['version'], { reject: false, timeout: 10_000 })).exitCode === 0) {
      const ids = (await this.docker(['ps', '-aq', '--no-trunc'], { reject: false })).stdout.split('\n').filter(Boolean);
      this.containerIds.push(...ids);
      if (ids.length > 0) await this.docker(['rm', '-f', ...ids], { reject: false });
    }
    await this.stopDockerd().catch(() => undefined);
    // Whatever still runs in the host's netns or cgroups is the harness's: dockerd, containerd, shims, containers, the holder.
    const pids = existsSync(`/run/netns/${ns(n)}`) ? (await sh('ip', ['netns', 'pids', ns(n)], { reject: false })).stdout.split('\n').filter(Boolean).map(Number) : [];
    const cgroups = readdirSync('/sys/fs/cgroup').map((c) => `/sys/fs/cgroup/${c}/${ns(n)}`).filter((d) => existsSync(d));
    for (const d of cgroups) pids.push(...procsUnder(d));
    for (const pid of new Set(pids)) if (alive(pid)) process.kill(pid, 'SIGKILL');
    await waitFor(`${ns(n)}'s processes to exit`, async () => [...new Set(pids)].every((p) => !alive(p)), 30_000);
    for (const d of cgroups) removeCgroup(d);
    if (existsSync(`/run/netns/${ns(n)}`)) await sh('ip', ['netns', 'del', ns(n)]);
    await sh('ip', ['link', 'del', `${ns(n)}u`], { reject: false });
    for (const id of this.containerIds) rmSync(shimSocket(n, id), { force: true });
    rmSync(runDir(n), { recursive: true, force: true });
    rmSync(libDir(n), { recursive: true, force: true });
    this.holder = undefined;
  }
}

const alive = (pid: number) => existsSync(`/proc/${pid}`) && !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ');
const cmdline = (pid: number) => { try { return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' '); } catch { return ''; } };

function procsUnder(dir: string): number[] {
  const out: number[] = [];
  const walk = (d: string) => {
    const procs = path.join(d, 'cgroup.procs');
    if (existsSync(procs)) out.push(...readFileSync(procs, 'utf8').split('\n').filter(Boolean).map(Number));
    for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) walk(path.join(d, e.name));
  };
  walk(dir);
  return out;
}

function removeCgroup(dir: string): void {
  for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) removeCgroup(path.join(dir, e.name));
  rmdirSync(dir);
}

export class TestCluster {
  readonly hosts: ClusterHost[];
  readonly etcd: TestEtcd;

  private constructor() {
    this.etcd = new TestEtcd(HOSTS.map((n) => ({ name: `dcct-etcd${n}`, clientUrl: `http://${underlayAddress(n)}:2379`, peerUrl: `http://${underlayAddress(n)}:2380`, dataDir: `${libDir(n)}/etcd`, netns: ns(n) })), 'dcct-etcd');
    this.hosts = HOSTS.map((n) => new ClusterHost(n, () => this.etcd.endpoints));
  }

  host(n: 1 | 2 | 3): ClusterHost {
    return this.hosts[n - 1]!;
  }

  /** The three hosts with their dockerds, the etcd cluster and a dockcni daemon on each. */
  static async up(): Promise<TestCluster> {
    const cluster = new TestCluster();
    await cluster.down();
    try {
      await cluster.start();
    } catch (error) {
      // Nothing of a harness that did not come up stays behind (nor keeps the test process alive).
      await cluster.down().catch((downError: unknown) => { throw new AggregateError([error, downError], `the cluster harness did not come up (${(error as Error).message}), nor down`); });
      throw error;
    }
    return cluster;
  }

  private async start(): Promise<void> {
    const taken = (await sh('ip', ['-4', 'route'])).stdout;
    if (/^10\.247\./m.test(taken)) throw new Error(`10.247.0.0/24, the cluster tests' underlay, is routed on this machine already:\n${taken}`);
    await sh('ip', ['link', 'add', UNDERLAY_BRIDGE, 'type', 'bridge']);
    await sh('ip', ['link', 'set', UNDERLAY_BRIDGE, 'up']);
    // br_netfilter sends frames bridged between the hosts through the machine's FORWARD chain (Docker's DROP).
    await sh('iptables', ['-w', '-I', ...UNDERLAY_RULE.slice(0, 1), '1', ...UNDERLAY_RULE.slice(1)]);
    await Promise.all(this.hosts.map((h) => h.up()));
    if (!existsSync(IMAGE_TAR)) await sh('docker', ['save', '-o', IMAGE_TAR, BUSYBOX_IMAGE]);
    await Promise.all(this.hosts.map((h) => h.docker(['load', '-q', '-i', IMAGE_TAR])));
    await this.etcd.start();
    await this.etcd.healthy();
    await Promise.all(this.hosts.map((h) => h.startDaemon()));
  }

  /** Removes whatever an earlier run left (a crashed test process), without starting anything. */
  static async clean(): Promise<void> {
    await new TestCluster().down();
  }

  /** Everything goes, whatever fails on the way; what failed is thrown at the end. Hosts side by side: a test's hook has minutes. */
  async down(): Promise<void> {
    const failures: unknown[] = [];
    const noting = (work: Promise<unknown>) => work.catch((error: unknown) => { failures.push(error); });
    // The daemons first, while etcd still has its quorum: each says where it was last seen on its way out.
    await Promise.all(this.hosts.map((h) => noting(h.stopDaemon())));
    await Promise.all(this.hosts.map((h) => noting(h.down())));
    await noting(this.etcd.destroy());
    await sh('ip', ['link', 'del', UNDERLAY_BRIDGE], { reject: false });
    while ((await sh('iptables', ['-w', '-D', ...UNDERLAY_RULE], { reject: false })).exitCode === 0);
    rmSync(IMAGE_TAR, { force: true });
    if (failures.length > 0) throw new AggregateError(failures, `the cluster harness came down with ${failures.length} failure(s): ${failures.map((f) => (f as Error).message).join('; ')}`);
  }

  /** Every daemon's log, for a failing test. */
  logs(): string {
    return this.hosts.flatMap((h) => h.daemonLines).join('\n');
  }
}
