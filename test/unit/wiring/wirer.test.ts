import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test from 'ava';
import type { CniEngine } from '../../../src/cni/engine.js';
import { FileLocks } from '../../../src/cni/lock.js';
import { AttachmentStore } from '../../../src/state/attachment-store.js';
import type { NetnsPins } from '../../../src/wiring/netns-pins.js';
import { Wirer } from '../../../src/wiring/wirer.js';

const ID = 'c'.repeat(64);

/** Pins that remember what they hold and fail when told to. */
class FakePins implements NetnsPins {
  readonly dir = '/run/fake-pins';
  readonly held = new Set<string>();
  constructor(private readonly failPin: boolean) {}
  pathFor(id: string) { return path.join(this.dir, id); }
  async pin(id: string) {
    if (this.failPin) throw new Error('mount: permission denied');
    this.held.add(id);
    return this.pathFor(id);
  }
  async unpin(id: string) { this.held.delete(id); }
  isPinned(id: string) { return this.held.has(id); }
  /** Processes still running. */
  readonly live = new Set<number>();
  isLive(_id: string, pid: number) { return this.live.has(pid); }
  async list() { return [...this.held]; }
}

async function setup(t: { teardown(fn: () => Promise<void>): void }, pins: FakePins, store: (dir: string) => AttachmentStore, status: () => Promise<{ supported: boolean }> = async () => ({ supported: false }), warnings: string[] = [], result: object = { cniVersion: '1.0.0' }) {
  const root = await mkdtemp(path.join(tmpdir(), 'dockcni-wirer-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const confDir = path.join(root, 'net.d');
  await mkdir(confDir);
  await writeFile(path.join(confDir, 'n.conflist'), JSON.stringify({ cniVersion: '1.0.0', name: 'n', plugins: [{ type: 'noop' }] }));
  const added: string[] = [];
  const engine = { add: async () => { added.push('ADD'); return result; }, del: async () => { added.push('DEL'); }, status } as unknown as CniEngine;
  const records = store(path.join(root, 'state'));
  const wirer = new Wirer({ engine, store: records, pins, locks: new FileLocks(path.join(root, 'locks')), confDir, podNamespace: 'default', firewall: { allowPortMapped: async () => undefined, revokePortMapped: async () => undefined, removePluginChains: async () => [] }, onWarning: (m) => { warnings.push(m); }, readyWaitMs: 2000 });
  return { wirer, records, added };
}

const target = { containerId: ID, name: 'web', pid: 4242, startedAt: 't0', origin: 'daemon' as const, networkMode: 'none' };
const request = { networks: [{ network: 'n', ifName: 'eth0', capabilityArgs: {}, extraArgs: [], aliases: [] }] };

test('a pin that fails leaves no intent record behind, and no plugin runs', async (t) => {
  const pins = new FakePins(true);
  const { wirer, records, added } = await setup(t, pins, (dir) => new AttachmentStore(dir));
  await t.throwsAsync(wirer.wire(target, request), { message: /permission denied/ });
  t.is(await records.read(ID), undefined);
  t.deepEqual(await readdir(records.dir).catch(() => []), []);
  t.deepEqual(added, []);
});

test('an intent record that cannot be written leaves no pin behind, and no plugin runs', async (t) => {
  const pins = new FakePins(false);
  class FullDisk extends AttachmentStore {
    override async write(): Promise<void> { throw new Error('ENOSPC: no space left on device'); }
  }
  const { wirer, added } = await setup(t, pins, (dir) => new FullDisk(dir));
  await t.throwsAsync(wirer.wire(target, request), { message: /ENOSPC/ });
  t.deepEqual([...pins.held], []);
  t.deepEqual(added, []);
});

test('a wiring that succeeds leaves the pin and one record in the wired state', async (t) => {
  const pins = new FakePins(false);
  const { wirer, records, added } = await setup(t, pins, (dir) => new AttachmentStore(dir));
  await wirer.wire(target, request);
  t.deepEqual([...pins.held], [ID]);
  t.deepEqual(added, ['ADD']);
  t.deepEqual((await records.read(ID))?.networks.map((n) => n.state), ['wired']);
});

test('a die handled late keeps a newer incarnation the runtime has wired; a dead one is DELeted', async (t) => {
  const pins = new FakePins(false);
  const { wirer, records, added } = await setup(t, pins, (dir) => new AttachmentStore(dir));
  await wirer.wire({ ...target, origin: 'runtime', startedAt: '' }, request);
  pins.live.add(target.pid);
  t.is(await wirer.unwire(ID, { ifGone: true }), 'kept-newer');
  t.deepEqual(added, ['ADD']);
  t.truthy(await records.read(ID));
  // The same incarnation seen by the daemon (Docker's StartedAt, which the runtime could not know) is not wired twice.
  await wirer.wire({ ...target, startedAt: '2026-12-01T00:00:00Z' }, request);
  t.deepEqual(added, ['ADD']);
  pins.live.delete(target.pid);
  t.is(await wirer.unwire(ID, { ifGone: true }), 'unwired');
  t.deepEqual(added, ['ADD', 'DEL']);
  t.is(await records.read(ID), undefined);
});

test('CNI STATUS "not ready" holds the ADD, said once, and it proceeds when the network is ready; past the wait it fails', async (t) => {
  const { CniPluginError } = await import('../../../src/cni/plugin-error.js');
  const notReady = () => new CniPluginError({ plugin: 'fixture', command: 'STATUS', kind: 'error-result', cniCode: 50, msg: 'not ready: no uplink yet' });
  let asked = 0;
  const warnings: string[] = [];
  const { wirer, added } = await setup(t, new FakePins(false), (dir) => new AttachmentStore(dir), async () => {
    asked++;
    if (asked < 3) throw notReady();
    return { supported: true };
  }, warnings);
  await wirer.wire(target, request);
  t.is(asked, 3);
  t.deepEqual(added, ['ADD'], 'the ADD ran once the network was ready');
  t.is(warnings.length, 1);
  t.regex(warnings[0] ?? '', /network n is not ready \(.*not ready: no uplink yet\): holding the ADD of container web until it is/);
  const never = await setup(t, new FakePins(false), (dir) => new AttachmentStore(dir), async () => { throw notReady(); });
  await t.throwsAsync(never.wirer.wire(target, request), { message: /not ready: no uplink yet/ });
  t.deepEqual(never.added, [], 'no ADD while the network said it could not take one');
});

test('Docker 26+ rewrites /etc/hosts between create and start: the start of a container already wired puts its lines back, and writes nothing when they are there', async (t) => {
  const pins = new FakePins(false);
  // An ADD that gives an address, so the container has a line of its own.
  const { wirer: withAddress } = await setup(t, pins, (dir) => new AttachmentStore(dir), undefined, [], { cniVersion: '1.0.0', interfaces: [{ name: 'eth0', sandbox: '/x' }], ips: [{ address: '10.1.0.7/24', interface: 0 }] });
  const root = await mkdtemp(path.join(tmpdir(), 'dockcni-hosts-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const hostsPath = path.join(root, 'containers', ID, 'hosts');
  await mkdir(path.dirname(hostsPath), { recursive: true });
  await writeFile(hostsPath, '127.0.0.1\tlocalhost\n');
  const runtime = { ...target, origin: 'runtime' as const, startedAt: '', hostsPath };
  await withAddress.wire(runtime, request);
  const { readFile } = await import('node:fs/promises');
  t.regex(await readFile(hostsPath, 'utf8'), /^10\.1\.0\.7\tweb\t# dockcni$/m);
  await writeFile(hostsPath, '127.0.0.1\tlocalhost\n172.17.0.2\tweb\n');
  pins.live.add(runtime.pid);
  // The daemon's start event for it: Docker now knows its StartedAt; the runtime's record is this incarnation.
  const again = await withAddress.wire({ ...runtime, origin: 'daemon', startedAt: '2026-12-01T00:00:00Z' }, request);
  t.is(again.record.origin, 'runtime', 'not wired again');
  t.is(await readFile(hostsPath, 'utf8'), '127.0.0.1\tlocalhost\n172.17.0.2\tweb\n10.1.0.7\tweb\t# dockcni\n', 'Docker\'s lines kept, dockcni\'s put back');
  const { mtimeMs } = await (await import('node:fs/promises')).stat(hostsPath);
  await withAddress.wire({ ...runtime, origin: 'daemon', startedAt: '2026-12-01T00:00:00Z' }, request);
  t.is((await (await import('node:fs/promises')).stat(hostsPath)).mtimeMs, mtimeMs, 'already there: not written again');
});
