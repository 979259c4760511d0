import type { CniEngine } from '../cni/engine.js';
import type { TraceSink } from '../cni/invoke.js';
import { FileLocks } from '../cni/lock.js';
import type { DockerClient } from '../docker/docker-client.js';
import { Collector } from '../gc/collector.js';
import { locksDir, pinsDir, type Paths } from '../paths.js';
import { AttachmentStore } from '../state/attachment-store.js';
import { IptablesHostFirewall } from '../wiring/host-firewall.js';
import { BindMountPins } from '../wiring/netns-pins.js';
import { Wirer } from '../wiring/wirer.js';
import { engineFrom } from './engine.js';
import { pathsFrom, type DockerFlags } from './flags.js';

/** Everything the Docker-facing commands share, built once at the entry point. */
export interface Context {
  readonly paths: Paths;
  readonly docker: DockerClient;
  readonly engine: CniEngine;
  readonly store: AttachmentStore;
  readonly pins: BindMountPins;
  readonly wirer: Wirer;
  readonly collector: Collector;
}

/** `signal`: shutdown, which ends every wait for a lock. */
export async function contextFrom(flags: DockerFlags, onProgress?: (step: string) => void, observe?: TraceSink, signal?: AbortSignal): Promise<Context> {
  const paths = pathsFrom(flags);
  // dockerode is loaded only by the commands that talk to Docker: `dockcni cni …` starts faster without it.
  const { DockerodeClient } = await import('../docker/dockerode-client.js');
  const { resolveDockerEndpoint } = await import('../docker/endpoint.js');
  const docker = new DockerodeClient(resolveDockerEndpoint(flags.dockerHost));
  const engine = engineFrom(flags, paths, observe, signal);
  const store = new AttachmentStore(paths.stateDir);
  const pins = new BindMountPins(pinsDir(paths));
  const firewall = new IptablesHostFirewall();
  const wirer = new Wirer({ engine, store, pins, locks: new FileLocks(locksDir(paths), undefined, signal), firewall, confDir: paths.confDir, podNamespace: flags.podNamespace, onProgress });
  const collector = new Collector({ docker, wirer, engine, store, pins, firewall, confDir: paths.confDir, sandboxGraceMs: flags.sandboxGrace * 1000 });
  return { paths, docker, engine, store, pins, wirer, collector };
}
