/** The Docker calls dockcni makes, behind one interface (implementation: DockerodeClient). */

/** dockerd's data root when it names none (containers' config, hosts and resolv.conf are under it). */
export const DEFAULT_DOCKER_ROOT = '/var/lib/docker';

export interface ContainerInfo {
  readonly id: string;
  /** Without Docker's leading "/". */
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly running: boolean;
  /** 0 when not running. */
  readonly pid: number;
  readonly startedAt: string;
  readonly createdAt: string;
  readonly networkMode: string;
  readonly hostsPath: string;
  readonly resolvConfPath: string;
  readonly hostname: string;
}

export interface DockerEvent {
  readonly id: string;
  readonly action: string;
  /** Unix nanoseconds, for resuming with `since`. */
  readonly timeNano: bigint;
  readonly labels: Readonly<Record<string, string>>;
}

export interface EventSubscription {
  /** Resolves when the stream ends (Docker went away) and rejects on a stream error. */
  readonly ended: Promise<void>;
  close(): void;
}

/** What dockcni must know of the engine it works beside (`/version` and `/info`). */
export interface EngineFacts {
  readonly version: string;
  readonly apiVersion: string;
  /** `/info` OperatingSystem: "Docker Desktop" on Desktop. */
  readonly operatingSystem: string;
  /** `/info` SecurityOptions names rootless: RootlessKit's namespaces, not the host's. */
  readonly rootless: boolean;
  /** `/info` FirewallBackend.Driver (API 1.49+): iptables, iptables+firewalld or nftables; undefined before. */
  readonly firewallBackend?: string | undefined;
}

export interface DockerClient {
  ping(): Promise<{ readonly apiVersion: string; readonly version: string }>;
  engine(): Promise<EngineFacts>;
  /** undefined when there is no such container. */
  inspect(id: string): Promise<ContainerInfo | undefined>;
  /** Containers (running or not) carrying the label key. */
  listByLabel(label: string): Promise<ContainerInfo[]>;
  /** Container start/die/destroy events since a time (unix ns), until closed; a line that is not an event goes to onMalformed. */
  events(since: bigint | undefined, onEvent: (event: DockerEvent) => void, onMalformed?: (line: string, error: unknown) => void): Promise<EventSubscription>;
  stop(id: string, timeoutSeconds: number): Promise<void>;
  kill(id: string): Promise<void>;
  /** Force-removes; a container already gone is not an error. */
  remove(id: string): Promise<void>;
  /** The OCI runtimes dockerd knows (daemon.json's and its own), its default one, and its data root. */
  runtimes(): Promise<{ readonly names: readonly string[]; readonly defaultRuntime: string; readonly rootDir: string }>;
  /** The subnets of Docker's own networks, so that a CNI network is not made to overlap one. */
  networkSubnets(): Promise<{ readonly network: string; readonly subnet: string }[]>;
}
