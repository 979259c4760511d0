import type { Argv } from 'yargs';
import { createEngine } from '../cni/create-engine.js';
import type { CniEngine } from '../cni/engine.js';
import { locksDir, resolvePaths, type PathFlags, type Paths } from '../paths.js';
import { traceTo } from './output.js';
import type { TraceSink } from '../cni/invoke.js';

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

/** `observe` sees every plugin call as well (the daemon's timing); --trace prints them. */
export function engineFrom(flags: CniFlags, paths: Paths = pathsFrom(flags), observe?: TraceSink, signal?: AbortSignal): CniEngine {
  const print = flags.trace ? traceTo(process.stderr) : undefined;
  const sinks = [print, observe].filter((s): s is TraceSink => s !== undefined);
  return createEngine({
    pluginPath: paths.cniPath,
    cacheDir: paths.cacheDir,
    locksDir: locksDir(paths),
    timeoutMs: Math.round(flags.timeout * 1000),
    signal,
    trace: sinks.length === 0 ? undefined : (record) => { for (const sink of sinks) sink(record); },
  });
}
