/**
 * The one error tree of dockcni. Core modules classify failures with these classes; the CLI turns them
 * into wording and exit codes in one place. Each error names the bad value and, where there is one, the fix.
 */
export interface DockcniErrorOptions {
  readonly cause?: unknown;
  /** What the user can do about it; printed after the message. */
  readonly fix?: string;
}

/**
 * Every kind of failure dockcni reports, as a stable tag for scripts and for code that decides what to
 * do (retry, report). A plain Error is a bug in dockcni.
 */
export type ErrorCode =
  // input and configuration
  | 'invalid-input' | 'config-invalid' | 'network-not-found' | 'plugin-not-found' | 'capability-missing' | 'validation-failed'
  // the engine and plugins
  | 'plugin-failed' | 'no-result' | 'rollback-failed' | 'not-attached' | 'check-unsupported' | 'lock-timeout'
  | 'host-netns' | 'netns-missing' | 'netns-unreadable' | 'interface-exists'
  // wiring a container
  | 'wire-failed' | 'network-mode' | 'port-in-use' | 'no-pid' | 'no-netns' | 'pin-failed' | 'pid-reused' | 'firewall'
  | 'container-file' | 'container-file-path' | 'name-taken' | 'not-a-sandbox' | 'sandbox-exited'
  // commands
  | 'aborted' | 'cluster-fenced' | 'docker-unsupported' | 'etcd-unavailable' | 'host-command' | 'untrusted-path' | 'docker-api' | 'not-found' | 'already-exists' | 'not-running' | 'already-wired' | 'not-wired' | 'gc-failed' | 'cleanup-failed' | 'daemon-running';

export class DockcniError extends Error {
  override readonly name: string = 'DockcniError';
  readonly code: ErrorCode;
  readonly fix: string | undefined;
  /** Errors of the cleanup that followed this failure (e.g. the DEL undoing a failed ADD). */
  rollbackErrors: readonly Error[] = [];

  constructor(code: ErrorCode, message: string, options: DockcniErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.fix = options.fix;
  }
}

/** A conf file that cannot be used: unreadable, not JSON, or not a valid CNI config. */
export class ConfigError extends DockcniError {
  override readonly name = 'ConfigError';
  constructor(readonly file: string, readonly reason: string, options: DockcniErrorOptions = {}) {
    super('config-invalid', `${file}: ${reason}`, options);
  }
}

/** No network of that name, in the conf dir nor embedded. Lists the files that could not be read. */
export class NetworkNotFoundError extends DockcniError {
  override readonly name = 'NetworkNotFoundError';
  /** `brokenFiles`: "file: reason" of each file that could not be loaded; it may have held the network. */
  constructor(readonly network: string, readonly dir: string, readonly brokenFiles: readonly string[] = []) {
    const broken = brokenFiles.length > 0 ? `; ${brokenFiles.length} file(s) there could not be loaded: ${brokenFiles.join('; ')}` : '';
    const add = `add a .conflist with "name": "${network}" to ${dir}, or pick one listed by \`dockcni networks ls\``;
    super('network-not-found', `no network named "${network}" in ${dir}${broken}`, {
      fix: brokenFiles.length > 0 ? `if one of those files is meant to define it, correct it (\`dockcni networks validate\`); otherwise ${add}` : add,
    });
  }
}

export class PluginNotFoundError extends DockcniError {
  override readonly name = 'PluginNotFoundError';
  constructor(readonly plugin: string, readonly searched: readonly string[]) {
    super('plugin-not-found', `CNI plugin "${plugin}" not found in ${searched.join(':') || '(empty plugin path)'}`, {
      fix: `install it (Debian: apt-get install containernetworking-plugins) or point --cni-path / CNI_PATH at the directory holding it`,
    });
  }
}

/** A value from a flag, a label or a file that fails validation. */
export class InvalidInputError extends DockcniError {
  override readonly name = 'InvalidInputError';
  constructor(readonly field: string, readonly value: string, readonly reason: string, fix?: string) {
    super('invalid-input', `invalid ${field} ${JSON.stringify(value)}: ${reason}`, fix === undefined ? {} : { fix });
  }
}

export class DockerApiError extends DockcniError {
  override readonly name = 'DockerApiError';
  constructor(message: string, readonly statusCode: number | undefined, options: DockcniErrorOptions = {}) {
    super('docker-api', message, options);
  }
}

/** A wait cut short because dockcni is shutting down. */
export function abortedError(what: string, signal: AbortSignal): DockcniError {
  return new DockcniError('aborted', `stopped waiting for ${what}: dockcni is shutting down`, { cause: signal.reason });
}

/** Resolves after `ms`, or rejects with an `aborted` error as soon as the signal fires. */
export function abortableSleep(ms: number, what: string, signal: AbortSignal | undefined): Promise<void> {
  if (signal?.aborted) return Promise.reject(abortedError(what, signal));
  return new Promise((resolve, reject) => {
    const onAbort = () => { clearTimeout(timer); reject(abortedError(what, signal!)); };
    const timer = setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve(); }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Every error's message plus its causes, one step of context each, for logs and the CLI. */
export function describeError(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; current !== undefined && depth < 5; depth++) {
    if (current instanceof Error) {
      if (!parts.some((p) => p.includes(current instanceof Error ? current.message : ''))) parts.push(current.message);
      current = current.cause;
    } else {
      parts.push(String(current));
      current = undefined;
    }
  }
  return parts.join(': ');
}

/** The fix of the error or of the first cause that has one. */
export function fixOf(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; current instanceof Error && depth < 5; depth++) {
    if (current instanceof DockcniError && current.fix !== undefined) return current.fix;
    current = current.cause;
  }
  return undefined;
}
