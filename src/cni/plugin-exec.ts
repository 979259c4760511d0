/** The one seam through which plugins run (libcni's invoke.Exec): tests swap it, nothing else runs processes. */
export interface PluginExecRequest {
  readonly file: string;
  readonly env: Readonly<Record<string, string>>;
  readonly stdin: string;
  readonly timeoutMs: number;
}

export interface PluginExecOutcome {
  readonly stdout: string;
  readonly stderr: string;
  /** undefined when killed by a signal or never started. */
  readonly exitCode: number | undefined;
  readonly signal: string | undefined;
  readonly timedOut: boolean;
  /** stdout or stderr passed the output cap and was cut. */
  readonly outputTooLarge: boolean;
  /** The process could not be started at all (ENOENT, EACCES, ENOEXEC…). */
  readonly spawnError: Error | undefined;
  readonly durationMs: number;
}

export interface PluginExec {
  run(request: PluginExecRequest): Promise<PluginExecOutcome>;
}
