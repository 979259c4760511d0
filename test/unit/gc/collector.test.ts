import path from 'node:path';
import test from 'ava';
import type { Cni, GcValid } from '../../../src/cni/cni.js';
import type { CacheEntry } from '../../../src/cni/result-cache.js';
import type { GcAttachment } from '../../../src/cni/types.js';
import { Collector } from '../../../src/gc/collector.js';
import { AttachmentStore } from '../../../src/state/attachment-store.js';
import type { AttachmentRecord } from '../../../src/state/attachment.js';
import type { NetnsPins } from '../../../src/wiring/netns-pins.js';
import type { Wirer } from '../../../src/wiring/wirer.js';
import { FakeDocker } from '../../helpers/fake-docker.js';
import { tempDir } from '../../helpers/fixtures.js';

const id = (c: string) => c.repeat(64);
const PINS = '/run/fake/netns';

const pins: NetnsPins = {
  dir: PINS, pathFor: (i) => path.join(PINS, i), pin: async () => '', unpin: async () => undefined, isPinned: () => true, isLive: () => false, list: async () => [],
};

const entry = (containerId: string, netns: string | undefined, network = 'n'): CacheEntry => ({
  kind: 'cniCacheV1', containerId, config: '', ifName: 'eth0', networkName: network, netns, cniArgs: [], capabilityArgs: {},
});

function fakeCni(entries: CacheEntry[], gcAsked: GcAttachment[][] = []): Cni {
  return {
    add: async () => ({ cniVersion: '1.0.0' }), check: async () => undefined, del: async () => undefined, status: async () => ({ supported: true }),
    gc: async (_list, valid: GcValid) => { gcAsked.push([...await valid(entries)]); return { deleted: [], errors: [] }; },
    cachedAttachment: async () => undefined,
    cachedAttachments: async () => ({ entries, skipped: [{ path: '/x/junk', reason: 'not JSON' }], orphanedTemps: [] }),
  };
}

const record = (containerId: string, origin: AttachmentRecord['origin'], extra: Partial<AttachmentRecord> = {}): AttachmentRecord => ({
  containerId, name: `c-${containerId.slice(0, 4)}`, pid: 100, startedAt: '2026-01-01T00:00:00Z', netns: path.join(PINS, containerId), origin, updatedAt: '',
  networks: [{ network: 'n', ifName: 'eth0', state: 'wired', args: [], capabilityArgs: {}, addresses: [] }], ...extra,
});

async function setup(t: Parameters<typeof tempDir>[0], entries: CacheEntry[], gcAsked: GcAttachment[][] = []) {
  const dir = await tempDir(t);
  const store = new AttachmentStore(dir);
  const docker = new FakeDocker();
  const confDir = path.join(dir, 'net.d');
  const { mkdir, writeFile } = await import('node:fs/promises');
  await mkdir(confDir);
  await writeFile(path.join(confDir, 'n.conflist'), JSON.stringify({ cniVersion: '1.1.0', name: 'n', plugins: [{ type: 'x' }] }));
  const collector = new Collector({
    docker, wirer: {} as Wirer, engine: fakeCni(entries, gcAsked), store, pins, confDir, sandboxGraceMs: 60_000,
    firewall: { containersWithRules: async () => [], revokePortMapped: async () => undefined, pluginChains: async () => [], removeChain: async () => undefined },
  });
  return { store, docker, collector };
}

test('stale records are leftovers; a run sandbox goes only by its own record, never by labels', async (t) => {
  const { store, docker, collector } = await setup(t, []);
  const [gone, live, sandboxA, appA, sandboxB, sandboxC, victim] = ['1', '2', '3', '4', '5', '6', '7'].map(id);
  await store.write(record(gone!, 'daemon'));
  docker.add(live!, { 'dockcni.networks': 'n' });
  await store.write(record(live!, 'daemon'));
  // A's app has stopped: A goes. B's app never came, but B is young: it stays. C's app runs: it stays.
  docker.add(sandboxA!, {});
  docker.add(appA!, { 'dockcni.sandbox': sandboxA! }, { running: false });
  await store.write(record(sandboxA!, 'run', { app: appA }));
  docker.add(sandboxB!, {}, { createdAt: new Date().toISOString() });
  await store.write(record(sandboxB!, 'run'));
  docker.add(sandboxC!, {});
  docker.add(id('8'), {});
  await store.write(record(sandboxC!, 'run', { app: id('8') }));
  // Labels that name a victim as a sandbox: it is a plain container and no record says otherwise.
  docker.add(victim!, { 'dockcni.role': 'sandbox' });
  docker.add(id('9'), { 'dockcni.role': 'app', 'dockcni.sandbox': victim! }, { running: false });
  const inventory = await collector.scan();
  t.deepEqual(inventory.leftovers.map((l) => [l.kind, l.containerId.slice(0, 1), 'why' in l ? l.why : '']), [
    ['attachment', '1', 'container is gone'], ['sandbox', '3', 'its app is not running'],
  ]);
  t.deepEqual(inventory.skippedCache, [{ path: '/x/junk', reason: 'not JSON' }]);
});

test('cache entries: dockcni\'s own without a record are leftovers; other runtimes\' are never, and spec GC keeps them', async (t) => {
  const mine = entry(id('a'), path.join(PINS, id('a')));
  const ctrd = entry('containerd-1', undefined);
  const crio = entry('crio-1', '/var/run/netns/cni-1234');
  const gcAsked: GcAttachment[][] = [];
  const { store, collector } = await setup(t, [mine, ctrd, crio], gcAsked);
  const inventory = await collector.scan();
  t.deepEqual(inventory.leftovers.map((l) => [l.kind, l.containerId]), [['cache', id('a')]]);
  t.deepEqual(inventory.foreignCache.map((e) => e.containerId), ['containerd-1', 'crio-1']);
  await store.write(record(id('b'), 'daemon'));
  const report = await collector.cniGc();
  t.deepEqual(report, { deleted: [], errors: [] });
  t.deepEqual(gcAsked, [[{ containerID: id('b'), ifname: 'eth0' }, { containerID: 'containerd-1', ifname: 'eth0' }, { containerID: 'crio-1', ifname: 'eth0' }]],
    'valid: what records hold (read under GC\'s lock), and every attachment dockcni does not own');
});

test('a leftover that cannot be removed comes back named, so no report calls it removed', async (t) => {
  const dir = await tempDir(t);
  const { CleanupError } = await import('../../../src/gc/collector.js');
  const failing = new Collector({
    docker: new FakeDocker(), wirer: { unwire: async () => { throw new Error('plugin "macvlan" failed (DEL): Link not found'); } }, engine: fakeCni([]),
    store: new AttachmentStore(dir), pins, confDir: dir, sandboxGraceMs: 0, firewall: { containersWithRules: async () => [], revokePortMapped: async () => undefined, pluginChains: async () => [], removeChain: async () => undefined },
  });
  const item = { kind: 'attachment' as const, containerId: id('c'), name: 'web', why: 'container is gone', networks: ['lan'] };
  const [error] = await failing.remove([item]);
  t.true(error instanceof CleanupError);
  t.is((error as InstanceType<typeof CleanupError>).item, item);
  t.regex(error?.message ?? '', /attachment cccccccccccc: plugin "macvlan" failed \(DEL\): Link not found/);
});
