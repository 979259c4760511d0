import { createEngine } from '../cni/create-engine.js';
import type { CniEngine } from '../cni/engine.js';
import type { TraceSink } from '../cni/invoke.js';
import { locksDir, type Paths } from '../paths.js';
import { pathsFrom, type CniFlags } from './flags.js';
import { traceTo } from './output.js';

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
