import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, openSync, closeSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { sh } from './shell.js';

/** One etcd member: where it listens, where it keeps its data, and (optionally) the netns it runs in. */
export interface EtcdMember {
  readonly name: string;
  readonly clientUrl: string;
  readonly peerUrl: string;
  readonly dataDir: string;
  readonly netns?: string | undefined;
}

/** A free TCP port on loopback (for members in the host's own namespace). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/**
 * A real etcd cluster of the test's own (Debian's etcd-server): members started, stopped and started
 * again by index; `destroy` stops every member and removes its data. A member's log is kept beside its
 * data dir for the failure message.
 */
export class TestEtcd {
  private readonly processes = new Map<number, ChildProcess>();

  constructor(readonly members: readonly EtcdMember[], private readonly token: string) {}

  get endpoints(): string[] {
    return this.members.map((m) => m.clientUrl);
  }

  /** One loopback member on free ports, in the test's temp dir. */
  static async loopback(dir: string, name = 'dcte'): Promise<TestEtcd> {
    const [client, peer] = [await freePort(), await freePort()];
    return new TestEtcd([{ name, clientUrl: `http://127.0.0.1:${client}`, peerUrl: `http://127.0.0.1:${peer}`, dataDir: path.join(dir, `etcd-${name}`) }], `${name}-${client}`);
  }

  async start(index?: number): Promise<void> {
    const which = index === undefined ? this.members.map((_, i) => i) : [index];
    const cluster = this.members.map((m) => `${m.name}=${m.peerUrl}`).join(',');
    for (const i of which) {
      const m = this.members[i]!;
      const running = this.processes.get(i);
      if (running !== undefined && running.exitCode === null && running.signalCode === null) continue;
      mkdirSync(m.dataDir, { recursive: true, mode: 0o700 });
      const log = openSync(`${m.dataDir}.log`, 'a');
      const args = [
        '--name', m.name, '--data-dir', m.dataDir,
        '--listen-peer-urls', m.peerUrl, '--initial-advertise-peer-urls', m.peerUrl,
        '--listen-client-urls', m.clientUrl, '--advertise-client-urls', m.clientUrl,
        '--initial-cluster', cluster, '--initial-cluster-token', this.token, '--initial-cluster-state', 'new',
        // Short elections: a test kills members on purpose and waits for the rest to carry on.
        '--heartbeat-interval', '100', '--election-timeout', '1000',
      ];
      const [file, argv] = m.netns === undefined ? ['etcd', args] : ['nsenter', [`--net=/run/netns/${m.netns}`, 'etcd', ...args]];
      const child = spawn(file, argv, { stdio: ['ignore', log, log] });
      closeSync(log);
      this.processes.set(i, child);
    }
  }

  /**
   * etcdctl where the members are reachable: in the first member's netns when they live in test netns
   * (from the machine's own namespace their addresses would go out of its default route).
   */
  private etcdctl(args: readonly string[], reject = true) {
    const netns = this.members[0]?.netns;
    const argv = ['--endpoints', this.endpoints.join(','), ...args];
    return netns === undefined ? sh('etcdctl', argv, { reject, timeout: 30_000 }) : sh('nsenter', [`--net=/run/netns/${netns}`, 'etcdctl', ...argv], { reject, timeout: 30_000 });
  }

  /** Waits until the members answer a write (quorum). */
  async healthy(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = await this.etcdctl(['--command-timeout=2s', 'put', '/dockcni-test/health', 'ok'], false);
      if (r.exitCode === 0) return;
      if (Date.now() > deadline) throw new Error(`etcd did not reach quorum within ${timeoutMs / 1000} s: ${r.stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  /** Kills a member (SIGKILL: a crash, not a goodbye) and waits for it to be gone. */
  async kill(index: number): Promise<void> {
    const child = this.processes.get(index);
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await gone;
  }

  async destroy(): Promise<void> {
    for (const i of this.members.keys()) await this.kill(i);
    for (const m of this.members) rmSync(m.dataDir, { recursive: true, force: true });
    for (const m of this.members) rmSync(`${m.dataDir}.log`, { force: true });
  }

  /** etcdctl against the cluster: for what a test reads straight from etcd. */
  async ctl(args: readonly string[]): Promise<string> {
    return (await this.etcdctl(args)).stdout;
  }
}
