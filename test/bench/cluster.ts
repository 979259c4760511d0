// npm run bench, cluster networks: across three Docker hosts on this machine (test/helpers/cluster.ts),
// and at scale with simulated hosts (in-process agents without a data path) on one etcd.
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { createClusterNetwork } from '../../src/networks/cluster.js';
import { EtcdCluster } from '../../src/cluster/etcd.js';
import { TestCluster, type ClusterHost } from '../helpers/cluster.js';
import { testAgent, wiredRecord, type TestAgent } from '../helpers/cluster-agents.js';
import { TestEtcd } from '../helpers/etcd.js';
import { FakeKernel } from '../helpers/fake-kernel.js';
import { BIN } from '../helpers/fixtures.js';
import { BUSYBOX_IMAGE } from '../helpers/shell.js';
import { median, ms, now, pct, report, verdict } from './stats.js';

const sleep = (msecs: number) => new Promise((r) => setTimeout(r, msecs));

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs: number, everyMs = 20): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`bench: timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** busybox ping's summary: the average round trip in ms. */
function averageRtt(output: string): number {
  const m = /min\/avg\/max[^=]*= [\d.]+\/([\d.]+)\//.exec(output);
  if (m === null) throw new Error(`bench: no round-trip summary in ${output}`);
  return Number(m[1]);
}

interface WiredLine { readonly msg: string; readonly id?: string; readonly container?: string; readonly time: string; readonly tookMs: number }
const wiredLines = (host: ClusterHost): WiredLine[] => host.daemonLog().filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as WiredLine).filter((l) => l.msg === 'wired');

/**
 * Three hosts, each its own dockerd and dockcni daemon, on one underlay bridge (veths: no physical NIC,
 * so the underlay is as fast as the machine's memory and the ratios show what VXLAN and the bridge cost).
 */
export async function clusterAcrossHosts(): Promise<void> {
  const cluster = await TestCluster.up().catch(async (error: unknown) => {
    await TestCluster.clean();
    throw error;
  });
  try {
    const [h1, h2] = [cluster.host(1), cluster.host(2)];
    const net = 'benchcl';
    await h1.dockcni(['networks', 'create', net, '--scope', 'cluster', '--subnet', '10.248.0.0/16'], { etcd: true });
    await until(`${net} on both hosts`, async () => (await Promise.all([h1, h2].map((h) => readFile(path.join(h.paths.confDir, `45-${net}.conflist`)).then(() => true, () => false)))).every(Boolean), 30_000);
    await h1.dockcni(['networks', 'create', 'benchlocal', '--subnet', '10.249.1.0/24']);

    const gw = 'benchgw';
    await h1.dockcni(['networks', 'create', gw, '--scope', 'cluster', '--subnet', '10.250.0.0/16', '--backend', 'host-gw'], { etcd: true });
    await until(`${gw} on both hosts`, async () => (await Promise.all([h1, h2].map((h) => readFile(path.join(h.paths.confDir, `45-${gw}.conflist`)).then(() => true, () => false)))).every(Boolean), 30_000);
    const wired = (h: ClusterHost, name: string) => h.wiredAddress(name, 60_000).catch((error: unknown) => {
      throw new Error(`${(error as Error).message}; ${h.name}'s daemon:\n${h.daemonLog().slice(-30).join('\n')}`);
    });
    const pings = ['-c', '50', '-i', '0.05', '-q'];
    // Throughput: 256 MB over HTTP (busybox httpd and wget on both sides), best of three.
    const bestOf3 = async (fetch: () => Promise<unknown>) => {
      const times: number[] = [];
      for (let i = 0; i < 3; i++) {
        const t0 = now();
        await fetch();
        times.push((now() - t0) / 1000);
      }
      return 256 * 8 / Math.min(...times);
    };
    // Container to container across hosts, on each backend.
    const across = async (network: string) => {
      const [a, bName] = [`rtt-a-${network}`, `rtt-b-${network}`];
      await h1.container(a, network, [], ['sleep', '3600']);
      await h2.container(bName, network, [], ['sleep', '3600']);
      const b = await wired(h2, bName);
      await wired(h1, a);
      await h2.docker(['exec', bName, 'dd', 'if=/dev/zero', 'of=/blob', 'bs=1M', 'count=256']);
      await h2.docker(['exec', '-d', bName, 'httpd', '-f', '-p', '8080', '-h', '/']);
      await until(`${bName} serving`, async () => (await h1.docker(['exec', a, 'wget', '-q', '-O', '/dev/null', '--spider', `http://${b}:8080/blob`], { reject: false })).exitCode === 0, 60_000, 500);
      const rtt = averageRtt((await h1.docker(['exec', a, 'ping', ...pings, b])).stdout);
      const mbit = await bestOf3(() => h1.docker(['exec', a, 'wget', '-q', '-O', '/dev/null', `http://${b}:8080/blob`]));
      return { rtt, mbit };
    };
    const vxlan = await across(net);
    const hostGw = await across(gw);
    // Host to host on the underlay, with the same programs.
    const underlayRtt = averageRtt((await h1.run('busybox', ['ping', ...pings, h2.address])).stdout);
    const blobDir = await mkdtemp(path.join(tmpdir(), 'dockcni-bench-blob-'));
    await execa('dd', ['if=/dev/zero', `of=${blobDir}/blob`, 'bs=1M', 'count=256'], { stderr: 'ignore' });
    const served = spawn('nsenter', ['--net=/run/netns/dcct2', 'busybox', 'httpd', '-f', '-p', `${h2.address}:8081`, '-h', blobDir], { stdio: 'ignore' });
    let underlayMbit: number;
    try {
      await until('the underlay server', async () => (await h1.run('busybox', ['wget', '-q', '-O', '/dev/null', '--spider', `http://${h2.address}:8081/blob`], { reject: false })).exitCode === 0, 30_000, 200);
      underlayMbit = await bestOf3(() => h1.run('busybox', ['wget', '-q', '-O', '/dev/null', `http://${h2.address}:8081/blob`]));
    } finally {
      served.kill();
      await rm(blobDir, { recursive: true, force: true });
    }
    report(`cluster, 3 Docker hosts on one machine (a veth underlay: no NIC, no offloads), container→container across hosts against host→host, busybox ping and a 256 MB wget (best of 3):`);
    for (const [backend, m] of [['vxlan', vxlan], ['host-gw', hostGw]] as const) {
      const [rttRatio, tputRatio] = [m.rtt / underlayRtt, m.mbit / underlayMbit];
      report(`  ${backend}: RTT ${m.rtt.toFixed(3)} ms vs ${underlayRtt.toFixed(3)} ms: ${rttRatio.toFixed(2)}x (target <= 1.2x: ${verdict(rttRatio <= 1.2)}); TCP ${m.mbit.toFixed(0)} vs ${underlayMbit.toFixed(0)} Mbit/s: ${tputRatio.toFixed(2)}x (target >= 0.8x: ${verdict(tputRatio >= 0.8)})`);
    }

    // Wiring: the daemon's own time per container (its `wired` line), a cluster network against a local bridge.
    const clusterTimes: number[] = [];
    const localTimes: number[] = [];
    for (let i = 0; i < 15; i++) {
      for (const [network, into] of [[net, clusterTimes], ['benchlocal', localTimes]] as const) {
        const name = `w-${network}-${i}`;
        const id = (await h1.docker(['run', '-d', '--name', name, '--network', 'none', '-l', `dockcni.networks=${network}`, BUSYBOX_IMAGE, 'sleep', '3600'])).stdout.trim();
        await until(`${name} wired`, () => wiredLines(h1).some((l) => l.id === id.slice(0, 12)), 30_000, 10);
        into.push(wiredLines(h1).find((l) => l.id === id.slice(0, 12))!.tookMs);
      }
    }
    const wiringRatio = median(clusterTimes) / median(localTimes);
    report(`  wiring a container, daemon start event to wired (15 each, alternating): cluster network p50 ${ms(median(clusterTimes))} vs local bridge ${ms(median(localTimes))}: ${wiringRatio.toFixed(2)}x (target <= 1.1x: ${verdict(wiringRatio <= 1.1)})`);

    // Names: from a container wired on host 2 to its name in the hosts file of a container on host 1.
    const hostsFile = `/var/lib/dcct1/docker/containers/${(await h1.docker(['inspect', '-f', '{{.Id}}', `rtt-a-${net}`])).stdout.trim()}/hosts`;
    const delays: number[] = [];
    for (let i = 0; i < 30; i++) {
      const name = `nm-${i}`;
      const id = (await h2.docker(['run', '-d', '--name', name, '--network', 'none', '-l', `dockcni.networks=${net}`, BUSYBOX_IMAGE, 'sleep', '3600'])).stdout.trim();
      const listed = new RegExp(`\\s${name}(\\s|$)`, 'm');
      let seenAt = 0;
      await until(`${name} in a hosts file on host 1`, async () => {
        const found = listed.test(await readFile(hostsFile, 'utf8').catch(() => ''));
        if (found) seenAt = Date.now();
        return found;
      }, 30_000, 5);
      await until(`${name} wired`, () => wiredLines(h2).some((l) => l.id === id.slice(0, 12)), 30_000, 10);
      delays.push(seenAt - Date.parse(wiredLines(h2).find((l) => l.id === id.slice(0, 12))!.time));
    }
    report(`  a name across hosts, wired on one host to listed in a container's /etc/hosts on another (30): p50 ${ms(median(delays))}, p99 ${ms(pct(delays, 0.99))} (target p99 <= 1 s: ${verdict(pct(delays, 0.99) <= 1000)})`);
  } finally {
    for (const h of cluster.hosts) await h.removeContainers();
    for (const n of ['benchcl', 'benchgw']) await cluster.host(1).dockcni(['networks', 'rm', n], { etcd: true, reject: false });
    await cluster.host(1).dockcni(['networks', 'rm', 'benchlocal'], { reject: false });
    await cluster.down();
  }
}

/** etcd's own count of key writes (puts and deletes), from its metrics. */
async function etcdWrites(endpoint: string): Promise<number> {
  const text = await (await fetch(`${endpoint}/metrics`)).text();
  const value = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
  return value('etcd_mvcc_put_total') + value('etcd_mvcc_delete_total');
}

/** RSS in MB of a process, by pid. */
async function rss(pid: number): Promise<number> {
  return Number(/VmRSS:\s+(\d+)/.exec(await readFile(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN) / 1024;
}

/**
 * 200 simulated hosts (cluster agents in this process, each with its own etcd client and a recorded
 * data path) on one etcd: joining and leasing blocks, every host routing to every other; then 10 000
 * containers' names published from 10 hosts. And the real daemon's memory with and without the etcd client. Every
 * host's work runs on this one process's event loop (real hosts each have their own CPUs): they join
 * in waves, and a call may take longer than a real host's would.
 */
export async function clusterAtScale(): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'dockcni-bench-scale-'));
  const etcd = await TestEtcd.loopback(dir, 'dcbench');
  try {
    await etcd.start();
    await etcd.healthy();
    await simulatedHosts(dir, etcd);
    await daemonMemory(etcd);
  } finally {
    await etcd.destroy();
    await rm(dir, { recursive: true, force: true });
  }
}

async function simulatedHosts(dir: string, etcd: TestEtcd): Promise<void> {
  const teardowns: (() => Promise<void>)[] = [];
  const owner = { teardown: (fn: () => Promise<void> | void) => { teardowns.push(async () => { await fn(); }); } };
  const HOSTS = Number(process.env['BENCH_SIM_HOSTS'] ?? 200);
  const WAVE = 20;
  const NAME_HOSTS = 10;
  const PER_HOST = 1000;
  const client = new EtcdCluster({ endpoints: etcd.endpoints });
  try {
    const net = 'scale';
    await createClusterNetwork(client, { name: net, subnet: '10.200.0.0/14', blockSize: 26 });
    const kernels = new Map<TestAgent, FakeKernel>();
    const simulated = async (name: string, address: string) => {
      const kernel = new FakeKernel();
      const agent = await testAgent(owner, etcd, dir, name, { address, hostTtl: 60, timeoutMs: 30_000, commands: kernel });
      kernels.set(agent, kernel);
      return agent;
    };
    const agents: TestAgent[] = [];
    for (let i = 0; i < HOSTS; i++) agents.push(await simulated(`sim${i}`, `10.100.${Math.floor(i / 250)}.${(i % 250) + 1}`));
    const routed = (a: TestAgent) => kernels.get(a)?.routes ?? new Map<string, string>();
    const t0 = now();
    for (let i = 0; i < HOSTS; i += WAVE) await Promise.all(agents.slice(i, i + WAVE).map((a) => a.start()));
    const joined = now() - t0;
    await until('every host to hold a block', async () => (await Promise.all(agents.map((a) => a.conf(net)))).every((c) => (c?.blocks.length ?? 0) > 0), 300_000, 200);
    await until('every host to route to every other', () => agents.every((a) => routed(a).size >= HOSTS - 1), 300_000, 200);
    const converged = now() - t0;
    // One more host once all are settled: how long until every other one routes to its block.
    const late = await simulated('simlate', '10.100.9.1');
    const changesBefore = agents.map((a) => kernels.get(a)?.changes.length ?? 0);
    const t1 = now();
    await late.start();
    await until('the late host\'s block', async () => ((await late.conf(net))?.blocks.length ?? 0) > 0, 60_000, 10);
    const block = (await late.conf(net))?.blocks[0] ?? '';
    await until('every host to route to the late one', () => agents.every((a) => routed(a).has(block)), 60_000, 10);
    const oneMore = now() - t1;
    const perHost = agents.reduce((n, a, i) => n + (kernels.get(a)?.changes.length ?? 0) - (changesBefore[i] ?? 0), 0) / agents.length;
    report(`cluster at scale, ${HOSTS} simulated hosts (in-process agents on one event loop, one etcd member): joined in waves of ${WAVE} in ${(joined / 1000).toFixed(1)} s; every host routing to every other ${(converged / 1000).toFixed(1)} s after the first wave; a host joining the settled cluster routed to by all others ${ms(oneMore)} (target <= 5 s: ${verdict(oneMore <= 5000)}; the event loop did every host's round in turn, ${ms(oneMore / HOSTS)} per host), ${perHost.toFixed(1)} data-path changes on each (a route, a neighbour, an FDB entry)`);

    // Stopped before the names: on one event loop, 200 hosts each rewriting a names file of 10 000
    // entries as they arrive is 200 hosts' work on two cores, which says nothing about one host's.
    for (const teardown of teardowns.splice(0).reverse()) await teardown();

    // Names: 10 000 containers on 10 hosts, written into each host's own records.
    const publishers: TestAgent[] = [];
    for (let i = 0; i < NAME_HOSTS; i++) publishers.push(await simulated(`pub${i}`, `10.101.0.${i + 1}`));
    await Promise.all(publishers.map((a) => a.start()));
    const before = await etcdWrites(etcd.endpoints[0] ?? '');
    const t2 = now();
    await Promise.all(publishers.map(async (a, h) => {
      for (let c = 0; c < PER_HOST; c++) {
        const n = h * PER_HOST + c;
        await a.store.write(wiredRecord(n.toString(16).padStart(64, '0'), `c${n}`, net, `10.${200 + Math.floor(n / 65536)}.${Math.floor(n / 256) % 256}.${n % 256}`));
      }
    }));
    const total = NAME_HOSTS * PER_HOST;
    await until('every name in etcd', async () => ((await client.snapshot()).names.get(net)?.size ?? 0) >= total, 300_000, 250);
    const inEtcdS = (now() - t2) / 1000;
    const writes = (await etcdWrites(etcd.endpoints[0] ?? '')) - before;
    const perContainer = writes / total;
    const everyName = async (a: TestAgent) => ((await a.remoteNames())[net]?.length ?? 0) >= total - PER_HOST;
    await until('every host to have every other host\'s names', async () => (await Promise.all(publishers.map(everyName))).every(Boolean), 300_000, 250);
    const everywhereS = (now() - t2) / 1000;
    report(`  ${total} containers' names on ${NAME_HOSTS} hosts (${PER_HOST} each): ${perContainer.toFixed(2)} etcd key writes per container (target <= 2: ${verdict(perContainer <= 2)}); all in etcd ${inEtcdS.toFixed(1)} s and in every host's names file ${everywhereS.toFixed(1)} s after the records were written`);
  } finally {
    client.close();
    for (const teardown of teardowns.reverse()) await teardown();
  }
}

/** The daemon as shipped (the systemd unit's Node flags), idle after its start: alone, and joined to etcd. */
async function daemonMemory(etcd: TestEtcd): Promise<void> {
  const work = await mkdtemp(path.join(tmpdir(), 'dockcni-bench-rss-'));
  try {
    const idleRss = async (extra: readonly string[]) => {
      const flags = ['--conf-dir', path.join(work, 'net.d'), '--state-dir', path.join(work, 'state'), '--run-dir', path.join(work, 'run'), '--cache-dir', path.join(work, 'cache'), '--log-format', 'json'];
      const daemon = execa('node', ['--max-semi-space-size=1', BIN, 'daemon', ...flags, ...extra], { reject: false, all: true, buffer: false });
      let out = '';
      daemon.all?.on('data', (d: Buffer) => { out += d.toString(); });
      try {
        await until('the daemon to reconcile', () => out.includes('"reconciled"'), 30_000, 50);
        await sleep(5000);
        return await rss(daemon.pid ?? 0);
      } finally {
        daemon.kill('SIGTERM');
        await daemon;
      }
    };
    const plain = await idleRss([]);
    const joined = await idleRss(['--etcd', etcd.endpoints[0] ?? '', '--advertise-address', '127.0.0.1', '--host-name', 'bench-rss']);
    report(`  the daemon's RSS, idle: ${plain.toFixed(1)} MB alone, ${joined.toFixed(1)} MB joined to etcd (+${(joined - plain).toFixed(1)} MB; target <= +20 MB: ${verdict(joined - plain <= 20)})`);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
