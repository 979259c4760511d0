import { createEngine } from '../cni/create-engine.js';
import type { CniEngine } from '../cni/engine.js';
import type { TraceSink } from '../cni/invoke.js';
import { locksDir, type Paths } from '../paths.js';
import { pathsFrom, type CniFlags } from './flags.js';
import { traceTo } from './output.js';

/** What sees each plugin call: --trace prints it, `observe` (the daemon's timing) takes it too. */
export function traceFrom(flags: CniFlags, observe?: TraceSink): TraceSink | undefined {
  const sinks = [flags.trace ? traceTo(process.stderr) : undefined, observe].filter((s): s is TraceSink => s !== undefined);
  return sinks.length === 0 ? undefined : (record) => { for (const sink of sinks) sink(record); };
}

export function engineFrom(flags: CniFlags, paths: Paths = pathsFrom(flags), observe?: TraceSink, signal?: AbortSignal): CniEngine {
  return createEngine({
    pluginPath: paths.cniPath,
    cacheDir: paths.cacheDir,
    locksDir: locksDir(paths),
    timeoutMs: Math.round(flags.timeout * 1000),
    signal,
    trace: traceFrom(flags, observe),
  });
}
