import { CniEngine, DEFAULT_PLUGIN_TIMEOUT_MS } from './engine.js';
import { SpawnPluginExec } from './spawn-plugin-exec.js';
import type { TraceSink } from './invoke.js';
import { FileLocks } from './lock.js';
import { ProcNetnsGuard } from './netns-guard.js';
import { ChildProcessCommands, type HostCommands } from '../host-commands.js';

export interface CreateEngineOptions {
  readonly pluginPath: readonly string[];
  readonly cacheDir: string;
  /** Where the cross-process lock files live (a tmpfs such as /run: locks must not outlive a reboot). */
  readonly locksDir: string;
  readonly timeoutMs?: number;
  readonly trace?: TraceSink | undefined;
  /** Shutdown: lock waits end when it fires (a plugin already running still runs to its end). */
  readonly signal?: AbortSignal | undefined;
  /** How host programs run (nsenter for the ADD's pre-check) [default: child processes]. */
  readonly commands?: HostCommands | undefined;
}

/** The engine with its real collaborators (plugin processes, lock files): for entry points and library users. */
export function createEngine(options: CreateEngineOptions): CniEngine {
  return new CniEngine({
    exec: new SpawnPluginExec(),
    locks: new FileLocks(options.locksDir, undefined, options.signal),
    pluginPath: options.pluginPath,
    cacheDir: options.cacheDir,
    timeoutMs: options.timeoutMs ?? DEFAULT_PLUGIN_TIMEOUT_MS,
    trace: options.trace,
    netns: new ProcNetnsGuard(options.commands ?? new ChildProcessCommands()),
  });
}
