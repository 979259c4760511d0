import { readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import { BUSYBOX_IMAGE, bridgeNetwork, restartDockerd, sh, uid, type TestNetwork } from '../helpers/host.js';
import { dirs, sleep, startDaemon, waitFor, type Dirs, type RunningDaemon } from '../helpers/docker.js';
import { checkInvariants, duplicateAddresses } from '../helpers/invariants.js';

export interface ChaosOptions {
  readonly lifecycles: number;
  readonly concurrency: number;
  /** SIGKILL and restart the daemon about every this many Docker operations. */
  readonly killEvery: number;
  readonly restartDockerd: boolean;
  /** Make a plugin of the chain fail (CNI code 11), then hang past its timeout, for a stretch each. */
  readonly pluginFaults: boolean;
  readonly log: (line: string) => void;
}

export interface ChaosReport {
  readonly operations: number;
  readonly lifecycles: number;
  readonly daemonKills: number;
  readonly dockerdRestarts: number;
  readonly dockerErrors: number;
  readonly duplicateSightings: readonly string[];
  readonly violations: readonly string[];
  readonly wallSeconds: number;
  /** Distinct containers the daemons logged as wired: a run where nothing got wired proves nothing. */
  readonly wiredContainers: number;
  /** Wirings that met the planned plugin faults (CNI code 11, a hang past --timeout), from the logs. */
  readonly pluginFailuresSeen: number;
  readonly pluginTimeoutsSeen: number;
}

type Op = 'stop' | 'kill' | 'restart' | 'rm';
const OPS: Op[] = ['stop', 'kill', 'restart', 'rm'];

/**
 * Container lifecycles (start, then stop, kill, restart or rm; one or two networks; static IPs and port
 * mappings among them) at the given concurrency, while the daemon is SIGKILLed and restarted, dockerd
 * restarted once and a plugin fails and hangs for a while. Ends with the invariant checker.
 */
export async function runChaos(t: ExecutionContext, o: ChaosOptions): Promise<ChaosReport> {
  const started = performance.now();
  const d: Dirs = await dirs(t);
  const fail = path.join(d.root, 'fail-now');
  const hang = path.join(d.root, 'hang-now');
  const faulty = { type: 'fixture', fixture: { failIfExists: fail, hangIfExists: hang, hangMs: 4000 } };
  const a = await bridgeNetwork(t, d.confDir, d.root, 90, [{ type: 'portmap', capabilities: { portMappings: true } }, faulty]);
  const b = await bridgeNetwork(t, d.confDir, d.root, 91, []);
  const networks: TestNetwork[] = [a, b];
  const label = `chaos.run=${uid("")}`;
  // Containers whose rm Docker refused while it restarted, or whose run it cut off, go at teardown.
  t.teardown(async () => {
    const left = (await sh('docker', ['ps', '-aq', '--filter', `label=${label}`], { reject: false })).stdout.split('\n').filter(Boolean);
    // In batches: dockerd 20.10 once deadlocked removing 50 --network none containers in one call.
    for (let i = 0; i < left.length; i += 10) await sh('docker', ['rm', '-f', ...left.slice(i, i + 10)], { reject: false });
  });
  const flags = ['--timeout', '2', '--retries', '2', '--on-failure', 'ignore', '--concurrency', '8', '--debug'];
  let daemon: RunningDaemon = await startDaemon(t, d, flags);
  // Residents live through everything (daemon kills, a dockerd restart) and must end up wired once.
  const residents: string[] = [];
  for (let r = 0; r < 2; r++) {
    const { stdout } = await sh('docker', ['run', '-d', '--restart', 'always', '--network', 'none', '-l', label, '-l', `dockcni.networks=${r === 0 ? a.name : `${a.name},${b.name}`}`, BUSYBOX_IMAGE, 'sleep', '100000']);
    const id = stdout.trim();
    residents.push(id);
    t.teardown(async () => { await sh('docker', ['rm', '-f', id], { reject: false }); });
  }
  const logs: string[] = [];
  let operations = 0;
  let kills = 0;
  let dockerdRestarts = 0;
  let dockerErrors = 0;
  let nextKill = o.killEvery;
  const sightings: string[] = [];
  const docker = async (args: string[]) => {
    operations++;
    const r = await sh('docker', args, { reject: false, timeout: 120_000 });
    if (r.exitCode !== 0) dockerErrors++;
    return r;
  };
  let done = 0;
  const phase = () => done / o.lifecycles;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      sightings.push(...(await duplicateAddresses(d)));
      await sleep(250);
    }
  })();
  let disruption = Promise.resolve();
  const disrupt = () => {
    if (operations >= nextKill) {
      nextKill += o.killEvery;
      disruption = disruption.then(async () => {
        logs.push(daemon.log());
        await daemon.kill();
        kills++;
        daemon = await startDaemon(t, d, flags);
      });
    }
    if (o.restartDockerd && dockerdRestarts === 0 && phase() >= 0.5) {
      dockerdRestarts++;
      disruption = disruption.then(restartDockerd);
    }
  };
  // A fault is on while a lifecycle of its stretch runs, and each of those lifecycles keeps its
  // container until a daemon has tried to wire it: every planned fault meets a wiring.
  const inFault = { fail: 0, hang: 0 };
  const setFaults = async () => {
    await (inFault.fail > 0 ? writeFile(fail, '') : sh('rm', ['-f', fail]));
    await (inFault.hang > 0 ? writeFile(hang, '') : sh('rm', ['-f', hang]));
  };
  const tried = async (id: string) => {
    for (let n = 0; n < 150 && ![...logs, daemon.log()].some((l) => l.includes(`id=${id.slice(0, 12)}`)); n++) await sleep(100);
  };
  const worker = async (w: number) => {
    for (let i = w; i < o.lifecycles; i += o.concurrency) {
      const stretch = !o.pluginFaults ? undefined : i >= o.lifecycles * 0.3 && i < o.lifecycles * 0.4 ? 'fail' : i >= o.lifecycles * 0.6 && i < o.lifecycles * 0.65 ? 'hang' : undefined;
      if (stretch) inFault[stretch]++;
      await setFaults();
      const two = i % 3 === 0;
      const labels = ['-l', label, '-l', `dockcni.networks=${two ? `${a.name},${b.name}` : a.name}`];
      if (i % 4 === 1) labels.push('-l', `dockcni.ip=10.231.90.${100 + w}`);
      if (i % 5 === 2) labels.push('-l', `dockcni.ports=${19000 + w}:80`);
      const run = await docker(['run', '-d', '--network', 'none', ...labels, BUSYBOX_IMAGE, 'sleep', '300']);
      const id = run.stdout.trim();
      if (id !== '' && stretch) await tried(id);
      if (stretch) {
        inFault[stretch]--;
        await setFaults();
      }
      if (id !== '') {
        await sleep(50 + ((i * 37) % 300));
        const op = OPS[i % OPS.length] ?? 'rm';
        if (op === 'stop') await docker(['stop', '-t', '0', id]);
        if (op === 'kill') await docker(['kill', id]);
        if (op === 'restart') {
          await docker(['restart', '-t', '0', id]);
          await sleep(200);
        }
        await docker(['rm', '-f', id]);
      }
      done++;
      disrupt();
    }
  };
  try {
    await Promise.all(Array.from({ length: o.concurrency }, (_, w) => worker(w)));
    await disruption;
  } finally {
    await sh('rm', ['-f', fail, hang]);
    sampling = false;
    await sampler;
  }
  let violations: string[] = [];
  await waitFor('the invariants to hold', async () => {
    violations = await checkInvariants(d, networks, label);
    return violations.length === 0;
  }, 90_000).catch(() => undefined);
  // The residents go while the last daemon runs: their DELs are its to do, and teardown checks they happened.
  await sh('docker', ['rm', '-f', ...residents], { reject: false });
  await waitFor('the residents unwired', async () => (await readdir(path.join(d.root, 'state/attachments')).catch(() => [])).length === 0, 30_000);
  const all = [...logs, daemon.log()].join('\n');
  const report: ChaosReport = {
    operations, lifecycles: o.lifecycles, daemonKills: kills, dockerdRestarts, dockerErrors,
    duplicateSightings: sightings, violations, wallSeconds: (performance.now() - started) / 1000,
    wiredContainers: new Set([...all.matchAll(/ wired container=\S+ id=([0-9a-f]{12})/g)].map((m) => m[1])).size,
    pluginFailuresSeen: (all.match(/chaos: failing on purpose/g) ?? []).length,
    pluginTimeoutsSeen: (all.match(/did not finish within 2 s/g) ?? []).length,
  };
  if (violations.length > 0) o.log(`daemon logs:\n${[...logs, daemon.log()].join('\n----- daemon restarted -----\n')}`);
  o.log(`chaos: ${report.lifecycles} lifecycles, ${report.operations} Docker operations (${report.dockerErrors} refused while Docker restarted or a container was already gone), `
    + `${report.daemonKills} daemon SIGKILLs, ${report.dockerdRestarts} dockerd restart(s); leaks found: ${report.violations.length}; `
    + `addresses held twice: ${report.duplicateSightings.length}; containers wired: ${report.wiredContainers}; plugin failures met: ${report.pluginFailuresSeen}, `
    + `plugin timeouts met: ${report.pluginTimeoutsSeen}; wall time ${report.wallSeconds.toFixed(0)} s`);
  return report;
}
