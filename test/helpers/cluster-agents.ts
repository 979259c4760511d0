import { mkdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import { ClusterAgent } from '../../src/cluster/agent.js';
import { clusterConflistName } from '../../src/cluster/conflist.js';
import { EtcdCluster } from '../../src/cluster/etcd.js';
import type { HostCommands } from '../../src/host-commands.js';
import { parseConfList } from '../../src/cni/conf.js';
import { AttachmentStore } from '../../src/state/attachment-store.js';
import type { AttachmentRecord } from '../../src/state/attachment.js';
import { clusterConf, type ClusterConf } from '../../src/wiring/cluster-link.js';
import type { RemoteName } from '../../src/wiring/hosts-book.js';
import { remoteNamesFile } from '../../src/wiring/remote-names.js';
import { FakeCommands } from './fake-commands.js';
import { MemoryLog } from './fake-wirer.js';
import type { TestEtcd } from './etcd.js';

/**
 * Cluster agents on a real etcd without a data path of their own: their host programs are recorded
 * (FakeCommands), everything in etcd and on disk (conflists, blocks, names) is real. For the allocator,
 * the races and the name feed, where three dockerds would add nothing but time.
 */
export interface TestAgent {
  readonly agent: ClusterAgent;
  readonly name: string;
  readonly root: string;
  readonly log: MemoryLog;
  readonly store: AttachmentStore;
  /** What the agent wrote for a cluster network into its conf dir; undefined before it has. */
  conf(network: string): Promise<ClusterConf | undefined>;
  /** The other hosts' names this host's hosts files are written from. */
  remoteNames(): Promise<Record<string, RemoteName[]>>;
  /** Networks whose remote names changed, in the order the agent said so. */
  readonly changed: string[][];
  start(): Promise<void>;
  stop(): Promise<void>;
}

export const quietCommands = () => new FakeCommands((file, args) => {
  if ((file === 'ip' || file === 'bridge') && args[0] === '-j') return { stdout: '[]' };
  if (file === 'sysctl' && args[0] === '-n') return { stdout: '1\n' };
  return {};
});

/** `t`: where its teardown goes (an ava test, or the bench's own list). */
export async function testAgent(t: Pick<ExecutionContext, 'teardown'>, etcd: Pick<TestEtcd, 'endpoints'>, root: string, name: string, options: { hostTtl?: number; blockTtl?: number; address?: string; timeoutMs?: number; commands?: HostCommands } = {}): Promise<TestAgent> {
  const dir = path.join(root, name);
  const confDir = path.join(dir, 'net.d');
  await mkdir(confDir, { recursive: true });
  const log = new MemoryLog();
  const store = new AttachmentStore(path.join(dir, 'state'));
  const changed: string[][] = [];
  let used = false;
  let running = false;
  const commands = options.commands ?? quietCommands();
  const make = () => new ClusterAgent({
    etcd: new EtcdCluster({ endpoints: etcd.endpoints, timeoutMs: options.timeoutMs ?? 2000 }),
    host: { name, address: options.address ?? '10.247.9.1', underlayIf: 'eth0', underlayMtu: 1500 },
    hostTtlSeconds: options.hostTtl ?? 5, blockTtlSeconds: options.blockTtl ?? 600,
    confDir, stateDir: path.join(dir, 'state'), runDir: path.join(dir, 'run'),
    commands, store, log, namesChanged: async (networks) => { changed.push([...networks]); },
  });
  let agent = make();
  const self: TestAgent = {
    get agent() { return agent; },
    name, root: dir, log, store, changed,
    conf: async (network) => {
      const file = path.join(confDir, clusterConflistName(network));
      const bytes = await readFile(file).catch(() => undefined);
      return bytes === undefined ? undefined : clusterConf(parseConfList(bytes, file));
    },
    remoteNames: async () => JSON.parse(await readFile(remoteNamesFile(path.join(dir, 'run')), 'utf8').catch(() => '{}')) as Record<string, RemoteName[]>,
    start: async () => {
      // A stopped agent closed its etcd client: a restart is a new agent on the same dirs, as a new daemon would be.
      if (used) agent = make();
      used = true;
      await agent.start();
      running = true;
    },
    stop: async () => {
      if (!running) return;
      running = false;
      await agent.stop();
    },
  };
  t.teardown(async () => {
    await self.stop();
    await rm(dir, { recursive: true, force: true });
  });
  return self;
}

/** A record of a running container on a cluster network, as the wiring would write it. */
export function wiredRecord(containerId: string, name: string, network: string, address: string): AttachmentRecord {
  return {
    containerId, name, pid: 4242, startedAt: '2026-12-06T00:00:00Z', netns: `/run/x/${containerId}`, origin: 'daemon', updatedAt: new Date().toISOString(),
    networks: [{ network, ifName: 'eth0', state: 'wired', args: [], capabilityArgs: {}, addresses: [`${address}/16`], aliases: [`${name}-alias`] }],
  };
}
