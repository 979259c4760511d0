import type { CniEngine } from '../cni/engine.js';
import type { TraceSink } from '../cni/invoke.js';
import type { DockerClient } from '../docker/docker-client.js';
import { Collector } from '../gc/collector.js';
import { ChildProcessCommands, type HostCommands } from '../host-commands.js';
import type { Paths } from '../paths.js';
import type { AttachmentStore } from '../state/attachment-store.js';
import { createWirer } from '../wiring/create-wirer.js';
import type { BindMountPins } from '../wiring/netns-pins.js';
import type { ClusterLink } from '../wiring/cluster-link.js';
import type { Sandboxes } from '../wiring/sandboxes.js';
import type { Wirer } from '../wiring/wirer.js';
import { pathsFrom, type DockerFlags } from './flags.js';
import { dockerClient } from './docker.js';
import { traceFrom } from './engine.js';

/** Everything the Docker-facing commands share, built once at the entry point. */
export interface Context {
  readonly paths: Paths;
  readonly docker: DockerClient;
  readonly engine: CniEngine;
  readonly store: AttachmentStore;
  readonly pins: BindMountPins;
  readonly wirer: Wirer;
  readonly sandboxes: Sandboxes;
  readonly collector: Collector;
  readonly commands: HostCommands;
}

/** What a command adds to the shared context; all optional. */
export interface ContextHooks {
  /** Each step of a wiring, for a spinner. */
  readonly onProgress?: ((step: string) => void) | undefined;
  /** Every plugin call (the daemon's timing); --trace prints them as well. */
  readonly observe?: TraceSink | undefined;
  /** Shutdown: ends every wait for a lock. */
  readonly signal?: AbortSignal | undefined;
  /** Problems that fail nothing [default: a warning on stderr]. */
  readonly onWarning?: ((message: string) => void) | undefined;
  /** The daemon's own cluster agent [default: the agent's socket]. */
  readonly cluster?: ClusterLink | undefined;
}

export async function contextFrom(flags: DockerFlags, hooks: ContextHooks = {}): Promise<Context> {
  const paths = pathsFrom(flags);
  const docker = await dockerClient(flags.dockerHost);
  const commands = new ChildProcessCommands();
  const { engine, store, pins, firewall, wirer, sandboxes } = createWirer({
    paths, timeoutMs: Math.round(flags.timeout * 1000), podNamespace: flags.podNamespace, trace: traceFrom(flags, hooks.observe), onProgress: hooks.onProgress, signal: hooks.signal,
    onWarning: hooks.onWarning ?? ((message) => { process.stderr.write(`dockcni: warning: ${message}\n`); }), commands, cluster: hooks.cluster,
  });
  const collector = new Collector({ docker, wirer, engine, store, pins, firewall, confDir: paths.confDir, sandboxGraceMs: flags.sandboxGrace * 1000 });
  return { paths, docker, engine, store, pins, wirer, sandboxes, collector, commands };
}
