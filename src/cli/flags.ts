import type { Argv } from 'yargs';
import { resolvePaths, type PathFlags, type Paths } from '../paths.js';

/**
 * The flags commands share, and nothing heavy: a command's builder runs even for its --help, so this
 * module imports neither the engine nor Docker.
 */

/** Flags every command that touches CNI shares. */
export interface CniFlags extends PathFlags {
  readonly timeout: number;
  readonly trace: boolean;
}

export function withCniFlags<T>(yargs: Argv<T>) {
  return yargs
    .option('conf-dir', { type: 'string', describe: 'CNI network configs [env NETCONFPATH; default /etc/cni/net.d]' })
    .option('cni-path', { type: 'string', describe: 'plugin directories, ":"-separated [env CNI_PATH; default /opt/cni/bin:/usr/libexec/cni:/usr/lib/cni]' })
    .option('cache-dir', { type: 'string', describe: 'libcni result cache [default /var/lib/cni]' })
    .option('state-dir', { type: 'string', describe: 'attachment records [default /var/lib/dockcni]' })
    .option('run-dir', { type: 'string', describe: 'pinned netns and locks [default /run/dockcni]' })
    .option('timeout', { type: 'number', default: 120, describe: 'seconds a plugin call may take before it is killed' })
    .option('trace', { type: 'boolean', default: false, describe: 'print every plugin call (env, stdin, stdout, exit, time) on stderr' });
}

export function pathsFrom(flags: CniFlags): Paths {
  return resolvePaths(flags);
}

export interface DockerFlags extends CniFlags {
  readonly dockerHost?: string | undefined;
  readonly podNamespace: string;
  readonly sandboxGrace: number;
}

export function withDockerFlags<T>(yargs: Argv<T>) {
  return withCniFlags(yargs)
    .option('docker-host', { type: 'string', describe: 'Docker endpoint [env DOCKER_HOST; default unix:///var/run/docker.sock]' })
    .option('pod-namespace', { type: 'string', default: 'default', describe: 'K8S_POD_NAMESPACE passed to plugins for every container' })
    .option('sandbox-grace', { type: 'number', default: 30, describe: 'seconds a `run` sandbox may wait for its app before it counts as leftover' });
}
