import { spawn } from 'node:child_process';

/** A program's run to its end: its exit status (127 when it could not start) and its output. */
export interface FileRun {
  readonly exitCode: number;
  readonly stdout: string;
  /** Or, when it could not start, why. */
  readonly stderr: string;
}

/**
 * Runs a program with node:child_process, no shell, and never rejects: callers word the failure they
 * care about. Not execa: on the paths that use it (a container's port rules, `dockcni run`'s docker
 * calls) loading execa cost more than the calls. `detached`: in its own process group, so a Ctrl-C
 * meant for someone else does not cut it short.
 */
export function runFile(file: string, args: readonly string[], options: { env?: Readonly<Record<string, string>>; detached?: boolean } = {}): Promise<FileRun> {
  return new Promise((resolve) => {
    const child = spawn(file, args, { env: { ...process.env, ...options.env }, detached: options.detached ?? false, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    let failed: Error | undefined;
    child.once('error', (error) => { failed = error; });
    child.once('close', (code) => resolve({
      exitCode: failed === undefined ? code ?? 1 : 127,
      stdout: Buffer.concat(out).toString('utf8'),
      stderr: failed?.message ?? Buffer.concat(err).toString('utf8'),
    }));
  });
}
