import { appendFileSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { ListedContainer } from '../docker/local-api.js';
import { describeError, DockcniError, fixOf, InvalidInputError } from '../errors.js';
import { ChildProcessCommands } from '../host-commands.js';
import { FileLocks } from '../cni/lock.js';
import { locksDir, resolvePaths } from '../paths.js';
import { AttachmentStore } from '../state/attachment-store.js';
import { HostsBook } from '../wiring/hosts-book.js';
import { createWirer, type WiringParts } from '../wiring/create-wirer.js';
import { commaSet, parseLabels, type LabelOptions } from '../wiring/labels.js';
import type { WireTarget } from '../wiring/intent.js';
import { optionsProblem, type Invocation, type RuntimeOptions } from './invocation.js';
import { report } from './report.js';

/** runc's delete and the wiring's host programs: one per process. */
const commands = new ChildProcessCommands();
const DEFAULT_TIMEOUT_SECONDS = 120;

/** The parts of an OCI bundle's config.json the wirer needs. */
interface OciSpec {
  readonly hostname?: string;
  readonly mounts?: readonly { readonly destination: string; readonly source?: string }[];
}

/** The plugins' own time in this process, for the timing file. */
let pluginMs = 0;

/** One line in --dockcni-timing-file: time since this process started (Node's start-up included), and the plugins' part. */
function timing(invocation: Invocation, op: 'add' | 'del'): void {
  const file = invocation.options.timingFile;
  if (file === undefined) return;
  appendFileSync(file, `${JSON.stringify({ op, containerId: invocation.containerId, tookMs: Math.round(performance.now()), pluginMs: Math.round(pluginMs) })}\n`);
}

/** dockcni's own log of what the runtime could not report to Docker: <state dir>/runtime.log, one JSON line each. */
function logLine(stateDir: string, fields: Readonly<Record<string, unknown>>): void {
  appendFileSync(path.join(stateDir, 'runtime.log'), `${JSON.stringify({ time: new Date().toISOString(), ...fields })}\n`);
}

function wiring(options: RuntimeOptions): WiringParts {
  const timeout = Number(options.timeout ?? DEFAULT_TIMEOUT_SECONDS);
  if (!Number.isFinite(timeout) || timeout < 0.1) throw new InvalidInputError('runtime option --dockcni-timeout', options.timeout ?? '', 'must be a number of seconds, at least 0.1', 'run `dockcni runtime install --timeout 120` again');
  // Only runtimeArgs configure the runtime: the shim's environment is dockerd's, not the operator's.
  const paths = resolvePaths(options, {});
  return createWirer({
    paths, timeoutMs: Math.round(timeout * 1000), podNamespace: options.podNamespace ?? 'default', trace: (call) => { pluginMs += call.durationMs; },
    onWarning: (message) => logLine(paths.stateDir, { level: 'warn', msg: message }), commands,
  });
}

function labelOptions(options: RuntimeOptions): LabelOptions {
  return {
    allowNetworks: options.allowNetworks === undefined ? undefined : commaSet(options.allowNetworks),
    allowArgs: options.allowArgs === undefined ? undefined : commaSet(options.allowArgs),
  };
}

/** The container runc has just created, as the wirer needs it: its process from the pid file, its files from the bundle. */
function target(invocation: Invocation, container: ListedContainer): WireTarget {
  if (invocation.pidFile === undefined || invocation.bundle === undefined) {
    throw new DockcniError('no-pid', 'runc create was called without --pid-file or --bundle: cannot find the container\'s process');
  }
  const pid = Number(readFileSync(invocation.pidFile, 'utf8').trim());
  const spec = JSON.parse(readFileSync(path.join(invocation.bundle, 'config.json'), 'utf8')) as OciSpec;
  const mounted = (destination: string) => spec.mounts?.find((m) => m.destination === destination)?.source;
  return {
    containerId: invocation.containerId, name: container.name, pid, startedAt: '', origin: 'runtime', networkMode: container.networkMode,
    hostname: spec.hostname, hostsPath: mounted('/etc/hosts'), resolvConfPath: mounted('/etc/resolv.conf'),
  };
}

/**
 * Wires a container between runc's create and its first instruction. A failure fails the create: the
 * wirer has undone its part, and the container runc made is deleted here, so nothing is left.
 */
export async function wireCreated(invocation: Invocation, container: ListedContainer): Promise<number> {
  try {
    const request = parseLabels(container.labels, labelOptions(invocation.options));
    if (request === undefined) return 0;
    await wiring(invocation.options).wirer.wire(target(invocation, container), request);
    timing(invocation, 'add');
    return 0;
  } catch (error) {
    return abandonCreate(invocation, error);
  }
}

/** Reports why the create failed, in the words Docker shows, and deletes the container runc created. */
export async function abandonCreate(invocation: Invocation, error: unknown): Promise<number> {
  const fix = fixOf(error);
  report(invocation, `dockcni: ${describeError(error)}${fix === undefined ? '' : ` (fix: ${fix})`}`);
  const deleted = await commands.run(invocation.options.runc ?? 'runc', [...invocation.runcGlobal, 'delete', '--force', invocation.containerId]);
  if (deleted.exitCode !== 0) report(invocation, `dockcni: could not delete the container runc created: ${deleted.stderr.trim()}`);
  return 1;
}

/**
 * Before `runc start`: the container's hosts file lost dockcni's lines (Docker 26+ rewrites it between
 * create and start), so they are written again from the records. A failure is logged, not fatal: the
 * container starts, without its peers' names until the next change on its networks rewrites them.
 */
export async function restoreNames(invocation: Invocation): Promise<number> {
  const paths = resolvePaths(invocation.options, {});
  try {
    const problem = optionsProblem(invocation);
    if (problem !== undefined) throw problem;
    const store = new AttachmentStore(paths.stateDir);
    const record = await store.read(invocation.containerId);
    if (record === undefined) return 0;
    const hosts = new HostsBook(store, new FileLocks(locksDir(paths)), (message) => logLine(paths.stateDir, { level: 'warn', msg: message }));
    await hosts.refresh([], [record]);
    return 0;
  } catch (error) {
    logLine(paths.stateDir, { level: 'error', containerId: invocation.containerId, msg: `could not restore the names in the hosts file: ${describeError(error)}`, fix: fixOf(error) });
    return 1;
  }
}

/**
 * The container's process is gone: DEL its networks (in the background of runc's delete). A failure
 * stays in the record (`dockcni ls` shows it; the daemon, `gc` or the next start finishes the job) and
 * in <state dir>/runtime.log.
 */
export async function unwireDeleted(invocation: Invocation): Promise<number> {
  try {
    const problem = optionsProblem(invocation);
    if (problem !== undefined) throw problem;
    await wiring(invocation.options).wirer.unwire(invocation.containerId, { ifGone: true });
    timing(invocation, 'del');
    return 0;
  } catch (error) {
    // runc's log goes with the container: this runs in the background, after runc's delete.
    logLine(resolvePaths(invocation.options, {}).stateDir, { level: 'error', containerId: invocation.containerId, msg: `could not DEL the networks: ${describeError(error)}`, fix: fixOf(error) });
    return 1;
  }
}
