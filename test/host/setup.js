#!/usr/bin/env node
// Makes this machine a dockcni test host: installs what is missing, starts dockerd when nothing answers
// on its socket, builds the local test images. Idempotent. Writes what it started to a state file so
// teardown stops only that. Plain JS: it must run before anything is built.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, copyFileSync, writeFileSync, rmSync, openSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const BUSYBOX_IMAGE = 'dockcni-test-busybox:latest';
export const PAUSE_IMAGE = 'dockcni-test-pause:latest';
export const STATE_FILE = path.join(tmpdir(), 'dockcni-test-host.json');
/** The reference runtime, built from libcni 1.1.2 by the workplace's shared tool (beside the repository). */
export const CNITOOL = path.join(tmpdir(), 'dockcni-test-cnitool', 'cnitool');
const CNITOOL_BUILD = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../shared/tools/cnitool/build.sh');
const PACKAGES = { docker: 'docker.io', dockerd: 'docker.io', iptables: 'iptables', ip: 'iproute2', tc: 'iproute2', busybox: 'busybox-static', nsenter: 'util-linux', mount: 'mount', dnsmasq: 'dnsmasq-base', 'docker-compose': 'docker-compose', promtool: 'prometheus', 'systemd-analyze': 'systemd', etcd: 'etcd-server', etcdctl: 'etcd-client' };
const PLUGIN_DIRS = ['/opt/cni/bin', '/usr/libexec/cni', '/usr/lib/cni'];

const say = (msg) => process.stderr.write(`test-host: ${msg}\n`);
const has = (cmd) => { try { execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }); return true; } catch { return false; } };
const run = (file, args, opts = {}) => execFileSync(file, args, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', ...opts });

function missingPackages() {
  const missing = new Set(Object.entries(PACKAGES).filter(([cmd]) => !has(cmd)).map(([, pkg]) => pkg));
  if (!PLUGIN_DIRS.some((d) => existsSync(path.join(d, 'bridge')))) missing.add('containernetworking-plugins');
  if (!existsSync('/bin/busybox') && !existsSync('/usr/bin/busybox')) missing.add('busybox-static');
  return [...missing];
}

function dockerAnswers() {
  try { run('docker', ['version', '--format', '{{.Server.Version}}'], { timeout: 10_000 }); return true; } catch { return false; }
}

async function startDockerd() {
  const log = openSync('/var/log/dockcni-test-dockerd.log', 'a');
  const child = spawn('dockerd', [], { detached: true, stdio: ['ignore', log, log] });
  child.unref();
  for (let i = 0; i < 60; i++) {
    if (dockerAnswers()) return child.pid;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error('dockerd did not answer within 30 s; see /var/log/dockcni-test-dockerd.log');
}

function imageExists(ref) {
  try { run('docker', ['image', 'inspect', ref]); return true; } catch { return false; }
}

function buildImage(ref, dockerfile) {
  const ctx = mkdtempSync(path.join(tmpdir(), 'dockcni-img-'));
  try {
    copyFileSync(existsSync('/bin/busybox') ? '/bin/busybox' : '/usr/bin/busybox', path.join(ctx, 'busybox'));
    writeFileSync(path.join(ctx, 'Dockerfile'), dockerfile);
    run('docker', ['build', '-q', '-t', ref, ctx], { env: { ...process.env, DOCKER_BUILDKIT: '0' } });
  } finally {
    rmSync(ctx, { recursive: true, force: true });
  }
}

const BUSYBOX_DOCKERFILE = 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox","--install","-s","/bin"]\nCMD ["/bin/sh"]\n';
// A stand-in for the Kubernetes pause image (which cannot be pulled here): sleeps, exits on TERM/INT.
const PAUSE_DOCKERFILE = `FROM ${BUSYBOX_IMAGE}\nENTRYPOINT ["/bin/sh","-c","trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done"]\n`;

/**
 * dockcni before 0.2 added one host-wide port-mapping accept rule and never removed it. Left in place,
 * it would let every "reached from another host" test pass even if dockcni stopped adding its own.
 */
function removeLegacyRule() {
  const rule = ['CNI-ADMIN', '-m', 'conntrack', '--ctstate', 'DNAT', '-m', 'comment', '--comment', 'dockcni: accept port-mapped traffic', '-j', 'ACCEPT'];
  for (const tool of ['iptables', 'ip6tables']) {
    try {
      run(tool, ['-w', '-C', ...rule]);
    } catch {
      continue; // not there: nothing to remove
    }
    say(`removing the host-wide port-mapping rule of an older dockcni (${tool})`);
    run(tool, ['-w', '-D', ...rule]);
  }
}

export async function setup() {
  const problems = [];
  if (process.getuid?.() !== 0) problems.push('not root: dockcni tests create netns, bridges and iptables rules');
  let missing = missingPackages();
  if (missing.length > 0 && problems.length === 0) {
    if (!has('apt-get')) problems.push(`missing packages ${missing.join(', ')} and no apt-get to install them`);
    else {
      say(`installing ${missing.join(' ')}`);
      run('apt-get', ['update'], { stdio: 'inherit' });
      run('apt-get', ['install', '-y', '--no-install-recommends', ...missing], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
      missing = missingPackages();
    }
  }
  if (missing.length > 0) problems.push(`still missing: ${missing.join(', ')}`);
  if (problems.length > 0) return { ready: false, problems };
  const state = existsSync(STATE_FILE) ? JSON.parse(readFileSync(STATE_FILE, 'utf8')) : {};
  if (!dockerAnswers()) {
    say('starting dockerd');
    state.dockerdPid = await startDockerd();
  }
  if (!imageExists(BUSYBOX_IMAGE)) { say(`building ${BUSYBOX_IMAGE}`); buildImage(BUSYBOX_IMAGE, BUSYBOX_DOCKERFILE); }
  if (!imageExists(PAUSE_IMAGE)) { say(`building ${PAUSE_IMAGE}`); buildImage(PAUSE_IMAGE, PAUSE_DOCKERFILE); }
  removeLegacyRule();
  if (!existsSync(CNITOOL) && existsSync(CNITOOL_BUILD)) {
    say('building cnitool against the reference libcni (1.1.2)');
    run('bash', [CNITOOL_BUILD, path.dirname(CNITOOL)], { stdio: ['ignore', 'ignore', 'inherit'] });
  }
  writeFileSync(STATE_FILE, JSON.stringify(state));
  return { ready: true, problems: [] };
}

/** Stops what setup started (dockerd), nothing else. */
export function teardown() {
  if (!existsSync(STATE_FILE)) return;
  const state = JSON.parse(readFileSync(STATE_FILE, 'utf8'));
  if (state.dockerdPid) {
    try { process.kill(state.dockerdPid, 'SIGTERM'); say(`stopped dockerd (pid ${state.dockerdPid}) that setup started`); } catch { /* already gone */ }
  }
  rmSync(STATE_FILE, { force: true });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const result = await setup();
  if (!result.ready) {
    for (const p of result.problems) say(p);
    process.exitCode = 1;
  } else say('ready');
}
