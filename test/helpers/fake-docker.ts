import type { ContainerInfo, DockerClient, DockerEvent, EventSubscription } from '../../src/docker/docker-client.js';

/** An in-memory Docker for handler and daemon unit tests; records the calls that change containers. */
export class FakeDocker implements DockerClient {
  readonly containers = new Map<string, ContainerInfo>();
  readonly calls: string[] = [];
  /** Rejections left for ping(): Docker "unreachable" that many times. */
  pingFailures = 0;
  /** Every subscription not closed yet: a leaked one would see each event again. */
  private readonly live = new Set<{ emit: (event: DockerEvent) => void; end: () => void }>();
  subscriptions = 0;
  /** The `since` each subscription asked for, in order. */
  readonly sinces: (bigint | undefined)[] = [];
  /** Lines the next subscription receives before its events, as Docker's stream would carry them. */
  malformedLines: string[] = [];

  add(id: string, labels: Record<string, string>, overrides: Partial<ContainerInfo> = {}): ContainerInfo {
    const info: ContainerInfo = {
      id, name: `c-${id.slice(0, 4)}`, labels, running: true, pid: 100, startedAt: '2026-01-01T00:00:00Z', createdAt: '2026-01-01T00:00:00Z',
      networkMode: 'none', hostsPath: '', resolvConfPath: '', hostname: id.slice(0, 12), ...overrides,
    };
    this.containers.set(id, info);
    return info;
  }

  async ping() {
    if (this.pingFailures > 0) {
      this.pingFailures--;
      throw new Error('connect ENOENT /var/run/docker.sock');
    }
    return { apiVersion: '1.41', version: 'fake' };
  }

  /** What engine() reports beyond ping()'s answer. */
  facts: { operatingSystem: string; rootless: boolean; firewallBackend?: string } = { operatingSystem: 'Debian GNU/Linux 12 (bookworm)', rootless: false };

  async engine() { return { ...await this.ping(), ...this.facts }; }

  async inspect(id: string) { return this.containers.get(id); }
  async listByLabel(label: string) { return [...this.containers.values()].filter((c) => c.labels[label] !== undefined); }

  async events(since: bigint | undefined, onEvent: (event: DockerEvent) => void, onMalformed?: (line: string, error: unknown) => void): Promise<EventSubscription> {
    this.subscriptions++;
    this.sinces.push(since);
    let end!: () => void;
    const ended = new Promise<void>((resolve) => { end = resolve; });
    const sub = { emit: onEvent, end };
    this.live.add(sub);
    for (const line of this.malformedLines.splice(0)) onMalformed?.(line, new SyntaxError('Unexpected token'));
    return { ended, close: () => { this.live.delete(sub); end(); } };
  }

  get liveSubscriptions(): number { return this.live.size; }

  send(event: Omit<DockerEvent, 'timeNano'>, timeNano = BigInt(Date.now()) * 1_000_000n): void {
    for (const sub of this.live) sub.emit({ ...event, timeNano });
  }

  /** Docker goes away: the event stream ends. */
  drop(): void {
    for (const sub of this.live) sub.end();
    this.live.clear();
  }

  async stop(id: string) { this.calls.push(`stop ${id}`); }
  async kill(id: string) { this.calls.push(`kill ${id}`); }
  async remove(id: string) { this.calls.push(`remove ${id}`); this.containers.delete(id); }
  async runtimes() { return { names: ['runc'], defaultRuntime: 'runc', rootDir: '/var/lib/docker' }; }
  async networkSubnets() { return [{ network: 'bridge', subnet: '172.17.0.0/16' }]; }
}
