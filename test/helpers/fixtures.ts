import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ExecutionContext } from 'ava';
import { CniEngine } from '../../src/cni/engine.js';
import { SpawnPluginExec } from '../../src/cni/spawn-plugin-exec.js';
import type { TraceRecord } from '../../src/cni/invoke.js';
import { FileLocks } from '../../src/cni/lock.js';
import { parseConfList } from '../../src/cni/conf.js';
import type { NetworkConfigList, RuntimeConf } from '../../src/cni/types.js';

/** The repository root, from dist/test/helpers. */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const FIXTURE_PLUGINS = path.join(ROOT, 'test/fixtures/plugins');
export const BIN = path.join(ROOT, 'bin/dockcni.js');

export interface Recorded {
  readonly phase: 'start' | 'end';
  readonly type: string;
  readonly command: string;
  readonly env: Record<string, string>;
  readonly stdin: Record<string, unknown>;
  readonly at: number;
}

/** A scratch dir removed when the test ends. */
export async function tempDir(t: ExecutionContext, prefix = 'dockcni-test-'): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

export interface Sandbox {
  readonly dir: string;
  readonly record: string;
  readonly cacheDir: string;
  readonly confDir: string;
  readonly traces: TraceRecord[];
  engine(timeoutMs?: number): CniEngine;
  /** A list of fixture plugins; each entry is merged into `{type:"fixture", record}`. */
  list(plugins: Record<string, unknown>[], extra?: Record<string, unknown>): NetworkConfigList;
  calls(): Promise<Recorded[]>;
  rt(overrides?: Partial<RuntimeConf>): RuntimeConf;
}

export async function sandbox(t: ExecutionContext): Promise<Sandbox> {
  const dir = await tempDir(t);
  const record = path.join(dir, 'calls.jsonl');
  await writeFile(record, '');
  const traces: TraceRecord[] = [];
  return {
    dir,
    record,
    cacheDir: path.join(dir, 'cache'),
    confDir: path.join(dir, 'net.d'),
    traces,
    engine: (timeoutMs = 10_000) => new CniEngine({
      exec: new SpawnPluginExec(),
      locks: new FileLocks(path.join(dir, 'locks')),
      pluginPath: [path.join(dir, 'no-such-dir'), FIXTURE_PLUGINS],
      cacheDir: path.join(dir, 'cache'),
      timeoutMs,
      trace: (r) => traces.push(r),
      netns: { check: async () => undefined },
    }),
    list: (plugins, extra = {}) => parseConfList(Buffer.from(JSON.stringify({
      cniVersion: '1.0.0', name: 'testnet', ...extra, plugins: plugins.map((p) => ({ type: 'fixture', record, ...p })),
    })), path.join(dir, 'testnet.conflist')),
    calls: async () => (await readFile(record, 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as Recorded).filter((r) => r.phase === 'start'),
    rt: (overrides = {}) => ({ containerId: 'c0ffee', netns: '/var/run/netns/none', ifName: 'eth0', args: [], capabilityArgs: {}, ...overrides }),
  };
}
