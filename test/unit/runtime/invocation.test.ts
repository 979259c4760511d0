import { chmod, chown, lstat, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test from 'ava';
import { FakeDocker } from '../../helpers/fake-docker.js';
import { optionsProblem, parseInvocation, runtimeArgs } from '../../../src/runtime/invocation.js';
import { dockerdPid, installRuntime, uninstallRuntime } from '../../../src/runtime/install.js';
import { untrustedPathProblems } from '../../../src/runtime/trusted-paths.js';
import type { DockcniError } from '../../../src/errors.js';

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

test('runtimeArgs refuse what dockerd\'s unquoted wrapper script would split or run; lists are normalised', (t) => {
  t.deepEqual(runtimeArgs({ allowNetworks: 'front, back' }), ['--dockcni-allow-networks=front,back'], 'a space after a comma is not kept');
  for (const [options, message] of [
    [{ allowNetworks: 'front;touch /pwned' }, /invalid --allow-networks "front;touch \/pwned": dockerd puts runtime options into a shell script unquoted/],
    [{ confDir: '/etc/cni/my nets' }, /invalid --conf-dir "\/etc\/cni\/my nets": dockerd puts runtime options/],
    [{ podNamespace: '$(id)' }, /invalid --pod-namespace "\$\(id\)"/],
    [{ confDir: 'relative/dir' }, /invalid --conf-dir "relative\/dir": not an absolute path/],
    [{ cniPath: '/opt/cni/bin:bin' }, /not a list of absolute directories/],
    [{ allowNetworks: 'a..b' }, /"a\.\.b" is not a network name/],
    [{ allowArgs: 'FOO,B=R' }, /"B=R" is not a CNI_ARGS key/],
  ] as const) t.throws(() => runtimeArgs(options), { message }, JSON.stringify(options));
});

test('install refuses a runtime whose files someone other than root can change, naming the path', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'dockcni-trust-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const runc = path.join(dir, 'runc');
  await writeFile(runc, '#!/bin/sh\n', { mode: 0o755 });
  await chmod(dir, 0o777);
  const file = path.join(dir, 'daemon.json');
  await writeFile(file, '{}');
  await t.throwsAsync(installRuntime({ docker: new FakeDocker(), name: 'dockcni', daemonJson: file, runtime: { runc }, makeDefault: false, reload: false }),
    { message: new RegExp(`${dir} \\(on the way to ${runc}\\) is writable by everyone \\(mode 777\\)`) });
  await chmod(dir, 0o755);
  await chown(runc, 1000, 1000);
  const owned = await t.throwsAsync(installRuntime({ docker: new FakeDocker(), name: 'dockcni', daemonJson: file, runtime: { runc }, makeDefault: false, reload: false }));
  t.regex(owned?.message ?? '', new RegExp(`${runc} \\(on the way to ${runc}\\) is owned by uid 1000, not root`));
  t.regex((owned as DockcniError | undefined)?.fix ?? '', /chown root and chmod go-w/);
  t.is(await readFile(file, 'utf8'), '{}', 'daemon.json untouched');
  t.deepEqual(untrustedPathProblems(['/tmp']), [], 'a sticky root-owned directory (/tmp) is fine');
});

test('daemon.json keeps its mode and owner, a symlinked one is written through, and the backup never follows a link', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'dockcni-daemonjson-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const real = path.join(dir, 'real.json');
  await writeFile(real, '{"log-level":"warn"}', { mode: 0o600 });
  await chmod(real, 0o600);
  await chown(real, 0, 1234);
  const file = path.join(dir, 'daemon.json');
  await symlink(real, file);
  const victim = path.join(dir, 'victim');
  await writeFile(victim, 'precious\n');
  await symlink(victim, `${file}.dockcni-backup`);
  await installRuntime({ docker: new FakeDocker(), name: 'dockcni', daemonJson: file, runtime: {}, makeDefault: false, reload: false });
  t.true((await lstat(file)).isSymbolicLink(), 'the link stays a link');
  t.truthy(JSON.parse(await readFile(real, 'utf8')).runtimes.dockcni, 'written through to the file it names');
  const info = await stat(real);
  t.is(info.mode & 0o777, 0o600, 'mode kept');
  t.is(info.gid, 1234, 'group kept');
  t.is(await readFile(victim, 'utf8'), 'precious\n', 'the file a planted backup link named is untouched');
  t.false((await lstat(`${file}.dockcni-backup`)).isSymbolicLink());
  t.is(await readFile(`${file}.dockcni-backup`, 'utf8'), '{"log-level":"warn"}');
  t.is((await stat(`${file}.dockcni-backup`)).mode & 0o777, 0o600, 'the backup is no more readable than the file');
});

test('a stale pid file naming another process is not sent SIGHUP: the one dockerd is found instead, or none', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'dockcni-pid-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const pidFile = path.join(dir, 'docker.pid');
  await writeFile(pidFile, String(process.pid));
  let found: number | undefined;
  try {
    found = dockerdPid(pidFile);
  } catch (error) {
    t.regex((error as Error).message, /dockerd process/);
  }
  t.not(found, process.pid, 'never the process the stale file names');
});
