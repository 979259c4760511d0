import { mkdir, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import test, { type ExecutionContext, type TestFn } from 'ava';
import { execa } from 'execa';
import { BIN } from './fixtures.js';
import { sh, uid } from './shell.js';

/**
 * Integration tests run only on a prepared host (test/host/run-tests.js sets DOCKCNI_HOST=ready). Under
 * CI a host that is not ready makes them fail rather than skip.
 */
export const hostReady = process.env['DOCKCNI_HOST'] === 'ready' || (process.getuid?.() === 0 && process.env['DOCKCNI_HOST'] === undefined);

export function hostTest(): TestFn {
  if (hostReady) return test.serial as unknown as TestFn;
  if (process.env['CI'] === 'true') {
    return ((title: string) => test(title, (t) => t.fail('the test host is not ready (see test-host lines above) and CI=true'))) as unknown as TestFn;
  }
  return test.skip as unknown as TestFn;
}

export { BUSYBOX_IMAGE, PAUSE_IMAGE, PLUGIN_DIR, sh, uid } from './shell.js';

export async function dockcni(args: readonly string[], options: { reject?: boolean; env?: Record<string, string>; timeout?: number } = {}) {
  return execa('node', [BIN, ...args], { reject: options.reject ?? true, env: options.env ?? {}, timeout: options.timeout ?? 60_000 });
}

/** A netns removed when the test ends. */
export async function netns(t: ExecutionContext, name = uid('dct')): Promise<string> {
  await sh('ip', ['netns', 'add', name]);
  t.teardown(async () => { await sh('ip', ['netns', 'del', name], { reject: false }); });
  return name;
}

export interface TestNetwork {
  readonly name: string;
  readonly bridge: string;
  readonly subnet: string;
  readonly gateway: string;
  readonly ipamDir: string;
}

/**
 * A bridge network of the test's own (own bridge, own /24, own host-local dataDir) written into confDir;
 * its bridge is deleted when the test ends. `firewall` is in the chain because of Docker's FORWARD DROP.
 */
export async function bridgeNetwork(t: ExecutionContext, confDir: string, workDir: string, octet: number,
  extraPlugins: unknown[] = [{ type: 'portmap', capabilities: { portMappings: true }, snat: true }], defaultRoute = false): Promise<TestNetwork> {
  const name = uid('tn');
  const bridge = uid('dcbr');
  const subnet = `10.231.${octet}.0/24`;
  const gateway = `10.231.${octet}.1`;
  const ipamDir = path.join(workDir, `ipam-${name}`);
  await mkdir(confDir, { recursive: true });
  await writeFile(path.join(confDir, `50-${name}.conflist`), JSON.stringify({
    cniVersion: '1.0.0', name,
    plugins: [
      { type: 'bridge', bridge, isGateway: true, ipMasq: true, hairpinMode: true, capabilities: { ips: true, mac: true },
        ipam: { type: 'host-local', dataDir: ipamDir, ranges: [[{ subnet, gateway }]], ...(defaultRoute ? { routes: [{ dst: '0.0.0.0/0' }] } : {}) } },
      { type: 'firewall', backend: 'iptables' },
      ...extraPlugins,
    ],
  }));
  t.teardown(async () => { await sh('ip', ['link', 'del', bridge], { reject: false }); });
  return { name, bridge, subnet, gateway, ipamDir };
}

/** Addresses host-local still holds for a network (reservation files, not its bookkeeping). */
export async function reservations(net: TestNetwork): Promise<string[]> {
  const names = await readdir(path.join(net.ipamDir, net.name)).catch(() => [] as string[]);
  return names.filter((n) => n !== 'lock' && !n.startsWith('last_reserved_ip'));
}

/** iptables rules that mention the id (bridge ipMasq and portmap chains carry it in a comment). */
export async function rulesMentioning(id: string): Promise<string[]> {
  const out = await sh('iptables-save', []);
  return out.stdout.split('\n').filter((l) => l.includes(id));
}

export async function hostVethsOn(bridge: string): Promise<string[]> {
  const out = await sh('ip', ['-o', 'link', 'show', 'master', bridge], { reject: false });
  return out.stdout.split('\n').filter(Boolean);
}

export async function ping(address: string, fromNetns?: string): Promise<boolean> {
  const args = ['busybox', 'ping', '-c', '1', '-W', '2', address];
  const result = fromNetns ? await sh('ip', ['netns', 'exec', fromNetns, ...args], { reject: false }) : await sh(args[0]!, args.slice(1), { reject: false });
  return result.exitCode === 0;
}

/**
 * Restarts the dockerd that serves the tests, however it was started; a pid recorded by the test-host
 * script is updated so its teardown stops the new one.
 */
export async function restartDockerd(): Promise<void> {
  const { readFile, writeFile, open } = await import('node:fs/promises');
  const { spawn } = await import('node:child_process');
  const { tmpdir } = await import('node:os');
  // The dockerd of /var/run/docker.sock, by its pid file (verified to be dockerd): never another one
  // a test started in a namespace of its own.
  const { dockerdPid } = await import('../../src/runtime/install.js');
  const pid = dockerdPid();
  process.kill(pid, 'SIGTERM');
  for (let i = 0; i < 300 && (await sh('kill', ['-0', String(pid)], { reject: false })).exitCode === 0; i++) await new Promise((r) => setTimeout(r, 100));
  const log = await open('/var/log/dockcni-test-dockerd.log', 'a');
  const child = spawn('dockerd', [], { detached: true, stdio: ['ignore', log.fd, log.fd] });
  child.unref();
  await log.close();
  for (let i = 0; i < 100 && (await sh('docker', ['version'], { reject: false })).exitCode !== 0; i++) await new Promise((r) => setTimeout(r, 300));
  const stateFile = path.join(tmpdir(), 'dockcni-test-host.json');
  const state = JSON.parse(await readFile(stateFile, 'utf8').catch(() => '{}')) as { dockerdPid?: number };
  if (state.dockerdPid !== undefined) await writeFile(stateFile, JSON.stringify({ ...state, dockerdPid: child.pid }));
}
