import { createEngine } from '../cni/create-engine.js';
import type { CniEngine } from '../cni/engine.js';
import type { TraceSink } from '../cni/invoke.js';
import { FileLocks } from '../cni/lock.js';
import type { HostCommands } from '../host-commands.js';
import { locksDir, pinsDir, type Paths } from '../paths.js';
import { AttachmentStore } from '../state/attachment-store.js';
import { IptablesHostFirewall } from './host-firewall.js';
import { BindMountPins } from './netns-pins.js';
import { AgentClient, agentSocket } from './agent-client.js';
import type { ClusterLink } from './cluster-link.js';
import { remoteNamesReader } from './remote-names.js';
import { Sandboxes } from './sandboxes.js';
import { Wirer } from './wirer.js';

export interface CreateWirerOptions {
  readonly paths: Paths;
  readonly timeoutMs: number;
  /** K8S_POD_NAMESPACE for every container. */
  readonly podNamespace: string;
  readonly trace?: TraceSink | undefined;
  readonly onProgress?: ((step: string) => void) | undefined;
  /** Shutdown: every wait for a lock ends when it fires. */
  readonly signal?: AbortSignal | undefined;
  /** Where problems that fail nothing are reported (another container's hosts file). */
  readonly onWarning: (message: string) => void;
  readonly commands: HostCommands;
  /** What cluster networks need of etcd [default: the daemon's cluster agent, through its socket]. */
  readonly cluster?: ClusterLink | undefined;
}

export interface WiringParts {
  readonly engine: CniEngine;
  readonly store: AttachmentStore;
  readonly pins: BindMountPins;
  readonly firewall: IptablesHostFirewall;
  readonly wirer: Wirer;
  readonly sandboxes: Sandboxes;
}

/** The wirer with its real collaborators (mount, iptables, lock and record files): for entry points. */
export function createWirer(o: CreateWirerOptions): WiringParts {
  const engine = createEngine({ pluginPath: o.paths.cniPath, cacheDir: o.paths.cacheDir, locksDir: locksDir(o.paths), timeoutMs: o.timeoutMs, signal: o.signal, trace: o.trace, commands: o.commands });
  const store = new AttachmentStore(o.paths.stateDir);
  const pins = new BindMountPins(pinsDir(o.paths), o.commands);
  const firewall = new IptablesHostFirewall(o.commands);
  const locks = new FileLocks(locksDir(o.paths), undefined, o.signal);
  const wirer = new Wirer({
    engine, store, pins, firewall, locks, confDir: o.paths.confDir, podNamespace: o.podNamespace, onProgress: o.onProgress, onWarning: o.onWarning, readyWaitMs: o.timeoutMs,
    cluster: o.cluster ?? new AgentClient(agentSocket(o.paths.runDir)), remoteNames: remoteNamesReader(o.paths.runDir),
  });
  return { engine, store, pins, firewall, wirer, sandboxes: new Sandboxes(store, locks) };
}
