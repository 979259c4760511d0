import { execa } from 'execa';
import type { PluginExec, PluginExecOutcome, PluginExecRequest } from './plugin-exec.js';

/** Enough for any real result; a plugin printing more is broken and is cut off. */
export const MAX_PLUGIN_OUTPUT = 4 * 1024 * 1024;

/** Runs plugins with execa: no shell, the runtime's environment plus CNI_*, killed only on timeout. */
export class ExecaPluginExec implements PluginExec {
  async run(request: PluginExecRequest): Promise<PluginExecOutcome> {
    const started = performance.now();
    const result = await execa(request.file, [], {
      input: request.stdin,
      env: request.env,
      extendEnv: true,
      reject: false,
      timeout: request.timeoutMs,
      killSignal: 'SIGKILL',
      maxBuffer: MAX_PLUGIN_OUTPUT,
      stripFinalNewline: false,
      shell: false,
      // A plugin stopped halfway leaves half its work behind (a DEL that removed the veth but not the
      // masquerade chain can never be redone), so it runs to completion or to its timeout: it neither
      // dies with dockcni nor gets the terminal's Ctrl-C meant for dockcni run's app.
      cleanup: false,
      detached: true,
    });
    const spawnFailed = result.exitCode === undefined && result.signal === undefined && !result.timedOut && !result.isMaxBuffer;
    return {
      stdout: typeof result.stdout === 'string' ? result.stdout : '',
      stderr: typeof result.stderr === 'string' ? result.stderr : '',
      exitCode: result.exitCode,
      signal: result.signal,
      timedOut: result.timedOut,
      outputTooLarge: result.isMaxBuffer,
      spawnError: spawnFailed ? (result.cause instanceof Error ? result.cause : new Error(result.message)) : undefined,
      durationMs: performance.now() - started,
    };
  }
}
