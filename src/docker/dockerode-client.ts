import type Docker from 'dockerode';
import { DockerApiError } from '../errors.js';
import { DEFAULT_DOCKER_ROOT, type ContainerInfo, type DockerClient, type DockerEvent, type EngineFacts, type EventSubscription } from './docker-client.js';
import { tlsFiles, type DockerEndpoint } from './endpoint.js';
import { loadDockerode } from './load-dockerode.js';

const statusOf = (error: unknown): number | undefined => (error as { statusCode?: number }).statusCode;

function wrap(what: string, error: unknown): DockerApiError {
  const status = statusOf(error);
  const reason = (error as { json?: { message?: string } }).json?.message ?? (error as Error).message;
  return new DockerApiError(`docker: ${what}: ${reason}`, status, { cause: error });
}

type Inspect = Docker.ContainerInspectInfo;

function toInfo(c: Inspect): ContainerInfo {
  return {
    id: c.Id,
    name: c.Name.replace(/^\//, ''),
    labels: c.Config.Labels ?? {},
    running: c.State.Running,
    pid: c.State.Pid,
    startedAt: c.State.StartedAt,
    createdAt: c.Created,
    networkMode: c.HostConfig.NetworkMode ?? '',
    hostsPath: c.HostsPath,
    resolvConfPath: c.ResolvConfPath,
    hostname: c.Config.Hostname,
  };
}

/** dockerode's options for an endpoint: a unix socket (`unix://…` or a path) or `tcp://host:port`, with TLS when it has certificates. */
function dockerOptions(endpoint: DockerEndpoint): Docker.DockerOptions {
  const target = endpoint.host;
  if (target.startsWith('unix://')) return { socketPath: target.slice('unix://'.length) };
  if (target.startsWith('/')) return { socketPath: target };
  const url = new URL(target.replace(/^tcp:/, 'http:'));
  const tls = tlsFiles(endpoint);
  if (tls === undefined) return { host: url.hostname, port: Number(url.port || 2375), protocol: 'http' };
  return { host: url.hostname, port: Number(url.port || 2376), protocol: 'https', ...tls };
}

export class DockerodeClient implements DockerClient {
  private readonly docker: Docker;
  /** Where Docker is, found as the docker CLI finds it (`resolveDockerEndpoint`); named in errors. */
  private readonly target: string;

  constructor(endpoint: DockerEndpoint) {
    this.target = `${endpoint.host} (from ${endpoint.from})`;
    this.docker = new (loadDockerode())(dockerOptions(endpoint));
  }

  async ping() {
    try {
      const v = await this.docker.version();
      return { apiVersion: v.ApiVersion, version: v.Version };
    } catch (error) {
      throw new DockerApiError(`cannot reach the Docker daemon at ${this.target}: ${(error as Error).message}`, statusOf(error), {
        cause: error, fix: 'start dockerd, or point --docker-host (or DOCKER_HOST, or `docker context use`) at it',
      });
    }
  }

  async engine(): Promise<EngineFacts> {
    const version = await this.ping();
    let info: { OperatingSystem?: string; SecurityOptions?: string[] | null; FirewallBackend?: { Driver?: string } | null };
    try {
      info = await this.docker.info() as typeof info;
    } catch (error) {
      throw wrap('info', error);
    }
    return {
      ...version,
      operatingSystem: info.OperatingSystem ?? '',
      rootless: (info.SecurityOptions ?? []).some((o) => o.split(',').includes('name=rootless')),
      firewallBackend: info.FirewallBackend?.Driver,
    };
  }

  async inspect(id: string): Promise<ContainerInfo | undefined> {
    try {
      return toInfo(await this.docker.getContainer(id).inspect());
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      throw wrap(`inspect ${id}`, error);
    }
  }

  async listByLabel(label: string): Promise<ContainerInfo[]> {
    let summaries: Docker.ContainerInfo[];
    try {
      summaries = await this.docker.listContainers({ all: true, filters: { label: [label] } });
    } catch (error) {
      throw wrap('list containers', error);
    }
    const infos = await Promise.all(summaries.map((s) => this.inspect(s.Id)));
    return infos.filter((i): i is ContainerInfo => i !== undefined);
  }

  async events(since: bigint | undefined, onEvent: (event: DockerEvent) => void, onMalformed?: (line: string, error: unknown) => void): Promise<EventSubscription> {
    const options: Docker.GetEventsOptions = { filters: { type: ['container'], event: ['start', 'die', 'destroy'] } };
    // Docker takes "seconds.nanoseconds"; the typings only know whole seconds.
    if (since !== undefined) Object.assign(options, { since: `${since / 1_000_000_000n}.${(since % 1_000_000_000n).toString().padStart(9, '0')}` });
    let stream: NodeJS.ReadableStream;
    try {
      stream = await this.docker.getEvents(options);
    } catch (error) {
      throw wrap('subscribe to events', error);
    }
    let buffered = '';
    stream.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      let newline: number;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, newline).trim();
        buffered = buffered.slice(newline + 1);
        if (line === '') continue;
        let raw: { Action?: string; id?: string; timeNano?: number; Actor?: { ID?: string; Attributes?: Record<string, string> } };
        try {
          raw = JSON.parse(line) as typeof raw;
        } catch (error) {
          // Thrown inside a 'data' handler it would end the process; one bad line must not.
          onMalformed?.(line, error);
          continue;
        }
        onEvent({
          id: raw.Actor?.ID ?? raw.id ?? '',
          action: raw.Action ?? '',
          timeNano: BigInt(raw.timeNano ?? 0),
          labels: raw.Actor?.Attributes ?? {},
        });
      }
    });
    const ended = new Promise<void>((resolve, reject) => {
      stream.on('end', resolve);
      stream.on('close', resolve);
      stream.on('error', reject);
    });
    return { ended, close: () => (stream as unknown as { destroy(): void }).destroy() };
  }

  async stop(id: string, timeoutSeconds: number): Promise<void> {
    try {
      await this.docker.getContainer(id).stop({ t: timeoutSeconds });
    } catch (error) {
      if (statusOf(error) !== 304 && statusOf(error) !== 404) throw wrap(`stop ${id}`, error);
    }
  }

  async kill(id: string): Promise<void> {
    try {
      await this.docker.getContainer(id).kill();
    } catch (error) {
      if (statusOf(error) !== 409 && statusOf(error) !== 404) throw wrap(`kill ${id}`, error);
    }
  }

  async runtimes() {
    try {
      const info = await this.docker.info() as { Runtimes?: Record<string, unknown>; DefaultRuntime?: string; DockerRootDir?: string };
      return { names: Object.keys(info.Runtimes ?? {}), defaultRuntime: info.DefaultRuntime ?? 'runc', rootDir: info.DockerRootDir ?? DEFAULT_DOCKER_ROOT };
    } catch (error) {
      throw wrap('info', error);
    }
  }

  async networkSubnets(): Promise<{ network: string; subnet: string }[]> {
    try {
      const networks = await this.docker.listNetworks();
      return networks.flatMap((n) => (n.IPAM?.Config ?? []).filter((c) => typeof c.Subnet === 'string').map((c) => ({ network: n.Name, subnet: c.Subnet as string })));
    } catch (error) {
      throw wrap('list networks', error);
    }
  }

  async remove(id: string): Promise<void> {
    try {
      await this.docker.getContainer(id).remove({ force: true, v: true });
    } catch (error) {
      // 404: gone already; 409: removal already in progress (e.g. --rm).
      if (statusOf(error) !== 404 && statusOf(error) !== 409) throw wrap(`remove ${id}`, error);
    }
  }
}
