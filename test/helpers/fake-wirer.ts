import { Daemon } from '../../src/daemon/daemon.js';
import { ContainerHandlers } from '../../src/daemon/handlers.js';
import type { Logger, LogFields, LogLevel } from '../../src/daemon/logger.js';
import { Metrics } from '../../src/daemon/metrics.js';
import { CniPluginError } from '../../src/cni/plugin-error.js';
import type { DockerClient } from '../../src/docker/docker-client.js';
import type { Collector } from '../../src/gc/collector.js';
import type { AttachmentRecord } from '../../src/state/attachment.js';
import type { WireTarget } from '../../src/wiring/intent.js';
import type { WireRequest } from '../../src/wiring/labels.js';
import type { WireOutcome } from '../../src/wiring/wirer.js';

/** The daemon's log lines, kept. */
export class MemoryLog implements Logger {
  readonly lines: { level: LogLevel; message: string; fields: LogFields }[] = [];
  log(level: LogLevel, message: string, fields: LogFields = {}) { this.lines.push({ level, message, fields }); }
  text() { return this.lines.map((l) => `${l.level} ${l.message} ${JSON.stringify(l.fields)}`).join('\n'); }
}

/** A wirer that fails the first `failures` wirings with the given error, and records what it was asked. */
export class FakeWirer {
  readonly wired: { target: WireTarget; request: WireRequest }[] = [];
  readonly unwired: string[] = [];
  constructor(private failures = 0, private readonly error: Error = new CniPluginError({ plugin: 'bridge', command: 'ADD', kind: 'error-result', cniCode: 11, msg: 'busy' }), private readonly onWire?: () => void) {}
  async wire(target: WireTarget, request: WireRequest): Promise<WireOutcome> {
    this.onWire?.();
    this.wired.push({ target, request });
    if (this.failures-- > 0) throw this.error;
    const record: AttachmentRecord = { containerId: target.containerId, name: target.name, pid: target.pid, startedAt: target.startedAt, netns: '/x', origin: 'daemon', networks: [], updatedAt: '' };
    return { record, namesMs: 0 };
  }
  async unwire(id: string) { this.unwired.push(id); return 'unwired' as const; }
  /** Sandboxes `run` recorded, as sandbox id → app id. */
  readonly sandboxes = new Map<string, string>();
  async isSandboxOf(sandbox: string, app: string) { return this.sandboxes.get(sandbox) === app; }
}

/** A daemon on a fake Docker whose collector finds nothing; `onScan` runs (and may throw) on each scan. */
export function daemonOn(docker: DockerClient, wirer: FakeWirer, onScan: () => Promise<void>) {
  const log = new MemoryLog();
  const metrics = new Metrics();
  const collector = {
    scan: async () => { await onScan(); return { leftovers: [], labelled: [], records: [], skippedCache: [], foreignCache: [] }; },
    remove: async () => [],
    cniGc: async () => ({ deleted: [], errors: [] }),
  } as unknown as Collector;
  const handlers = new ContainerHandlers({ docker, wirer, sandboxes: wirer, log, metrics, labels: {}, onFailure: 'stop', retries: 0, retryDelayMs: 1 });
  const daemon = new Daemon({ docker, handlers, collector, log, metrics, concurrency: 2 });
  const until = async (what: () => boolean) => { for (let i = 0; i < 400 && !what(); i++) await new Promise((r) => setTimeout(r, 25)); };
  return { daemon, running: daemon.run(), log, metrics, until };
}

