import { mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import { CniPluginError } from '../../../src/cni/plugin-error.js';
import { DockcniError } from '../../../src/errors.js';
import { sandbox } from '../../helpers/fixtures.js';

test('ADD runs plugins in order, injecting name, cniVersion and prevResult', async (t) => {
  const s = await sandbox(t);
  const list = s.list([{ id: 'a', name: 'ignored', cniVersion: '0.3.1' }, { id: 'b' }, { id: 'c' }]);
  const result = await s.engine().add(list, s.rt());
  const calls = await s.calls();
  t.deepEqual(calls.map((c) => [c.command, c.stdin['id']]), [['ADD', 'a'], ['ADD', 'b'], ['ADD', 'c']]);
  t.true(calls.every((c) => c.stdin['name'] === 'testnet' && c.stdin['cniVersion'] === '1.0.0'));
  t.is(calls[0]?.stdin['prevResult'], undefined);
  t.deepEqual(calls[1]?.stdin['prevResult'], result);
  t.deepEqual(calls[2]?.stdin['prevResult'], result);
  t.deepEqual(result.ips?.[0]?.address, '10.1.0.2/24');
});

test('each plugin sees the result of the one before it', async (t) => {
  const s = await sandbox(t);
  const first = { cniVersion: '1.0.0', ips: [{ address: '10.9.0.5/24' }] };
  const second = { cniVersion: '1.0.0', ips: [{ address: '10.9.0.5/24' }, { address: 'fd00::5/64' }] };
  const list = s.list([{ fixture: { result: first } }, { fixture: { result: second } }, {}]);
  const result = await s.engine().add(list, s.rt());
  const calls = await s.calls();
  t.deepEqual(calls[1]?.stdin['prevResult'], first);
  t.deepEqual(calls[2]?.stdin['prevResult'], second);
  t.deepEqual(result, second);
});

test('plugins get the CNI_* environment, CNI_ARGS formatted and always set', async (t) => {
  const s = await sandbox(t);
  await s.engine().add(s.list([{}]), s.rt({ args: [['IgnoreUnknown', '1'], ['K8S_POD_NAME', 'web']] }));
  await s.engine().del('testnet', s.rt({ containerId: 'never-added' }), s.list([{}]));
  const [add, del] = await s.calls();
  t.like(add?.env, { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c0ffee', CNI_NETNS: '/var/run/netns/none', CNI_IFNAME: 'eth0', CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAME=web' });
  t.true(add?.env['CNI_PATH']?.endsWith('test/fixtures/plugins'));
  t.is(del?.env['CNI_ARGS'], '');
  t.is(del?.env['CNI_COMMAND'], 'DEL');
});

test('runtimeConfig carries only the capabilities a plugin declares true', async (t) => {
  const s = await sandbox(t);
  const list = s.list([
    { id: 'ports', capabilities: { portMappings: true, mac: false } },
    { id: 'none', runtimeConfig: { fromFile: 1 } },
    { id: 'unmatched', capabilities: { bandwidth: true }, runtimeConfig: { fromFile: 2 } },
  ]);
  const ports = [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }];
  await s.engine().add(list, s.rt({ capabilityArgs: { portMappings: ports, mac: '02:00:00:00:00:01', ips: ['10.1.0.9/24'] } }));
  const calls = await s.calls();
  t.deepEqual(calls[0]?.stdin['runtimeConfig'], { portMappings: ports });
  t.deepEqual(calls[1]?.stdin['runtimeConfig'], { fromFile: 1 });
  t.deepEqual(calls[2]?.stdin['runtimeConfig'], { fromFile: 2 });
});

test('the result is cached in libcni format, atomically, 0600 in a 0700 dir', async (t) => {
  const s = await sandbox(t);
  const list = s.list([{}]);
  const rt = s.rt({ args: [['A', 'b']], capabilityArgs: { mac: '02:00:00:00:00:01' } });
  const result = await s.engine().add(list, rt);
  const entry = await s.engine().cachedAttachment('testnet', 'c0ffee', 'eth0');
  t.deepEqual(entry, {
    kind: 'cniCacheV1', containerId: 'c0ffee', config: list.bytes.toString('base64'), ifName: 'eth0', networkName: 'testnet',
    netns: '/var/run/netns/none', cniArgs: [['A', 'b']], capabilityArgs: { mac: '02:00:00:00:00:01' }, result,
  });
  const file = `${s.cacheDir}/results/testnet-c0ffee-eth0`;
  t.is((await stat(file)).mode & 0o777, 0o600);
  t.is((await stat(`${s.cacheDir}/results`)).mode & 0o777, 0o700);
  t.deepEqual(await readdir(`${s.cacheDir}/results`), ['testnet-c0ffee-eth0']);
});

test('DEL runs in reverse with the cached result and the config cached at ADD time', async (t) => {
  const s = await sandbox(t);
  const engine = s.engine();
  const result = await engine.add(s.list([{ id: 'a' }, { id: 'b' }]), s.rt());
  const edited = s.list([{ id: 'z' }]);
  await engine.del('testnet', s.rt(), edited);
  const dels = (await s.calls()).filter((c) => c.command === 'DEL');
  t.deepEqual(dels.map((c) => c.stdin['id']), ['b', 'a']);
  t.true(dels.every((c) => JSON.stringify(c.stdin['prevResult']) === JSON.stringify(result)));
  t.is(await engine.cachedAttachment('testnet', 'c0ffee', 'eth0'), undefined);
});

test('DEL without args reuses the CNI_ARGS and capability args cached at ADD', async (t) => {
  const s = await sandbox(t);
  const engine = s.engine();
  const list = s.list([{ capabilities: { portMappings: true } }]);
  const ports = [{ hostPort: 1, containerPort: 2, protocol: 'tcp' }];
  await engine.add(list, s.rt({ args: [['K', 'v']], capabilityArgs: { portMappings: ports } }));
  await engine.del('testnet', s.rt());
  const del = (await s.calls()).find((c) => c.command === 'DEL');
  t.is(del?.env['CNI_ARGS'], 'K=v');
  t.deepEqual(del?.stdin['runtimeConfig'], { portMappings: ports });
});

test('DEL succeeds when repeated, without a cache, using the current config', async (t) => {
  const s = await sandbox(t);
  const engine = s.engine();
  const list = s.list([{ id: 'a' }]);
  await engine.add(list, s.rt());
  await engine.del('testnet', s.rt(), list);
  await engine.del('testnet', s.rt(), list);
  const dels = (await s.calls()).filter((c) => c.command === 'DEL');
  t.is(dels.length, 2);
  t.is(dels[1]?.stdin['prevResult'], undefined);
});

test('DEL before 0.4.0 sends no prevResult', async (t) => {
  const s = await sandbox(t);
  const engine = s.engine();
  await engine.add(s.list([{}], { cniVersion: '0.3.1' }), s.rt());
  await engine.del('testnet', s.rt());
  const del = (await s.calls()).find((c) => c.command === 'DEL');
  t.is(del?.stdin['prevResult'], undefined);
  t.is(del?.stdin['cniVersion'], '0.3.1');
});

test('DEL with neither cache nor config says what is missing', async (t) => {
  const s = await sandbox(t);
  const error = await t.throwsAsync(s.engine().del('gone', s.rt()));
  t.regex(error?.message ?? '', /no cached attachment and no config for network "gone"/);
});

test('CHECK gets the cached result; honours disableCheck; refused before 0.4.0 and without ADD', async (t) => {
  const s = await sandbox(t);
  const engine = s.engine();
  const list = s.list([{ id: 'a' }, { id: 'b' }]);
  await t.throwsAsync(engine.check(list, s.rt()), { message: /CHECK needs a prior ADD/ });
  const result = await engine.add(list, s.rt());
  await engine.check(list, s.rt());
  const checks = (await s.calls()).filter((c) => c.command === 'CHECK');
  t.deepEqual(checks.map((c) => c.stdin['id']), ['a', 'b']);
  t.true(checks.every((c) => JSON.stringify(c.stdin['prevResult']) === JSON.stringify(result)));

  const old = s.list([{}], { cniVersion: '0.3.1' });
  await engine.add(old, s.rt({ containerId: 'old' }));
  await t.throwsAsync(engine.check(old, s.rt({ containerId: 'old' })), { message: /CHECK needs 0\.4\.0 or later/ });

  const off = s.list([{}], { name: 'offnet', disableCheck: true });
  await engine.add(off, s.rt({ containerId: 'off' }));
  await engine.check(off, s.rt({ containerId: 'off' }));
  t.is((await s.calls()).filter((c) => c.command === 'CHECK').length, 2);
});

test('a failed ADD is undone by a DEL of the plugins that ran, in reverse, reports the original error, caches nothing', async (t) => {
  const s = await sandbox(t);
  const list = s.list([{ id: 'a' }, { id: 'b', fixture: { fail: { code: 7, msg: 'bad subnet', details: 'subnet 10.0.0.0/33' }, failOn: ['ADD'] } }, { id: 'c' }]);
  const error = await t.throwsAsync(s.engine().add(list, s.rt()), { instanceOf: CniPluginError });
  t.like(error, { plugin: 'fixture', command: 'ADD', cniCode: 7, msg: 'bad subnet', details: 'subnet 10.0.0.0/33', kind: 'error-result' });
  t.regex(error?.message ?? '', /plugin "fixture" failed \(ADD\) \[CNI code 7: invalid network configuration\]: bad subnet \(subnet 10\.0\.0\.0\/33\)/);
  const calls = await s.calls();
  t.deepEqual(calls.map((c) => `${c.command} ${String(c.stdin['id'])}`), ['ADD a', 'ADD b', 'DEL b', 'DEL a']);
  t.deepEqual((await s.engine().cachedAttachments()).entries, []);
});

test('a plugin that cannot be found or started made nothing: the rollback DELs the plugins before it, and does not stop at it', async (t) => {
  const s = await sandbox(t);
  // On the plugin path and executable, but its interpreter does not exist: the exec itself fails.
  const { chmod } = await import('node:fs/promises');
  await mkdir(`${s.dir}/no-such-dir`);
  await writeFile(`${s.dir}/no-such-dir/broken`, '#!/nonexistent/interpreter\n');
  await chmod(`${s.dir}/no-such-dir/broken`, 0o755);
  for (const missing of [{ type: 'no-such-plugin' }, { type: 'broken' }]) {
    const list = s.list([{ id: 'a' }, { id: 'b' }, missing]);
    const error = await t.throwsAsync(s.engine().add(list, s.rt()));
    t.regex(error?.message ?? '', /not found|cannot start/);
  }
  const calls = await s.calls();
  t.deepEqual(calls.map((c) => `${c.command} ${String(c.stdin['id'])}`), ['ADD a', 'ADD b', 'DEL b', 'DEL a', 'ADD a', 'ADD b', 'DEL b', 'DEL a']);
});

test('a rollback DEL that fails too is kept on the ADD error', async (t) => {
  const s = await sandbox(t);
  const list = s.list([{ fixture: { fail: { code: 5, msg: 'disk full' } } }]);
  const error = await t.throwsAsync(s.engine().add(list, s.rt()), { instanceOf: CniPluginError });
  t.is(error?.command, 'ADD');
  t.is(error?.rollbackErrors.length, 1);
  t.regex(error?.rollbackErrors[0]?.message ?? '', /failed \(DEL\)/);
});

test('GC DELs stale cached attachments, then sends GC with the valid and cached ones (1.1.0)', async (t) => {
  const s = await sandbox(t);
  const engine = s.engine();
  const list = s.list([{ id: 'a' }], { cniVersion: '1.1.0' });
  await engine.add(list, s.rt({ containerId: 'live' }));
  await engine.add(list, s.rt({ containerId: 'dead' }));
  const outcome = await engine.gc(list, async () => [{ containerID: 'live', ifname: 'eth0' }, { containerID: 'other', ifname: 'eth1' }]);
  t.deepEqual(outcome.deleted.map((e) => e.containerId), ['dead']);
  t.deepEqual(outcome.errors, []);
  const calls = await s.calls();
  t.deepEqual(calls.filter((c) => c.command === 'DEL').map((c) => c.env['CNI_CONTAINERID']), ['dead']);
  const gc = calls.find((c) => c.command === 'GC');
  t.deepEqual(gc?.stdin['cni.dev/valid-attachments'], [
    { containerID: 'live', ifname: 'eth0' }, { containerID: 'other', ifname: 'eth1' }, { containerID: 'live', ifname: 'eth0' },
  ]);
  t.is(gc?.env['CNI_CONTAINERID'], undefined);
});

test('GC skips the plugin call for disableGC and for lists before 1.1.0', async (t) => {
  const s = await sandbox(t);
  await s.engine().gc(s.list([{}], { cniVersion: '1.1.0', disableGC: true }), async () => []);
  await s.engine().gc(s.list([{}], { cniVersion: '1.0.0' }), async () => []);
  t.deepEqual((await s.calls()).filter((c) => c.command === 'GC'), []);
});

test('STATUS asks each plugin of a 1.1.0 list and throws its error', async (t) => {
  const s = await sandbox(t);
  t.deepEqual(await s.engine().status(s.list([{}, {}], { cniVersion: '1.1.0' })), { supported: true });
  t.is((await s.calls()).filter((c) => c.command === 'STATUS').length, 2);
  t.deepEqual(await s.engine().status(s.list([{}])), { supported: false });
  const down = s.list([{ fixture: { fail: { code: 50, msg: 'daemon not running' } } }], { cniVersion: '1.1.0' });
  await t.throwsAsync(s.engine().status(down), { instanceOf: CniPluginError, message: /\[CNI code 50: plugin not available\]: daemon not running/ });
});

test('VERSION returns what the plugin supports, as it says it', async (t) => {
  const s = await sandbox(t);
  const { writeFile, mkdir, chmod } = await import('node:fs/promises');
  // A plugin that speaks two old versions only: nothing in the engine's own list could pass for it.
  const dir = `${s.dir}/plugins`;
  await mkdir(dir);
  await writeFile(`${dir}/oldie`, '#!/bin/sh\ncat >/dev/null\necho \'{"cniVersion":"0.4.0","supportedVersions":["0.3.1","0.4.0"]}\'\n');
  await chmod(`${dir}/oldie`, 0o755);
  const { CniEngine } = await import('../../../src/cni/engine.js');
  const { SpawnPluginExec } = await import('../../../src/cni/spawn-plugin-exec.js');
  const { FileLocks } = await import('../../../src/cni/lock.js');
  const engine = new CniEngine({ exec: new SpawnPluginExec(), locks: new FileLocks(`${s.dir}/locks`), pluginPath: [dir], cacheDir: s.cacheDir, timeoutMs: 5000, netns: { check: async () => undefined } });
  t.deepEqual(await engine.version('oldie', '0.4.0'), { cniVersion: '0.4.0', supportedVersions: ['0.3.1', '0.4.0'] });
});

test('the trace sees each call with env, stdin, stdout and duration', async (t) => {
  const s = await sandbox(t);
  await s.engine().add(s.list([{ fixture: { holdMs: 200 } }]), s.rt());
  t.is(s.traces.length, 1);
  t.like(s.traces[0], { plugin: 'fixture', command: 'ADD', exitCode: 0 });
  t.is(s.traces[0]?.env['CNI_COMMAND'], 'ADD');
  t.regex(s.traces[0]?.stdout ?? '', /10\.1\.0\.2/);
  t.true((s.traces[0]?.durationMs ?? -1) >= 200, 'the call\'s own time, which includes the plugin\'s 200 ms');
});

test('one attachment runs one operation at a time; other attachments run alongside', async (t) => {
  const s = await sandbox(t);
  const list = s.list([{ fixture: { holdMs: 1000 } }]);
  const engine = s.engine();
  await Promise.all([engine.add(list, s.rt()), s.engine().del('testnet', s.rt(), list), engine.add(list, s.rt({ containerId: 'other' }))]);
  const { readFile } = await import('node:fs/promises');
  const events = (await readFile(s.record, 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as { phase: string; env?: Record<string, string>; at: number; command: string });
  const mine = (phase: string) => events.filter((e) => e.phase === phase && e.env?.['CNI_CONTAINERID'] === 'c0ffee');
  const [, secondStart] = mine('start');
  const [firstEnd] = mine('end');
  t.truthy(secondStart);
  t.true((secondStart?.at ?? 0) >= (firstEnd?.at ?? Infinity), 'the second operation on c0ffee starts after the first ended');
  // Not serialized behind c0ffee: the other container's call overlaps one of c0ffee's (each holds 1 s).
  const [otherStart] = events.filter((e) => e.phase === 'start' && e.env?.['CNI_CONTAINERID'] === 'other');
  const [otherEnd] = events.filter((e) => e.phase === 'end' && e.env?.['CNI_CONTAINERID'] === 'other');
  const starts = mine('start');
  const ends = mine('end');
  const overlaps = starts.some((st, i) => (otherStart?.at ?? Infinity) < (ends[i]?.at ?? 0) && (otherEnd?.at ?? 0) > st.at);
  t.true(overlaps, 'a different container runs while c0ffee is held');
});

test('errors are DockcniErrors with a code', async (t) => {
  const s = await sandbox(t);
  const error = await t.throwsAsync(s.engine().add(s.list([{ fixture: { exit: 3 } }]), s.rt()));
  t.true(error instanceof DockcniError);
  t.is((error as DockcniError).code, 'plugin-failed');
});

test('a DEL with nothing cached (an ADD cut short before its result was written) passes what host-local reserved for the attachment as prevResult', async (t) => {
  const s = await sandbox(t);
  const dataDir = path.join(s.dir, 'ipam');
  const list = s.list([{ ipam: { type: 'host-local', dataDir, ranges: [[{ subnet: '10.9.0.0/24' }], [{ subnet: 'fd00:9::/64' }]] } }]);
  await mkdir(path.join(dataDir, 'testnet'), { recursive: true });
  await writeFile(path.join(dataDir, 'testnet', '10.9.0.7'), 'c0ffee\r\neth0');
  await writeFile(path.join(dataDir, 'testnet', 'fd00:9::7'), 'c0ffee\r\neth0');
  await writeFile(path.join(dataDir, 'testnet', '10.9.0.8'), 'c0ffee\r\neth1');
  await writeFile(path.join(dataDir, 'testnet', '10.9.0.9'), 'other\r\neth0');
  await writeFile(path.join(dataDir, 'testnet', 'last_reserved_ip.0'), '10.9.0.9');
  await s.engine().del('testnet', s.rt(), list);
  const [del] = (await s.calls()).filter((c) => c.command === 'DEL');
  const ips = ((del?.stdin['prevResult'] as { ips?: { address: string }[] } | undefined)?.ips ?? []).map((i) => i.address).sort();
  t.deepEqual(ips, ['10.9.0.7/24', 'fd00:9::7/64'], 'only this container\'s, on this interface');
  await s.engine().del('testnet', s.rt({ containerId: 'nobody' }), list);
  t.is((await s.calls()).filter((c) => c.command === 'DEL')[1]?.stdin['prevResult'], undefined, 'none reserved: no prevResult, as before');
});

test('a DEL with nothing cached passes over a plugin that cannot be found (an ADD that failed on it never ran it)', async (t) => {
  const s = await sandbox(t);
  const list = s.list([{}, { type: 'nosuchplugin' }]);
  await s.engine().del('testnet', s.rt(), list);
  t.deepEqual((await s.calls()).map((c) => c.command), ['DEL'], 'the fixture before it got its DEL');
});
