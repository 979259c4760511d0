import type { DockerClient } from '../docker/docker-client.js';
import { describeError } from '../errors.js';
import { NETWORKS_LABEL, parseLabels, podName, ROLE_LABEL, SANDBOX_LABEL, type LabelOptions } from '../wiring/labels.js';
import type { Wirer } from '../wiring/wirer.js';
import type { AppRunner } from './app-runner.js';
import type { RunArgs } from './run-args.js';

/** The pause image kubelet uses; any image whose entrypoint waits for a signal will do. */
export const DEFAULT_SANDBOX_IMAGE = 'registry.k8s.io/pause:3.9';

export interface RunDeps {
  readonly docker: DockerClient;
  readonly wirer: Wirer;
  readonly app: AppRunner;
  /** Called with each app process, so the CLI can forward signals to it. */
  readonly onApp?: (app: ReturnType<AppRunner['start']>) => void;
  readonly warn: (line: string) => void;
}

export interface RunOptions {
  readonly sandboxImage: string;
  readonly labels?: LabelOptions;
}

/** `run`'s networking flags as the same labels the daemon reads, so both parse them one way. */
export function sandboxLabels(args: RunArgs): Record<string, string> {
  const networks = args.networks.length > 0 ? args.networks : ['dockcni'];
  const labels: Record<string, string> = { [NETWORKS_LABEL]: networks.join(','), [ROLE_LABEL]: 'sandbox' };
  if (args.ips.length > 0) labels['dockcni.ip'] = args.ips.join(',');
  if (args.mac) labels['dockcni.mac'] = args.mac;
  if (args.publish.length > 0) labels['dockcni.ports'] = args.publish.join(',');
  return labels;
}

/**
 * kubelet's sandbox pattern: a `--network none` sandbox is created and wired first, then the app joins
 * its netns, so the app's first instruction already sees its interfaces. Returns the exit status.
 */
export async function runWithCni(args: RunArgs, deps: RunDeps, options: RunOptions): Promise<number> {
  const labels = sandboxLabels(args);
  const request = parseLabels(labels, options.labels);
  if (!request) throw new Error('unreachable: sandbox labels always name networks');
  const sandboxId = await deps.docker.create({
    name: args.name ? `${args.name}.sandbox` : undefined,
    image: options.sandboxImage,
    labels,
    hostname: args.hostname ?? args.name,
    dns: args.dns,
    dnsSearch: args.dnsSearch,
    dnsOptions: args.dnsOptions,
    extraHosts: args.addHosts,
    networkMode: 'none',
  });
  // The pin keeps the netns alive, so the container can go while its DEL runs. It goes even when the
  // DEL fails: the record and pin stay for `dockcni gc` to retry.
  const teardown = async () => {
    const [unwired, removed] = await Promise.allSettled([deps.wirer.unwire(sandboxId), deps.docker.remove(sandboxId)]);
    if (unwired.status === 'rejected') throw unwired.reason;
    if (removed.status === 'rejected') throw removed.reason;
  };
  try {
    await deps.docker.start(sandboxId);
    const sandbox = await deps.docker.inspect(sandboxId);
    if (!sandbox?.running) throw new Error(`sandbox container ${sandboxId.slice(0, 12)} from ${options.sandboxImage} exited at once; --sandbox-image must name an image that keeps running`);
    await deps.wirer.wire({ ...sandbox, name: podName(sandbox.name, labels), containerId: sandboxId, origin: 'run' }, request);
  } catch (error) {
    await teardown().catch((cleanup: unknown) => deps.warn(`cleanup of sandbox ${sandboxId.slice(0, 12)} failed too: ${describeError(cleanup)}; run \`dockcni gc\``));
    throw error;
  }
  const app = deps.app.start([
    '--network', `container:${sandboxId}`, '--label', `${ROLE_LABEL}=app`, '--label', `${SANDBOX_LABEL}=${sandboxId}`,
    ...args.passthrough, args.image, ...args.command,
  ]);
  deps.onApp?.(app);
  const status = await app.exited;
  // Detached: the sandbox stays for the app; the daemon or `dockcni gc` removes it once the app is gone.
  if (!args.detach || status !== 0) await teardown();
  return status;
}
