import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import { execa, type ResultPromise } from 'execa';
import { BIN, FIXTURE_PLUGINS, tempDir } from './fixtures.js';
import { BUSYBOX_IMAGE, PLUGIN_DIR, sh, uid } from './host.js';
import { added, hostState } from './host-state.js';
import { waitFor } from './shell.js';

export { sleep, waitFor } from './shell.js';

/** Every dir dockcni uses, private to one test. */
export interface Dirs {
  readonly root: string;
  readonly confDir: string;
  readonly flags: string[];
  /** With `pluginDir`: a plugin directory of the test's own, on the plugin path of `flags`. */
  readonly pluginDir?: string | undefined;
}

/**
 * The dirs of one test. At teardown (after its containers are gone), the product must have left nothing:
 * `dockcni gc --dry-run` lists what dockcni's own DEL paths did not remove, and the test fails on it.
 * Only a test that leaves state on purpose (a daemon killed mid-way) says so with `leavesState`; then
 * `dockcni gc` removes it. Either way the dirs go only if no pin is left mounted.
 */
export async function dirs(t: ExecutionContext, options: { leavesState?: string; pluginDir?: boolean } = {}): Promise<Dirs> {
  // The independent check: the host as the test found it, compared again once everything else of the
  // test is torn down (teardowns run last-in first-out, and this one is registered first).
  const before = hostState();
  t.teardown(() => {
    const left = added(before, hostState());
    if (left.length > 0) throw new Error(`this test left ${left.length} thing(s) on the host:\n${left.map((l) => `  ${l}`).join('\n')}`);
  });
  const root = await tempDir(t);
  const confDir = path.join(root, 'net.d');
  await mkdir(confDir);
  // The test's own plugins are on the path of every dockcni it starts, teardown's gc included: what they
  // made can be DELeted through them.
  const pluginDir = options.pluginDir === true ? path.join(root, 'plugins') : undefined;
  if (pluginDir !== undefined) await mkdir(pluginDir);
  const flags = ['--conf-dir', confDir, '--cni-path', [PLUGIN_DIR, FIXTURE_PLUGINS, ...(pluginDir === undefined ? [] : [pluginDir])].join(':'), '--cache-dir', path.join(root, 'cache'), '--state-dir', path.join(root, 'state'), '--run-dir', path.join(root, 'run')];
  t.teardown(async () => {
    const dry = await execa('node', [BIN, 'gc', '--dry-run', '--sandbox-grace', '0', '-o', 'json', ...flags], { reject: false });
    const found = dry.exitCode === 0 ? JSON.parse(dry.stdout) as { leftovers: unknown[]; host: unknown[] } : undefined;
    const gc = await execa('node', [BIN, 'gc', '--sandbox-grace', '0', ...flags], { reject: false });
    if (gc.exitCode !== 0) throw new Error(`teardown gc failed: ${gc.stderr}`);
    if (found === undefined) throw new Error(`teardown gc --dry-run failed: ${dry.stderr}`);
    const left = [...found.leftovers, ...found.host];
    if (left.length > 0 && options.leavesState === undefined) {
      throw new Error(`the product left ${left.length} thing(s) after this test's containers were gone (gc then removed them): ${JSON.stringify(left)}`);
    }
  });
  return { root, confDir, flags, pluginDir };
}

export interface RunningDaemon {
  readonly process: ResultPromise;
  log(): string;
  stop(): Promise<void>;
  kill(): Promise<void>;
}

/** `dockcni daemon` on the test's dirs, stopped at teardown; resolves once it has reconciled. */
export async function startDaemon(t: ExecutionContext, d: Dirs, extra: string[] = []): Promise<RunningDaemon> {
  let output = '';
  const child = execa('node', [BIN, 'daemon', ...d.flags, ...extra], { reject: false, all: true, buffer: false });
  child.all?.on('data', (chunk: Buffer) => { output += chunk.toString(); });
  let ended = false;
  const daemon: RunningDaemon = {
    process: child,
    log: () => output,
    stop: async () => { ended = true; child.kill('SIGTERM'); await child; },
    kill: async () => { ended = true; child.kill('SIGKILL'); await child; },
  };
  t.teardown(async () => {
    // A daemon that died on its own during the test is a failure, whatever else the test saw.
    if (!ended && child.exitCode !== null) throw new Error(`the daemon exited (${child.exitCode ?? child.signalCode}) during the test; its log:\n${output}`);
    if (ended) return;
    await daemon.stop();
    if (child.exitCode !== 0) throw new Error(`the daemon did not stop cleanly on SIGTERM (${child.exitCode ?? child.signalCode}); its log:\n${output}`);
  });
  try {
    await waitFor('the daemon to reconcile', async () => output.includes('reconciled') || (child.exitCode !== null && Promise.reject(new Error(`daemon exited: ${output}`))), 30_000);
  } catch (error) {
    throw new Error(`${(error as Error).message}; its log:\n${output}\n${await stuckState(child.pid, d)}`, { cause: error });
  }
  return daemon;
}

/** What a daemon that does not get on is waiting for: its child processes, and the locks held with their owners. */
async function stuckState(pid: number | undefined, d: Dirs): Promise<string> {
  const tree = await sh('ps', ['-e', '-o', 'pid,ppid,etimes,args'], { reject: false });
  const locks = await sh('sh', ['-c', `cd '${path.join(d.root, 'run', 'locks')}' && for f in *; do printf '%s: %s\\n' "$f" "$(cat "$f" 2>/dev/null)"; done`], { reject: false });
  return `daemon pid ${pid ?? '?'}; processes:\n${tree.stdout.split('\n').filter((l) => l.includes('plugin') || l.includes('iptables') || l.includes(String(pid))).join('\n')}\nlocks:\n${locks.stdout}`;
}

/** A busybox container removed at teardown. */
export async function container(t: ExecutionContext, args: string[], command: string[] = ['sleep', '600']): Promise<string> {
  const name = uid('dc');
  const { stdout } = await sh('docker', ['run', '-d', '--name', name, ...args, BUSYBOX_IMAGE, ...command]);
  const id = stdout.trim();
  t.teardown(async () => { await sh('docker', ['rm', '-f', id], { reject: false }); });
  return id;
}

export async function addressOf(id: string, ifName = 'eth0'): Promise<string | undefined> {
  const r = await sh('docker', ['exec', id, 'ip', '-4', '-o', 'addr', 'show', ifName], { reject: false });
  return /inet (\d+\.\d+\.\d+\.\d+)\//.exec(r.stdout)?.[1];
}

export async function pingFrom(id: string, address: string): Promise<boolean> {
  return (await sh('docker', ['exec', id, 'ping', '-c', '1', '-W', '2', address], { reject: false })).exitCode === 0;
}

/** An HTTP GET from a fresh netns linked to the host by a veth: traffic from "another host". */
export async function httpFromOtherHost(t: ExecutionContext, port: number, octet: number): Promise<string> {
  const ns = uid('dcc');
  const hostIf = uid('vh');
  await sh('ip', ['netns', 'add', ns]);
  t.teardown(async () => { await sh('ip', ['netns', 'del', ns], { reject: false }); await sh('ip', ['link', 'del', hostIf], { reject: false }); });
  await sh('ip', ['link', 'add', hostIf, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
  await sh('ip', ['addr', 'add', `10.233.${octet}.1/30`, 'dev', hostIf]);
  await sh('ip', ['link', 'set', hostIf, 'up']);
  await sh('ip', ['netns', 'exec', ns, 'ip', 'addr', 'add', `10.233.${octet}.2/30`, 'dev', 'eth0']);
  await sh('ip', ['netns', 'exec', ns, 'ip', 'link', 'set', 'eth0', 'up']);
  const r = await sh('ip', ['netns', 'exec', ns, 'busybox', 'nc', '-w', '3', `10.233.${octet}.1`, String(port)], { reject: false, input: 'GET /hostname HTTP/1.0\r\n\r\n' });
  return r.stdout;
}

/** Nothing of dockcni's left for these containers: IPAM, cache, pins, records, rules, veths. */
export async function assertNoLeftovers(t: ExecutionContext, d: Dirs, net: import('./host.js').TestNetwork, ids: readonly string[]): Promise<void> {
  const { readdir } = await import('node:fs/promises');
  const { reservations, rulesMentioning, hostVethsOn } = await import('./host.js');
  const list = (p: string) => readdir(path.join(d.root, p)).catch(() => [] as string[]);
  t.deepEqual(await reservations(net), [], 'IPAM reservations');
  t.deepEqual(await list('cache/results'), [], 'cache entries');
  t.deepEqual(await list('run/netns'), [], 'pinned netns');
  t.deepEqual(await list('state/attachments'), [], 'attachment records');
  t.deepEqual(await hostVethsOn(net.bridge), [], 'veths on the bridge');
  for (const id of ids) t.deepEqual(await rulesMentioning(id), [], `iptables rules of ${id.slice(0, 12)}`);
}
