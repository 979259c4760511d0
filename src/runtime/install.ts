import { chownSync, existsSync, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import type { DockerClient } from '../docker/docker-client.js';
import { describeError, DockcniError } from '../errors.js';
import { writeFileAtomic } from '../fs-atomic.js';
import { packageRoot } from '../package-root.js';
import { succeed, type HostCommands } from '../host-commands.js';
import { runtimeArgs, type RuntimeOptions } from './invocation.js';
import { checkTrustedPaths, untrustedPathProblems } from './trusted-paths.js';

export const DEFAULT_DAEMON_JSON = '/etc/docker/daemon.json';
export const DEFAULT_RUNTIME_NAME = 'dockcni';
/** The script the shim calls, in this package. */
export const RUNTIME_SCRIPT = path.join(packageRoot(), 'bin/dockcni-runtime');
/** Its Node half: src/runtime/main.ts bundled into one file by `npm run build` (one module to load on each container start). */
export const RUNTIME_ENTRY = path.join(packageRoot(), 'dist/runtime/main.mjs');
/** dockerd's own runtime, its default when daemon.json names none. */
const STOCK_RUNTIME = 'runc';
/** dockerd's default pid file. */
const DOCKERD_PID_FILE = '/var/run/docker.pid';
const RELOAD_WAIT_MS = 10_000;

/** One entry of daemon.json's `runtimes`. */
export interface RuntimeEntry {
  readonly path: string;
  readonly runtimeArgs?: readonly string[];
}

type DaemonJson = Record<string, unknown> & { runtimes?: Record<string, RuntimeEntry>; 'default-runtime'?: string };

export interface RuntimeChange {
  readonly daemonJson: string;
  /** The file as it was, when there was one and it changed. */
  readonly backup?: string | undefined;
  readonly changed: boolean;
  /** How dockerd was told: the pid that got SIGHUP. */
  readonly reloadedPid?: number | undefined;
  /** Uninstalled, but dockerd lists the runtime until it restarts. */
  readonly listedUntilRestart?: boolean | undefined;
}

function readDaemonJson(file: string): { config: DaemonJson; existed: boolean } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { config: {}, existed: false };
    throw new DockcniError('config-invalid', `cannot read ${file}: ${(error as Error).message}`, { cause: error });
  }
  let parsed: unknown;
  try {
    parsed = text.trim() === '' ? {} : JSON.parse(text);
  } catch (error) {
    throw new DockcniError('config-invalid', `${file} is not valid JSON: ${(error as Error).message}`, { cause: error, fix: 'correct it by hand first: dockerd cannot read it either' });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new DockcniError('config-invalid', `${file} does not hold a JSON object`, { fix: 'correct it by hand first: dockerd cannot read it either' });
  }
  const runtimes = (parsed as DaemonJson).runtimes;
  if (runtimes !== undefined && (typeof runtimes !== 'object' || runtimes === null || Array.isArray(runtimes))) {
    throw new DockcniError('config-invalid', `${file}: "runtimes" is not an object`, { fix: 'correct it by hand first: dockerd cannot read it either' });
  }
  return { config: parsed as DaemonJson, existed: true };
}

/**
 * Every other key and runtime kept; written atomically, with the mode and owner it had (a 0600 file
 * stays 0600). A daemon.json that is a symlink is written through to the file it names (the link
 * stays); the backup beside it is a new file, never written through a link that someone put there.
 */
async function writeDaemonJson(file: string, existed: boolean, next: DaemonJson): Promise<string | undefined> {
  const real = existed ? realpathSync(file) : file;
  const before = existed ? statSync(real) : undefined;
  const mode = before === undefined ? 0o644 : before.mode & 0o7777;
  const backup = existed ? `${file}.dockcni-backup` : undefined;
  const keepOwner = (written: string) => { if (before !== undefined && (before.uid !== 0 || before.gid !== 0)) chownSync(written, before.uid, before.gid); };
  if (backup !== undefined) {
    // rename() replaces a link at the backup's path instead of following it.
    await writeFileAtomic(backup, readFileSync(real), { file: mode, dir: 0o755 });
    keepOwner(backup);
  }
  await writeFileAtomic(real, `${JSON.stringify(next, null, 2)}\n`, { file: mode, dir: 0o755 });
  keepOwner(real);
  return backup;
}

const isDockerd = (pid: number): boolean => {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'dockerd' || path.basename(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0] ?? '') === 'dockerd';
  } catch {
    return false; // no such process (a stale pid file), or it exited while being read
  }
};

/**
 * dockerd's pid: from its pid file when that process is dockerd (a stale file can name any process,
 * which must never get the SIGHUP), else the one process named dockerd.
 */
export function dockerdPid(pidFile = DOCKERD_PID_FILE): number {
  const fromFile = existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8').trim()) : NaN;
  if (Number.isInteger(fromFile) && fromFile > 0 && isDockerd(fromFile)) return fromFile;
  const found = readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((p) => isDockerd(Number(p)));
  if (found.length !== 1) {
    throw new DockcniError('not-running', found.length === 0 ? 'no dockerd process found to reload' : `${found.length} dockerd processes: cannot tell which one to reload`, {
      fix: 'reload it yourself: systemctl reload docker (or kill -HUP <dockerd pid>)',
    });
  }
  return Number(found[0]);
}

/** SIGHUP, then waits until dockerd lists (or no longer lists) the runtime. */
async function reload(docker: DockerClient, name: string, present: boolean): Promise<number> {
  const pid = dockerdPid();
  process.kill(pid, 'SIGHUP');
  const deadline = Date.now() + RELOAD_WAIT_MS;
  for (;;) {
    const { names } = await docker.runtimes();
    if (names.includes(name) === present) return pid;
    if (Date.now() > deadline) {
      throw new DockcniError('config-invalid', `dockerd (pid ${pid}) was sent SIGHUP but ${present ? 'does not list' : 'still lists'} runtime ${name} after ${RELOAD_WAIT_MS / 1000} s`, {
        fix: 'dockerd rejected the new daemon.json: see its log (journalctl -u docker) for why',
      });
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

export interface InstallOptions {
  readonly docker: DockerClient;
  readonly name: string;
  readonly daemonJson: string;
  readonly runtime: RuntimeOptions;
  /** Make it dockerd's default-runtime: every container goes through it (those without the label pass straight to runc). */
  readonly makeDefault: boolean;
  readonly reload: boolean;
}

/** What dockerd runs as root on each container start through this entry: the script, its Node entry, Node and runc. */
function chainOf(entry: RuntimeEntry): string[] {
  const option = (name: string) => entry.runtimeArgs?.find((a) => a.startsWith(`--dockcni-${name}=`))?.slice(`--dockcni-${name}=`.length);
  const entryBeside = existsSync(entry.path) ? path.join(path.dirname(realpathSync(entry.path)), path.relative(path.dirname(RUNTIME_SCRIPT), RUNTIME_ENTRY)) : RUNTIME_ENTRY;
  return [entry.path, entryBeside, ...[option('node'), option('runc')].filter((p): p is string => p !== undefined)];
}

export async function installRuntime(o: InstallOptions): Promise<RuntimeChange> {
  const { config, existed } = readDaemonJson(o.daemonJson);
  const entry: RuntimeEntry = { path: RUNTIME_SCRIPT, runtimeArgs: runtimeArgs(o.runtime) };
  checkTrustedPaths(chainOf(entry));
  const next: DaemonJson = { ...config, runtimes: { ...config.runtimes, [o.name]: entry } };
  if (o.makeDefault) next['default-runtime'] = o.name;
  const changed = JSON.stringify(next) !== JSON.stringify(config);
  const backup = changed ? await writeDaemonJson(o.daemonJson, existed, next) : undefined;
  const reloadedPid = o.reload ? await reload(o.docker, o.name, true) : undefined;
  return { daemonJson: o.daemonJson, backup, changed, reloadedPid };
}

export async function uninstallRuntime(o: Pick<InstallOptions, 'docker' | 'name' | 'daemonJson' | 'reload'>): Promise<RuntimeChange> {
  const { config, existed } = readDaemonJson(o.daemonJson);
  if (!existed || config.runtimes?.[o.name] === undefined) return { daemonJson: o.daemonJson, changed: false };
  const { [o.name]: _removed, ...runtimes } = config.runtimes;
  const next: DaemonJson = { ...config, runtimes };
  if (Object.keys(runtimes).length === 0) delete next.runtimes;
  // dockerd reloads default-runtime only from a file that sets it: without the key it keeps this
  // runtime as its default, and 20.10 then crashes on its next reload or `docker info` once the
  // runtime is gone from its list. runc is its own default.
  if (next['default-runtime'] === o.name) next['default-runtime'] = STOCK_RUNTIME;
  const backup = await writeDaemonJson(o.daemonJson, existed, next);
  // dockerd reloads its runtimes only from a daemon.json that names at least one (an empty or missing
  // "runtimes" leaves them as they were): then only a restart makes it forget this one.
  const untilRestart = next.runtimes === undefined;
  let reloadedPid: number | undefined;
  if (o.reload && untilRestart) {
    reloadedPid = dockerdPid();
    process.kill(reloadedPid, 'SIGHUP');
  } else if (o.reload) reloadedPid = await reload(o.docker, o.name, false);
  return { daemonJson: o.daemonJson, backup, changed: true, reloadedPid, listedUntilRestart: untilRestart };
}

export interface RuntimeStatus {
  readonly name: string;
  readonly daemonJson: string;
  /** The daemon.json entry, if any. */
  readonly entry?: RuntimeEntry | undefined;
  /** dockerd lists it (undefined: Docker could not be asked). */
  readonly registered?: boolean | undefined;
  readonly isDefault: boolean;
  /** `<path> <runtimeArgs> --version` answered (the script, and runc through it), and its Node half loads its wiring modules. */
  readonly answering: boolean;
  readonly problem?: string | undefined;
  /** Paths on the chain dockerd runs as root that someone other than root can change. */
  readonly untrusted: readonly string[];
}

export async function runtimeStatus(docker: DockerClient, commands: HostCommands, name: string, daemonJson: string): Promise<RuntimeStatus> {
  const { config } = readDaemonJson(daemonJson);
  const entry = config.runtimes?.[name];
  let registered: boolean | undefined;
  let isDefault = false;
  let problem: string | undefined;
  try {
    const info = await docker.runtimes();
    registered = info.names.includes(name);
    isDefault = info.defaultRuntime === name;
  } catch (error) {
    problem = describeError(error);
  }
  let answering = false;
  if (entry !== undefined) {
    try {
      await succeed(commands, entry.path, [...entry.runtimeArgs ?? [], '--version'], { timeoutMs: 10_000 });
      const node = entry.runtimeArgs?.find((a) => a.startsWith('--dockcni-node='))?.slice('--dockcni-node='.length) ?? 'node';
      await succeed(commands, node, [RUNTIME_ENTRY, 'check'], { timeoutMs: 10_000 });
      answering = true;
    } catch (error) {
      problem = describeError(error);
    }
  }
  const untrusted = entry === undefined ? [] : untrustedPathProblems(chainOf(entry));
  return { name, daemonJson, entry, registered, isDefault, answering, problem, untrusted };
}
