/**
 * An attachment record: what dockcni did to one container, written before the first ADD and removed
 * after the last DEL. Its states, and what they mean, are decided here and nowhere else.
 */

/** A Docker container id (short or full): the only form that may become a file or pin name. */
export const CONTAINER_ID = /^[0-9a-f]{12,64}$/;

/**
 * One network of a container:
 * - `adding`: its ADD may have run (a crash leaves it here; teardown DELs it from the cache);
 * - `wired`: its ADD completed;
 * - `failed`: its ADD, DEL or repair failed, `failure` says which and why;
 * - `deleting`: its DEL is about to run or failed: the addresses it held are no longer claimed.
 */
export type NetworkState = 'adding' | 'wired' | 'failed' | 'deleting';
export type Origin = 'daemon' | 'run' | 'attach' | 'runtime';

/** Which operation failed: the health loop retries a failed repair, nothing retries a failed ADD or DEL but their owner. */
export type FailureKind = 'add' | 'del' | 'repair';

export interface AttachmentFailure {
  readonly kind: FailureKind;
  readonly message: string;
}

export interface NetworkAttachment {
  readonly network: string;
  readonly ifName: string;
  state: NetworkState;
  readonly args: readonly (readonly [string, string])[];
  readonly capabilityArgs: Readonly<Record<string, unknown>>;
  /** Addresses (CIDR) from the result, for `ls` and hosts files. */
  addresses: string[];
  mac?: string | undefined;
  failure?: AttachmentFailure | undefined;
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
  /** The pinned netns; '' once its networks are DELeted (a failed wiring kept so `ls` can say why). */
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

/** The record still holds a pinned netns: its networks are (or may be) wired, and it counts as live. */
export const holdsNetns = (record: AttachmentRecord): boolean => record.netns !== '';

/** Wired by the OCI runtime, before Docker knew the container's StartedAt. */
export const isRuntime = (record: AttachmentRecord): boolean => record.origin === 'runtime';

/** The record is of this incarnation of its container (a restart is another one). */
export const isCurrent = (record: AttachmentRecord, pid: number, startedAt: string): boolean =>
  record.pid === pid && (record.startedAt === startedAt || (isRuntime(record) && record.startedAt === ''));

/** Every network's ADD completed. */
export const fullyWired = (record: AttachmentRecord): boolean => record.networks.every((n) => n.state === 'wired');

/** The attachment holds what it claimed (addresses, MAC, names, ports): its ADD may have run and no DEL has. */
export const holdsClaims = (attachment: NetworkAttachment): boolean => attachment.state === 'wired' || attachment.state === 'adding';

/** A repair that failed: the health loop tries it again, with backoff. */
export const repairFailed = (attachment: NetworkAttachment): boolean => attachment.state === 'failed' && attachment.failure?.kind === 'repair';

/** Records the failure of one operation on the attachment. */
export function fail(attachment: NetworkAttachment, state: 'failed' | 'deleting', kind: FailureKind, message: string): void {
  attachment.state = state;
  attachment.failure = { kind, message };
}

const FAILURE_WORDS: Readonly<Record<FailureKind, string>> = { add: '', del: 'DEL failed: ', repair: 'repair failed: ' };

/** A failure as `ls` and logs word it. */
export const describeFailure = (failure: AttachmentFailure): string => `${FAILURE_WORDS[failure.kind]}${failure.message}`;

/**
 * A record as read from disk. Records of dockcni 0.1 carry the failure as a message with its kind as a
 * prefix (`error: "repair failed: …"`); they are read into the typed field.
 */
export function fromDisk(value: AttachmentRecord): AttachmentRecord {
  for (const n of value.networks) {
    const legacy = (n as { error?: unknown }).error;
    if (typeof legacy !== 'string' || n.failure !== undefined) continue;
    const kind = (Object.entries(FAILURE_WORDS) as [FailureKind, string][]).find(([k, prefix]) => k !== 'add' && legacy.startsWith(prefix))?.[0] ?? 'add';
    n.failure = { kind, message: legacy.slice(FAILURE_WORDS[kind].length) };
    delete (n as { error?: unknown }).error;
  }
  return value;
}
