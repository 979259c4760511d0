import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

/**
 * A Docker Engine API double on a unix socket, speaking as one engine version: its /version and /info,
 * its minimum API version (a request pinned below it is refused as dockerd refuses it), and the shape
 * of its events. The machines here run Docker 20.10 only; the daemon's and the runtime's Docker calls
 * are tested against 20.10, 25, 28 and 29 through this. Sources: moby's api/docs/CHANGELOG.md and
 * daemon/config at each release tag.
 */
export interface EngineProfile {
  readonly name: string;
  readonly version: string;
  readonly apiVersion: string;
  readonly minApiVersion: string;
  /** Events carry the pre-1.22 `status`, `id` and `from` beside Type/Action/Actor (gone in API 1.52). */
  readonly legacyEventFields: boolean;
  /** `/info` FirewallBackend (API 1.49+). */
  readonly firewallBackend?: string | undefined;
  /** Docker 26+ rewrites /etc/hosts between the runtime's create and start. */
  readonly rewritesHostsAfterCreate: boolean;
  readonly operatingSystem: string;
  readonly securityOptions: readonly string[];
}

const base = { operatingSystem: 'Debian GNU/Linux 12 (bookworm)', securityOptions: ['name=apparmor', 'name=seccomp,profile=default', 'name=cgroupns'] };

export const ENGINES: readonly EngineProfile[] = [
  { ...base, name: '20.10', version: '20.10.24', apiVersion: '1.41', minApiVersion: '1.12', legacyEventFields: true, rewritesHostsAfterCreate: false },
  { ...base, name: '25', version: '25.0.5', apiVersion: '1.44', minApiVersion: '1.24', legacyEventFields: true, rewritesHostsAfterCreate: false },
  { ...base, name: '28', version: '28.2.2', apiVersion: '1.50', minApiVersion: '1.24', legacyEventFields: true, firewallBackend: 'iptables', rewritesHostsAfterCreate: true },
  // 29.0–29.2 refuse clients below API 1.44.
  { ...base, name: '29', version: '29.1.0', apiVersion: '1.52', minApiVersion: '1.44', legacyEventFields: false, firewallBackend: 'nftables', rewritesHostsAfterCreate: true },
];

export const ROOTLESS: EngineProfile = { ...ENGINES[2]!, name: '28 rootless', securityOptions: ['name=seccomp,profile=default', 'name=rootless', 'name=cgroupns'] };
export const DESKTOP: EngineProfile = { ...ENGINES[3]!, name: '29 Desktop', operatingSystem: 'Docker Desktop' };

/** A container as the double keeps it. */
export interface DoubleContainer {
  readonly id: string;
  readonly name: string;
  readonly labels: Record<string, string>;
  running: boolean;
  pid: number;
  startedAt: string;
  readonly networkMode: string;
  readonly hostsPath: string;
  readonly resolvConfPath: string;
}

const older = (a: string, b: string) => {
  const [x, y] = [a.split('.').map(Number), b.split('.').map(Number)];
  return (x[0]! - y[0]!) * 1000 + (x[1]! - y[1]!) < 0;
};

export class DockerDouble {
  /** Every request path, as the client sent it (a version prefix included). */
  readonly paths: string[] = [];
  readonly containers = new Map<string, DoubleContainer>();
  private readonly streams = new Set<ServerResponse>();
  private server: Server | undefined;
  private dir = '';
  socket = '';

  constructor(readonly profile: EngineProfile) {}

  async start(): Promise<this> {
    this.dir = await mkdtemp(path.join(tmpdir(), 'dockcni-double-'));
    this.socket = path.join(this.dir, 'docker.sock');
    this.server = createServer((req, res) => this.answer(req, res));
    await new Promise<void>((resolve) => this.server!.listen(this.socket, resolve));
    return this;
  }

  async stop(): Promise<void> {
    for (const s of this.streams) s.end();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
    await rm(this.dir, { recursive: true, force: true });
  }

  add(c: Omit<DoubleContainer, 'hostsPath' | 'resolvConfPath'>): DoubleContainer {
    const container = { ...c, hostsPath: `/var/lib/docker/containers/${c.id}/hosts`, resolvConfPath: `/var/lib/docker/containers/${c.id}/resolv.conf` };
    this.containers.set(c.id, container);
    return container;
  }

  /** An event for a container, in this engine's shape. */
  emit(id: string, action: 'start' | 'die' | 'destroy'): void {
    const c = this.containers.get(id);
    const attributes = { ...c?.labels, name: c?.name ?? '', image: 'busybox' };
    const now = Date.now();
    const event = {
      ...(this.profile.legacyEventFields ? { status: action, id, from: 'busybox' } : {}),
      Type: 'container', Action: action, Actor: { ID: id, Attributes: attributes }, scope: 'local', time: Math.floor(now / 1000), timeNano: now * 1_000_000,
    };
    for (const s of this.streams) s.write(`${JSON.stringify(event)}\n`);
  }

  get subscribers(): number {
    return this.streams.size;
  }

  private json(res: ServerResponse, status: number, body: unknown): void {
    res.writeHead(status, { 'content-type': 'application/json', 'api-version': this.profile.apiVersion });
    res.end(JSON.stringify(body));
  }

  private answer(req: IncomingMessage, res: ServerResponse): void {
    this.paths.push(req.url ?? '');
    const url = new URL(req.url ?? '/', 'http://docker');
    const pinned = /^\/v(\d+\.\d+)(\/.*)$/.exec(url.pathname);
    if (pinned && older(pinned[1]!, this.profile.minApiVersion)) {
      this.json(res, 400, { message: `client version ${pinned[1]} is too old. Minimum supported API version is ${this.profile.minApiVersion}, please upgrade your client to a newer version` });
      return;
    }
    const route = pinned ? pinned[2]! : url.pathname;
    const p = this.profile;
    if (route === '/_ping') { res.writeHead(200, { 'api-version': p.apiVersion }); res.end('OK'); return; }
    if (route === '/version') { this.json(res, 200, { Version: p.version, ApiVersion: p.apiVersion, MinAPIVersion: p.minApiVersion, Os: 'linux' }); return; }
    if (route === '/info') {
      this.json(res, 200, {
        ServerVersion: p.version, OperatingSystem: p.operatingSystem, SecurityOptions: p.securityOptions, DockerRootDir: '/var/lib/docker',
        Runtimes: { runc: { path: 'runc' } }, DefaultRuntime: 'runc', ...(p.firewallBackend === undefined ? {} : { FirewallBackend: { Driver: p.firewallBackend } }),
      });
      return;
    }
    if (route === '/networks') { this.json(res, 200, [{ Name: 'bridge', IPAM: { Config: [{ Subnet: '172.17.0.0/16' }] } }]); return; }
    if (route === '/events') {
      // Headers at once, as dockerd sends them: the client's subscription is open before any event.
      res.writeHead(200, { 'content-type': 'application/json' });
      res.flushHeaders();
      this.streams.add(res);
      req.on('close', () => this.streams.delete(res));
      return;
    }
    if (route === '/containers/json') {
      const filters = JSON.parse(url.searchParams.get('filters') ?? '{}') as { id?: string[]; label?: string[] };
      const listed = [...this.containers.values()].filter((c) => (filters.id === undefined || filters.id.includes(c.id)) && (filters.label === undefined || filters.label.every((l) => c.labels[l] !== undefined)));
      this.json(res, 200, listed.map((c) => ({ Id: c.id, Names: [`/${c.name}`], Labels: c.labels, State: c.running ? 'running' : 'exited', HostConfig: { NetworkMode: c.networkMode } })));
      return;
    }
    const one = /^\/containers\/([^/]+)\/json$/.exec(route);
    if (one) {
      const c = this.containers.get(one[1]!);
      if (c === undefined) { this.json(res, 404, { message: `No such container: ${one[1]}` }); return; }
      this.json(res, 200, {
        Id: c.id, Name: `/${c.name}`, Created: '2026-12-01T00:00:00Z', State: { Running: c.running, Pid: c.pid, StartedAt: c.startedAt },
        Config: { Labels: c.labels, Hostname: c.id.slice(0, 12) }, HostConfig: { NetworkMode: c.networkMode }, HostsPath: c.hostsPath, ResolvConfPath: c.resolvConfPath,
      });
      return;
    }
    const action = /^\/containers\/([^/]+)\/(stop|kill)$/.exec(route);
    if (action && req.method === 'POST') { res.writeHead(204); res.end(); return; }
    this.json(res, 404, { message: `page not found: ${route}` });
  }
}
