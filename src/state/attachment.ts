/** An attachment record: what dockcni did to one container, written before the first ADD. */

/** A Docker container id (short or full): the only form that may become a file or pin name. */
export const CONTAINER_ID = /^[0-9a-f]{12,64}$/;

export type NetworkState = 'adding' | 'wired' | 'failed' | 'deleting';
export type Origin = 'daemon' | 'run' | 'attach' | 'runtime';

export interface NetworkAttachment {
  readonly network: string;
  readonly ifName: string;
  state: NetworkState;
  readonly args: readonly (readonly [string, string])[];
  readonly capabilityArgs: Readonly<Record<string, unknown>>;
  /** Addresses (CIDR) from the result, for `ls` and hosts files. */
  addresses: string[];
  mac?: string | undefined;
  error?: string | undefined;
  /** Names beyond the container's own that peers on this network resolve it by. */
  readonly aliases?: readonly string[] | undefined;
  /** compose project/service: the claim group whose replicas share the service name (see wiring/host-names.ts). */
  readonly group?: string | undefined;
  /** Times the daemon or `dockcni reload` rebuilt it after finding it broken, and when last. */
  repairs?: number | undefined;
  lastRepair?: string | undefined;
}

export interface AttachmentRecord {
  readonly containerId: string;
  readonly name: string;
  /**
   * Identity of the container's incarnation: a restart is a new attachment. The runtime wires before
   * Docker sets StartedAt, so its records have startedAt '' and are known by the pid alone (the runtime
   * DELs them when the process is gone, before a restart can reuse the container).
   */
  readonly pid: number;
  readonly startedAt: string;
  readonly netns: string;
  readonly origin: Origin;
  /**
   * For a `run` sandbox: the app container that joined its netns, written by `run` itself. The daemon
   * and gc remove a sandbox only through this, never because a label names it.
   */
  app?: string | undefined;
  readonly networks: NetworkAttachment[];
  /** Docker's hosts file of the container, which dockcni keeps listing its peers; its hostname, listed with its name. */
  readonly hostsPath?: string | undefined;
  readonly hostname?: string | undefined;
  updatedAt: string;
}

export const sameIncarnation = (record: AttachmentRecord, pid: number, startedAt: string): boolean =>
  record.pid === pid && (record.startedAt === startedAt || (record.origin === 'runtime' && record.startedAt === ''));

export const fullyWired = (record: AttachmentRecord): boolean => record.networks.every((n) => n.state === 'wired');
