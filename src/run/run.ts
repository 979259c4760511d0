import type { DockerClient } from '../docker/docker-client.js';
import { describeError, DockcniError, InvalidInputError } from '../errors.js';
import { NETWORKS_LABEL, ROLE_LABEL, SANDBOX_LABEL } from '../wiring/label-keys.js';
import { parseLabels, type LabelOptions } from '../wiring/labels.js';
import type { Sandboxes } from '../wiring/sandboxes.js';
import type { Wirer } from '../wiring/wirer.js';
import type { AppRunner } from './app-runner.js';
import type { RunArgs } from './run-args.js';

/** The pause image kubelet uses; any image whose entrypoint waits for a signal will do. */
export const DEFAULT_SANDBOX_IMAGE = 'registry.k8s.io/pause:3.9';

/** What `run` needs beyond the docker CLI; built while the sandbox starts. */
export interface RunContext {
  readonly docker: Pick<DockerClient, 'inspect'>;
  readonly wirer: Pick<Wirer, 'wire' | 'unwire'>;
  readonly sandboxes: Pick<Sandboxes, 'recordApp'>;
}

export interface RunDeps {
  readonly app: AppRunner;
  /** Called once the sandbox is starting: loading the engine and Docker client overlaps Docker's work. */
  readonly context: () => Promise<RunContext>;
  /** Called with each app process, so the CLI can forward signals to it. */
  readonly onApp?: (app: ReturnType<AppRunner['start']>) => void;
  readonly warn: (line: string) => void;
}

export interface RunOptions {
  readonly sandboxImage: string;
  readonly labels?: LabelOptions;
}

/**
 * `run`'s networking flags as the same labels the daemon reads, so both parse them one way. They are
 * parsed here, not put on the sandbox: `run` wires its sandbox itself, and the daemon leaves it alone.
 */
export function sandboxLabels(args: RunArgs): Record<string, string> {
  const networks = args.networks.length > 0 ? args.networks : ['dockcni'];
  const labels: Record<string, string> = { [NETWORKS_LABEL]: networks.join(',') };
  if (args.ips.length > 0) labels['dockcni.ip'] = args.ips.join(',');
  if (args.mac) labels['dockcni.mac'] = args.mac;
  if (args.publish.length > 0) labels['dockcni.ports'] = args.publish.join(',');
  if (args.networkAliases.length > 0) for (const n of networks) labels[`dockcni.aliases.${n}`] = args.networkAliases.join(',');
  return labels;
}

/**
 * `docker run` flags of the sandbox: what Docker refuses in container network mode (hostname, DNS, extra
 * hosts) is set here. Every value goes in `--flag=value` form, so none can be read as another flag.
 */
export function sandboxRunArgs(args: RunArgs, image: string): string[] {
  if (image.startsWith('-')) throw new InvalidInputError('--sandbox-image', image, 'an image name cannot start with "-"', 'name an image, e.g. registry.k8s.io/pause:3.9');
  const out = ['--network=none', `--label=${ROLE_LABEL}=sandbox`];
  if (args.name) out.push(`--name=${args.name}.sandbox`);
  const hostname = args.hostname ?? args.name;
  if (hostname) out.push(`--hostname=${hostname}`);
  out.push(...args.dns.map((v) => `--dns=${v}`), ...args.dnsSearch.map((v) => `--dns-search=${v}`), ...args.dnsOptions.map((v) => `--dns-option=${v}`));
  out.push(...args.addHosts.map((v) => `--add-host=${v}`), image);
  return out;
}

/** The flag a user typed for each label `run` turns its flags into: errors name what was typed. */
const FLAG_OF_LABEL: Readonly<Record<string, string>> = {
  [`label ${NETWORKS_LABEL}`]: '--network', 'label dockcni.ip': '--ip/--ip6', 'label dockcni.mac': '--mac-address', 'label dockcni.ports': '-p/--publish',
};

function requestOf(args: RunArgs, options: Pick<RunOptions, 'labels'>) {
  try {
    return parseLabels(sandboxLabels(args), options.labels);
  } catch (error) {
    const flag = error instanceof InvalidInputError ? FLAG_OF_LABEL[error.field] ?? (error.field.startsWith('label dockcni.aliases.') ? '--network-alias' : undefined) : undefined;
    if (flag === undefined || !(error instanceof InvalidInputError)) throw error;
    throw new InvalidInputError(flag, error.value, error.reason, error.fix);
  }
}

/**
 * The runtime path: one container, started by `docker run --runtime` with the labels the runtime reads,
 * wired by the runtime between its create and its first instruction. Every flag goes to Docker as the
 * user gave it (hostname, DNS, --restart); output and exit status are `docker run`'s.
 */
export async function runWithRuntime(args: RunArgs, deps: Pick<RunDeps, 'app' | 'onApp'>, runtime: string, options: Pick<RunOptions, 'labels'>): Promise<number> {
  const labels = sandboxLabels(args);
  requestOf(args, options);
  const app = deps.app.start([
    `--runtime=${runtime}`, '--network=none', ...Object.entries(labels).map(([k, v]) => `--label=${k}=${v}`),
    ...(args.hostname === undefined ? [] : [`--hostname=${args.hostname}`]),
    ...args.dns.map((v) => `--dns=${v}`), ...args.dnsSearch.map((v) => `--dns-search=${v}`), ...args.dnsOptions.map((v) => `--dns-option=${v}`),
    ...args.addHosts.map((v) => `--add-host=${v}`),
    ...args.passthrough, args.image, ...args.command,
  ], args.cidfile);
  deps.onApp?.(app);
  return app.exited;
}

/**
 * kubelet's sandbox pattern: a `--network none` sandbox is started and wired first, then the app joins
 * its netns, so the app's first instruction already sees its interfaces. Returns the exit status.
 */
export async function runWithCni(args: RunArgs, deps: RunDeps, options: RunOptions): Promise<number> {
  if (args.restart !== undefined) {
    throw new InvalidInputError('--restart', args.restart, 'the sandbox path cannot restart an app (it would find its sandbox removed)', 'install the runtime (`dockcni runtime install`): then dockcni run wires each restart, or run the service under `dockcni daemon`');
  }
  const request = requestOf(args, options);
  if (!request) throw new Error('unreachable: sandbox labels always name networks');
  const [started, built] = await Promise.allSettled([deps.app.runDetached(sandboxRunArgs(args, options.sandboxImage)), deps.context()]);
  if (started.status === 'rejected') throw started.reason;
  const sandboxId = started.value;
  // The pin keeps the netns alive, so the container can go while its DEL runs. It goes even when the
  // DEL fails: the record and pin stay for `dockcni gc` to retry.
  const teardown = async (ctx: RunContext | undefined) => {
    const [unwired, removed] = await Promise.allSettled([ctx?.wirer.unwire(sandboxId), deps.app.remove(sandboxId)]);
    if (unwired.status === 'rejected') throw unwired.reason;
    if (removed.status === 'rejected') throw removed.reason;
  };
  const undo = async (error: unknown, ctx: RunContext | undefined): Promise<never> => {
    await teardown(ctx).catch((cleanup: unknown) => deps.warn(`cleanup of sandbox ${sandboxId.slice(0, 12)} failed too: ${describeError(cleanup)}; run \`dockcni gc\``));
    throw error;
  };
  if (built.status === 'rejected') return undo(built.reason, undefined);
  const ctx = built.value;
  try {
    const sandbox = await ctx.docker.inspect(sandboxId);
    if (!sandbox?.running) {
      throw new DockcniError('sandbox-exited', `sandbox container ${sandboxId.slice(0, 12)} from ${options.sandboxImage} exited at once`, { fix: '--sandbox-image must name an image that keeps running (registry.k8s.io/pause:3.9)' });
    }
    // K8S_POD_NAME: the sandbox stands for its app, so it carries the app's name.
    await ctx.wirer.wire({ ...sandbox, name: args.name ?? sandbox.name, containerId: sandboxId, origin: 'run' }, request);
  } catch (error) {
    return undo(error, ctx);
  }
  const app = deps.app.start([
    '--network', `container:${sandboxId}`, '--label', `${ROLE_LABEL}=app`, '--label', `${SANDBOX_LABEL}=${sandboxId}`,
    ...args.passthrough, args.image, ...args.command,
  ], args.cidfile);
  deps.onApp?.(app);
  // Recorded as soon as Docker names the app: if dockcni dies now, the daemon or gc still knows that
  // this sandbox goes with this app, and no label can say otherwise.
  const recorded = app.containerId.then((id) => (id === undefined ? undefined : ctx.sandboxes.recordApp(sandboxId, id).then(() => id)));
  const status = await app.exited;
  const appId = await recorded;
  // Detached: the sandbox stays for its app; the daemon or `dockcni gc` removes it once the app is gone
  // (at once here if the app is gone already, since its die event may have come before the record).
  const appGone = args.detach && status === 0 && appId !== undefined && !(await ctx.docker.inspect(appId))?.running;
  if (!args.detach || status !== 0 || appGone) await teardown(ctx);
  return status;
}
