import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import type { Cni } from '../../../src/cni/cni.js';
import { FileLocks } from '../../../src/cni/lock.js';
import type { RuntimeConf } from '../../../src/cni/types.js';
import { AttachmentStore } from '../../../src/state/attachment-store.js';
import { publishedNames } from '../../../src/wiring/host-names.js';
import { hostsEntries } from '../../../src/wiring/hosts-book.js';
import type { NetworkRequest } from '../../../src/wiring/labels.js';
import type { NetnsPins } from '../../../src/wiring/netns-pins.js';
import { Wirer } from '../../../src/wiring/wirer.js';
import type { WireTarget } from '../../../src/wiring/intent.js';

class Pins implements NetnsPins {
  readonly dir = '/run/fake-pins';
  readonly held = new Set<string>();
  pathFor(id: string) { return path.join(this.dir, id); }
  async pin(id: string) { this.held.add(id); return this.pathFor(id); }
  async unpin(id: string) { this.held.delete(id); }
  isPinned(id: string) { return this.held.has(id); }
  isLive() { return true; }
  async list() { return [...this.held]; }
}

/** A wirer over one network `n` (ips and mac capabilities, host-local 10.9.0.0/24) whose "plugin" hands out what is asked or the next address. */
async function setup(t: ExecutionContext) {
  const root = await mkdtemp(path.join(tmpdir(), 'dockcni-claims-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const confDir = path.join(root, 'net.d');
  await mkdir(confDir);
  await writeFile(path.join(confDir, 'n.conflist'), JSON.stringify({ cniVersion: '1.0.0', name: 'n', plugins: [{ type: 'noop', capabilities: { ips: true, mac: true }, ipam: { type: 'host-local', subnet: '10.9.0.0/24' } }] }));
  const adds: string[] = [];
  let next = 2;
  const engine = {
    add: async (_list: unknown, rt: RuntimeConf) => {
      adds.push(rt.containerId);
      const ips = (rt.capabilityArgs?.['ips'] as string[] | undefined) ?? [`10.9.0.${next++}/24`];
      const mac = (rt.capabilityArgs?.['mac'] as string | undefined) ?? `02:00:00:00:00:${String(next).padStart(2, '0')}`;
      return { cniVersion: '1.0.0', interfaces: [{ name: rt.ifName, mac, sandbox: rt.netns }], ips: ips.map((address) => ({ address, interface: 0 })) };
    },
    del: async () => undefined,
    status: async () => ({ supported: false }),
  } as unknown as Cni;
  const store = new AttachmentStore(path.join(root, 'state'));
  const warnings: string[] = [];
  const wirer = new Wirer({ engine, store, pins: new Pins(), locks: new FileLocks(path.join(root, 'locks')), confDir, podNamespace: 'default', firewall: { allowPortMapped: async () => undefined, revokePortMapped: async () => undefined, removePluginChains: async () => [] }, onWarning: (m) => { warnings.push(m); } });
  return { wirer, store, adds, warnings, root };
}

let serial = 1;
function target(name: string, extra: Partial<WireTarget> = {}): WireTarget {
  const n = serial++;
  return { containerId: n.toString(16).padStart(64, 'a'), name, pid: 1000 + n, startedAt: 't', origin: 'daemon', networkMode: 'none', ...extra };
}
const on = (extra: Partial<NetworkRequest> = {}) => ({ networks: [{ network: 'n', ifName: 'eth0', capabilityArgs: {}, extraArgs: [], aliases: [], ...extra }] });

test('a hostname with a newline fails its own container before any plugin runs, and no peer file changes', async (t) => {
  const { wirer, store, adds } = await setup(t);
  await wirer.wire(target('db'), on());
  const before = JSON.stringify(await store.list());
  await t.throwsAsync(wirer.wire(target('evil', { hostname: 'x\n10.0.0.66 db' }), on()), { message: /invalid hostname "x\\n10\.0\.0\.66 db": not a DNS name/ });
  t.is(adds.length, 1, 'only db was ever ADDed');
  t.is(JSON.stringify(await store.list()), before, 'no record of the refused container');
});

test('an alias another container claimed on the network is refused, naming the holder; on another network it is free', async (t) => {
  const { wirer, store } = await setup(t);
  const first = target('api');
  await wirer.wire(first, on({ aliases: ['cache'] }));
  await t.throwsAsync(wirer.wire(target('web'), on({ aliases: ['cache'] })), { message: /name "cache" on network n is already claimed by container api \(aaaa/ });
  await t.throwsAsync(wirer.wire(target('web2', { hostname: 'CACHE' }), on()), { message: /name "CACHE" on network n is already claimed by container api/, }, 'a hostname is a claim too, compared without case');
  await t.throwsAsync(wirer.wire(target('web3'), on({ aliases: ['api'] })), { message: /name "api" on network n is already the name of container api/, }, 'an alias never takes a container name');
  t.is((await store.list()).length, 1);
});

test('a container name that an earlier alias holds wins: the alias is left out of every hosts file while it lives', async (t) => {
  const { wirer, store } = await setup(t);
  const { record: a } = await wirer.wire(target('a'), on({ aliases: ['db'] }));
  const { record: db } = await wirer.wire(target('db'), on());
  const all = await store.list();
  const addr = (r: typeof a) => r.networks[0]!.addresses[0]!.split('/')[0]!;
  t.deepEqual(hostsEntries(db, all).filter((e) => e.includes('db')), [[addr(db), 'db']], 'db resolves to the container named db only');
  t.deepEqual(hostsEntries(db, all).find((e) => e[0] === addr(a)), [addr(a), 'a']);
});

test('replicas of one compose service share the service name; another project may not take it', async (t) => {
  const { wirer } = await setup(t);
  await wirer.wire(target('shop-web-1'), on({ aliases: ['web'], group: 'shop/web' }));
  await t.notThrowsAsync(wirer.wire(target('shop-web-2'), on({ aliases: ['web'], group: 'shop/web' })));
  await t.throwsAsync(wirer.wire(target('blog-web-1'), on({ aliases: ['web'], group: 'blog/web' })), { message: /name "web" on network n is already claimed by container shop-web-[12]/ });
});

test('two containers asking for one MAC on a network: the second is refused naming the first', async (t) => {
  const { wirer, adds } = await setup(t);
  await wirer.wire(target('a'), on({ capabilityArgs: { mac: '02:42:0a:01:00:05' } }));
  await t.throwsAsync(wirer.wire(target('b'), on({ capabilityArgs: { mac: '02:42:0A:01:00:05' } })), { message: /invalid MAC address for network n "02:42:0A:01:00:05": already used by container a/ });
  t.is(adds.length, 1);
});

test('a MAC the plugin gave another container counts as taken too', async (t) => {
  const { wirer } = await setup(t);
  const { record: a } = await wirer.wire(target('a'), on());
  const mac = a.networks[0]!.mac!;
  await t.throwsAsync(wirer.wire(target('b'), on({ capabilityArgs: { mac } })), { message: /already used by container a/ });
});

test('two containers racing for one static address or one alias: exactly one is wired', async (t) => {
  const { wirer, store } = await setup(t);
  const results = await Promise.allSettled([
    wirer.wire(target('r1'), on({ capabilityArgs: { ips: ['10.9.0.50/24'] } })),
    wirer.wire(target('r2'), on({ capabilityArgs: { ips: ['10.9.0.50/24'] } })),
    wirer.wire(target('r3'), on({ aliases: ['leader'] })),
    wirer.wire(target('r4'), on({ aliases: ['leader'] })),
  ]);
  t.deepEqual(results.map((r) => r.status).sort(), ['fulfilled', 'fulfilled', 'rejected', 'rejected']);
  t.is(results.filter((r, i) => i < 2 && r.status === 'fulfilled').length, 1, 'one of the address racers');
  t.is(results.filter((r, i) => i >= 2 && r.status === 'fulfilled').length, 1, 'one of the alias racers');
  t.is((await store.list()).length, 2);
});

test('Docker names and hostnames that cannot be published are left out and said; the container is wired', async (t) => {
  const { wirer, warnings, root } = await setup(t);
  await wirer.wire(target('web.prod', { hostname: 'localhost' }), on());
  t.regex(warnings.join('\n'), /not published to its peers: container name "web\.prod" has dots.*hostname "localhost" is reserved/);
  t.deepEqual(publishedNames('web', 'web.example.com', []).claims, [], 'a dotted hostname publishes its first label, here the name itself');
  t.deepEqual(publishedNames('web', 'api.example.com', ['db']).claims, ['api', 'db']);
  t.true((await readdir(path.join(root, 'state', 'attachments'))).length === 1);
});

test('the names one container publishes on a network are capped', (t) => {
  t.throws(() => publishedNames('n'.repeat(63), 'h'.repeat(63), ['a'.repeat(63), 'b'.repeat(63), 'c'.repeat(63)]), { message: /more than 255 characters of names/ });
});

test('a restarted container re-wired while another waits for its teardown: both are wired, neither waits on the other (no lock-order cycle)', async (t) => {
  const root = await mkdtemp(path.join(tmpdir(), 'dockcni-claims-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const confDir = path.join(root, 'net.d');
  await mkdir(confDir);
  await writeFile(path.join(confDir, 'n.conflist'), JSON.stringify({ cniVersion: '1.0.0', name: 'n', plugins: [{ type: 'noop', ipam: { type: 'host-local', subnet: '10.9.0.0/24' } }] }));
  const x = target('x');
  let releaseDel!: () => void;
  const delHeld = new Promise<void>((resolve) => { releaseDel = resolve; });
  let delStarted!: () => void;
  const inDel = new Promise<void>((resolve) => { delStarted = resolve; });
  let next = 2;
  const engine = {
    add: async (_list: unknown, rt: RuntimeConf) => ({ cniVersion: '1.0.0', interfaces: [{ name: rt.ifName, sandbox: rt.netns }], ips: [{ address: `10.9.0.${next++}/24`, interface: 0 }] }),
    // x's first incarnation is DELed slowly: its next incarnation's wiring holds x's lock meanwhile.
    del: async (_name: string, rt: RuntimeConf) => {
      if (rt.containerId !== x.containerId) return;
      delStarted();
      await delHeld;
    },
    status: async () => ({ supported: false }),
  } as unknown as Cni;
  class DeadFirst extends Pins {
    override isLive(id?: string, pid?: number) { return !(id === x.containerId && pid === x.pid); }
  }
  const locksDir = path.join(root, 'locks');
  // Bounded: on a cycle the wait ends in a lock timeout instead of hanging the suite.
  const wirer = new Wirer({ engine, store: new AttachmentStore(path.join(root, 'state')), pins: new DeadFirst(), locks: new FileLocks(locksDir, 8000), confDir, podNamespace: 'default', firewall: { allowPortMapped: async () => undefined, revokePortMapped: async () => undefined, removePluginChains: async () => [] }, onWarning: () => undefined });
  await wirer.wire(x, on());
  const restarted = wirer.wire({ ...x, pid: x.pid + 50_000, startedAt: 't2' }, on());
  await inDel;
  // y finds x dying (its old process gone, its record still there) while x's lock is held.
  const y = wirer.wire(target('y'), on());
  // Until y holds the network's names lock, as it did while waiting for x; one that only passes through
  // it is seen or not, and the wait ends soon either way.
  const started = Date.now();
  while (!(await readdir(locksDir)).includes('names-n.lock') && Date.now() - started < 1000) await new Promise((r) => setImmediate(r));
  releaseDel();
  const [rx, ry] = await Promise.allSettled([restarted, y]);
  t.is(rx.status, 'fulfilled', rx.status === 'rejected' ? String(rx.reason) : '');
  t.is(ry.status, 'fulfilled', ry.status === 'rejected' ? String(ry.reason) : '');
});
