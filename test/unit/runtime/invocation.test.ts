import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test from 'ava';
import { FakeDocker } from '../../helpers/fake-docker.js';
import { optionsProblem, parseInvocation, runtimeArgs } from '../../../src/runtime/invocation.js';
import { installRuntime, uninstallRuntime } from '../../../src/runtime/install.js';

const ID = 'a'.repeat(64);
const TASK = `/var/run/docker/containerd/daemon/io.containerd.runtime.v2.task/moby/${ID}`;

test('the shim\'s create: dockcni options, runc global flags, then create and its flags', (t) => {
  const inv = parseInvocation(['--dockcni-conf-dir=/etc/cni/x', '--dockcni-timeout=5', '--root', '/var/run/docker/runtime-runc/moby', '--log', `${TASK}/log.json`, '--log-format', 'json', '--systemd-cgroup',
    'create', '--bundle', TASK, '--pid-file', `${TASK}/init.pid`, '--console-socket', '/tmp/pty.sock', ID]);
  t.deepEqual(inv.options, { confDir: '/etc/cni/x', timeout: '5' });
  t.deepEqual(inv.runcGlobal, ['--root', '/var/run/docker/runtime-runc/moby', '--log', `${TASK}/log.json`, '--log-format', 'json', '--systemd-cgroup']);
  t.is(inv.command, 'create');
  t.is(inv.containerId, ID);
  t.is(inv.bundle, TASK);
  t.is(inv.pidFile, `${TASK}/init.pid`);
  t.is(inv.logFile, `${TASK}/log.json`);
  t.is(inv.logFormat, 'json');
  t.is(optionsProblem(inv), undefined);
});

test('delete --force and flags written with "="', (t) => {
  const inv = parseInvocation(['--root=/r', '--log=/l.json', 'delete', '--force', ID]);
  t.is(inv.command, 'delete');
  t.is(inv.containerId, ID);
  t.is(inv.logFile, '/l.json');
  t.is(inv.logFormat, 'text');
});

test('an unknown --dockcni- option is named, with the fix', (t) => {
  const inv = parseInvocation(['--dockcni-conf=/x', 'create', ID]);
  t.regex(optionsProblem(inv)?.message ?? '', /invalid runtime option "--dockcni-conf=\/x": not one of --dockcni-conf-dir=…/);
});

test('runtimeArgs and the parser agree', (t) => {
  const options = { confDir: '/c', cniPath: '/a:/b', stateDir: '/s', dockerRoot: '/d', allowArgs: '' };
  t.deepEqual(parseInvocation([...runtimeArgs(options), 'state', ID]).options, options);
});

test('install keeps every other key and runtime, keeps a backup; uninstall gives the file back', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'dockcni-daemonjson-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'daemon.json');
  const original = { 'log-level': 'warn', runtimes: { nvidia: { path: '/usr/bin/nvidia-container-runtime' } }, 'default-runtime': 'nvidia' };
  await writeFile(file, JSON.stringify(original));
  const docker = new FakeDocker();
  const installed = await installRuntime({ docker, name: 'dockcni', daemonJson: file, runtime: { confDir: '/c' }, makeDefault: false, reload: false });
  t.true(installed.changed);
  t.is(installed.backup, `${file}.dockcni-backup`);
  t.deepEqual(JSON.parse(await readFile(`${file}.dockcni-backup`, 'utf8')), original);
  const now = JSON.parse(await readFile(file, 'utf8'));
  t.is(now['log-level'], 'warn');
  t.is(now['default-runtime'], 'nvidia');
  t.deepEqual(now.runtimes.nvidia, original.runtimes.nvidia);
  t.deepEqual(now.runtimes.dockcni.runtimeArgs, ['--dockcni-conf-dir=/c']);
  t.false((await installRuntime({ docker, name: 'dockcni', daemonJson: file, runtime: { confDir: '/c' }, makeDefault: false, reload: false })).changed, 'a second install changes nothing');
  await uninstallRuntime({ docker, name: 'dockcni', daemonJson: file, reload: false });
  t.deepEqual(JSON.parse(await readFile(file, 'utf8')), original);
});

test('a daemon.json that is not JSON is named and left alone', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'dockcni-daemonjson-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'daemon.json');
  await writeFile(file, '{"log-level": "warn",}');
  await t.throwsAsync(installRuntime({ docker: new FakeDocker(), name: 'dockcni', daemonJson: file, runtime: {}, makeDefault: false, reload: false }), { message: new RegExp(`${file} is not valid JSON`) });
  t.is(await readFile(file, 'utf8'), '{"log-level": "warn",}');
});
