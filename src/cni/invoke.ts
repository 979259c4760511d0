import { CniPluginError } from './plugin-error.js';
import type { PluginExec, PluginExecOutcome } from './plugin-exec.js';
import { findPlugin } from './plugin-path.js';
import type { CniCommand } from './types.js';

/** One plugin call, as `--trace` shows it: the CNI exchange made visible. */
export interface TraceRecord {
  readonly plugin: string;
  readonly file: string;
  readonly command: CniCommand;
  readonly env: Readonly<Record<string, string>>;
  readonly stdin: string;
  readonly stdout: string;
  readonly stderr: string;
  readonly exitCode: number | undefined;
  readonly signal: string | undefined;
  readonly durationMs: number;
}

export type TraceSink = (record: TraceRecord) => void;

export interface InvokeContext {
  readonly exec: PluginExec;
  readonly pluginPath: readonly string[];
  readonly timeoutMs: number;
  readonly trace?: TraceSink | undefined;
}

export interface InvokeRequest {
  readonly plugin: string;
  readonly command: CniCommand;
  /** The CNI_* variables other than CNI_COMMAND and CNI_PATH. */
  readonly env: Readonly<Record<string, string>>;
  readonly stdin: string;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function firstLine(text: string): string {
  return text.trim().split('\n')[0]?.slice(0, 500) ?? '';
}

/** libcni RawExec.pluginErr, plus the ways a process can die that libcni leaves to Go's exec. */
function failure(request: InvokeRequest, outcome: PluginExecOutcome, timeoutMs: number): CniPluginError | undefined {
  const base = { plugin: request.plugin, command: request.command, stderr: outcome.stderr, exitCode: outcome.exitCode, signal: outcome.signal };
  if (outcome.spawnError) return new CniPluginError({ ...base, kind: 'spawn', msg: `cannot start: ${outcome.spawnError.message}`, cause: outcome.spawnError });
  if (outcome.timedOut) return new CniPluginError({ ...base, kind: 'timeout', msg: `did not finish within ${timeoutMs / 1000} s and was killed` });
  if (outcome.outputTooLarge) return new CniPluginError({ ...base, kind: 'output-too-large', msg: 'printed more output than any result needs; cut off and killed' });
  if (outcome.signal !== undefined) return new CniPluginError({ ...base, kind: 'signal', msg: `killed by ${outcome.signal}${outcome.stderr ? `: ${firstLine(outcome.stderr)}` : ''}` });
  if (outcome.exitCode === 0) return undefined;
  if (outcome.stdout.trim() === '') {
    const said = firstLine(outcome.stderr);
    return new CniPluginError({ ...base, kind: 'no-output', msg: said ? said : `exited with status ${outcome.exitCode} and printed nothing` });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(outcome.stdout);
  } catch (error) {
    return new CniPluginError({ ...base, kind: 'bad-output', msg: `exited with status ${outcome.exitCode}; its output is not JSON: ${JSON.stringify(firstLine(outcome.stdout).slice(0, 120))}`, cause: error });
  }
  if (!isObject(parsed) || typeof parsed['code'] !== 'number') {
    return new CniPluginError({ ...base, kind: 'bad-output', msg: `exited with status ${outcome.exitCode}; its output is not a CNI error object` });
  }
  return new CniPluginError({
    ...base,
    kind: 'error-result',
    cniCode: parsed['code'],
    msg: typeof parsed['msg'] === 'string' ? parsed['msg'] : '(no msg)',
    details: typeof parsed['details'] === 'string' && parsed['details'] !== '' ? parsed['details'] : undefined,
  });
}

/** Finds the plugin, runs it once through the exec seam, and returns its stdout or a CniPluginError. */
export async function invokePlugin(ctx: InvokeContext, request: InvokeRequest): Promise<string> {
  const file = findPlugin(request.plugin, ctx.pluginPath);
  const env = { CNI_COMMAND: request.command, ...request.env, CNI_PATH: ctx.pluginPath.join(':') };
  const outcome = await ctx.exec.run({ file, env, stdin: request.stdin, timeoutMs: ctx.timeoutMs });
  ctx.trace?.({
    plugin: request.plugin, file, command: request.command, env, stdin: request.stdin,
    stdout: outcome.stdout, stderr: outcome.stderr, exitCode: outcome.exitCode, signal: outcome.signal, durationMs: outcome.durationMs,
  });
  const error = failure(request, outcome, ctx.timeoutMs);
  if (error) throw error;
  return outcome.stdout;
}
