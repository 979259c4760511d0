import { spawn } from 'node:child_process';
import type { PluginExec, PluginExecOutcome, PluginExecRequest } from './plugin-exec.js';

/** Enough for any real result; a plugin printing more is broken and is cut off. */
export const MAX_PLUGIN_OUTPUT = 4 * 1024 * 1024;

/**
 * Runs plugins with node:child_process: no shell, the runtime's environment plus CNI_*, killed only on
 * timeout. Not execa: loading it costs more than the plugin calls of a whole container start, and
 * the runtime pays that on every `create` (`npm run bench`).
 */
export class SpawnPluginExec implements PluginExec {
  run(request: PluginExecRequest): Promise<PluginExecOutcome> {
    const started = performance.now();
    return new Promise((resolve) => {
      const child = spawn(request.file, [], {
        env: { ...process.env, ...request.env },
        shell: false,
        stdio: ['pipe', 'pipe', 'pipe'],
        // A plugin stopped halfway leaves half its work behind (a DEL that removed the veth but not the
        // masquerade chain can never be redone), so it runs to completion or to its timeout: in its own
        // process group it neither gets the terminal's Ctrl-C meant for dockcni run's app nor dies with dockcni.
        detached: true,
      });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let size = 0;
      let timedOut = false;
      let outputTooLarge = false;
      let spawnError: Error | undefined;
      const collect = (into: Buffer[]) => (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_PLUGIN_OUTPUT) {
          outputTooLarge = true;
          child.kill('SIGKILL');
          return;
        }
        into.push(chunk);
      };
      child.stdout.on('data', collect(out));
      child.stderr.on('data', collect(err));
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
      }, request.timeoutMs);
      child.on('error', (error) => { spawnError = error; });
      // A plugin that exits without reading its config closes the pipe: its exit status is what counts.
      child.stdin.on('error', () => undefined);
      child.stdin.end(request.stdin);
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        resolve({
          stdout: Buffer.concat(out).toString('utf8'),
          stderr: Buffer.concat(err).toString('utf8'),
          // A process that never started still closes, with -errno as its "exit code".
          exitCode: spawnError === undefined ? code ?? undefined : undefined,
          signal: signal ?? undefined,
          timedOut,
          outputTooLarge,
          spawnError,
          durationMs: performance.now() - started,
        });
      });
    });
  }
}
