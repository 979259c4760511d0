import { spawn } from 'node:child_process';
import { DockcniError } from './errors.js';

/** A host program's run to its end. */
export interface CommandRun {
  /** Its exit status; 127 when it could not start, 124 when it was killed at its timeout. */
  readonly exitCode: number;
  readonly stdout: string;
  /** Or, when it could not start or was cut off, why. */
  readonly stderr: string;
}

export interface CommandOptions {
  /** Killed past it [default 60 s]: a hung iptables or mount must not hang a container's start. */
  readonly timeoutMs?: number | undefined;
  readonly env?: Readonly<Record<string, string>> | undefined;
  readonly input?: string | undefined;
  /** In its own process group, so a Ctrl-C meant for someone else does not cut it short. */
  readonly detached?: boolean | undefined;
}

/**
 * The one way dockcni runs host programs (iptables, mount, nsenter, ip, runc, docker): entry points
 * build the real one, tests give a fake. CNI plugins are not host programs: they run through the
 * engine's own seam (cni/plugin-exec.ts), as libcni runs them.
 */
export interface HostCommands {
  /** Never rejects for the program's own failure: `exitCode` says it. */
  run(file: string, args: readonly string[], options?: CommandOptions): Promise<CommandRun>;
}

/** A host program that failed: the command line, its status and what it said. */
export class HostCommandError extends DockcniError {
  override readonly name = 'HostCommandError';
  constructor(readonly command: readonly string[], readonly result: CommandRun, fix?: string) {
    super('host-command', `${command.join(' ')} failed (exit ${result.exitCode}): ${result.stderr.trim().split('\n')[0] ?? ''}`, fix === undefined ? {} : { fix });
  }
}

/** Runs it and throws a HostCommandError unless it exits 0. */
export async function succeed(commands: HostCommands, file: string, args: readonly string[], options: CommandOptions & { readonly fix?: string } = {}): Promise<CommandRun> {
  const result = await commands.run(file, args, options);
  if (result.exitCode !== 0) throw new HostCommandError([file, ...args], result, options.fix);
  return result;
}

const DEFAULT_TIMEOUT_MS = 60_000;
/** iptables-save of a busy host is megabytes; more than this is not a host program's answer. */
const MAX_OUTPUT = 64 * 1024 * 1024;

/**
 * With node:child_process, no shell, arguments as a list. Not execa: on the paths that run host
 * programs (a container's pin and port rules, the runtime's create) loading execa cost more than the
 * calls themselves (`npm run bench`).
 */
export class ChildProcessCommands implements HostCommands {
  run(file: string, args: readonly string[], options: CommandOptions = {}): Promise<CommandRun> {
    return new Promise((resolve) => {
      const child = spawn(file, args, { env: { ...process.env, ...options.env }, detached: options.detached ?? false, stdio: ['pipe', 'pipe', 'pipe'] });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let size = 0;
      let cutOff: string | undefined;
      const collect = (into: Buffer[]) => (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_OUTPUT) {
          cutOff = `printed more than ${MAX_OUTPUT} bytes: killed`;
          child.kill('SIGKILL');
          return;
        }
        into.push(chunk);
      };
      child.stdout.on('data', collect(out));
      child.stderr.on('data', collect(err));
      const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
      const timer = setTimeout(() => {
        cutOff = `did not finish within ${timeoutMs / 1000} s: killed`;
        child.kill('SIGKILL');
      }, timeoutMs);
      let failed: Error | undefined;
      child.once('error', (error) => { failed = error; });
      // A program that exits without reading its input closes the pipe: its exit status is what counts.
      child.stdin.on('error', () => undefined);
      child.stdin.end(options.input ?? '');
      child.once('close', (code) => {
        clearTimeout(timer);
        resolve({
          exitCode: failed !== undefined ? 127 : cutOff !== undefined ? 124 : code ?? 1,
          stdout: Buffer.concat(out).toString('utf8'),
          stderr: failed?.message ?? cutOff ?? Buffer.concat(err).toString('utf8'),
        });
      });
    });
  }
}
