#!/usr/bin/env node
// The test command: prepares the host, runs ava, stops what it started, and ends with one plain line
// "N passed, N failed, N skipped". Under CI=true a host that cannot be prepared fails the run.
import { execFileSync, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { setup, teardown } from './setup.js';

const host = await setup();
if (!host.ready) {
  for (const p of host.problems) process.stderr.write(`test-host: ${p}\n`);
  if (process.env.CI === 'true') {
    process.stderr.write('test-host: CI=true and this machine cannot host the integration tests: failing\n');
    process.stdout.write('0 passed, 1 failed, 0 skipped\n');
    process.exit(1);
  }
  process.stderr.write('test-host: integration tests will be SKIPPED (DOCKCNI_HOST=unavailable); unit tests still run\n');
}

/** What tests could leave on the host; compared before and after the run. */
function hostState() {
  const out = (file, args) => { try { return execFileSync(file, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }); } catch { return ''; } };
  const lines = (text, re) => text.split('\n').filter((l) => re.test(l)).map((l) => l.trim());
  const dir = (d) => { try { return readdirSync(d).map((f) => `${d}/${f}`); } catch { return []; } };
  return [
    ...lines(out('docker', ['ps', '-aq']), /./).map((l) => `container ${l}`),
    ...lines(out('ip', ['netns', 'list']), /./).map((l) => `netns ${l}`),
    ...lines(out('iptables-save', []), /^:CNI-(DN-|SN-)?[0-9a-f]{20,}/).map((l) => `iptables chain ${l.split(' ')[0]}`),
    ...lines(out('ip', ['-o', 'link']), /veth|dcbr|dockcni0|dc-/).map((l) => `link ${l.split(':')[1]?.trim().split('@')[0]}`),
    // dockerd's own pins (/run/docker/netns/default, made on its first bridged container) are Docker's state.
    ...lines(readFileSync('/proc/mounts', 'utf8'), /^nsfs /).map((l) => l.split(' ')[1] ?? '').filter((p) => !/^\/(var\/)?run\/docker\//.test(p)).map((p) => `netns pin ${p}`),
    ...lines(out('iptables', ['-w', '-S', 'CNI-ADMIN']), /dockcni/).map((l) => `iptables rule ${l}`),
    // dockerd's own settings a test changed and did not change back.
    ...lines(out('docker', ['info', '--format', 'live-restore {{.LiveRestoreEnabled}}']), /./).map((l) => `dockerd ${l}`),
    // A runtime a test registered and did not remove.
    ...lines((() => { try { return readFileSync('/etc/docker/daemon.json', 'utf8'); } catch { return ''; } })(), /dockcni-runtime/).map((l) => `daemon.json runtime ${l}`),
    ...dir('/var/lib/cni/results').map((f) => `cache ${f}`),
    ...dir('/var/lib/dockcni/attachments').map((f) => `record ${f}`),
    ...dir('/var/lib/cni/networks/dockcni').filter((f) => /\/[0-9a-f.:]+$/.test(f)).map((f) => `reservation ${f}`),
  ];
}
const before = host.ready ? new Set(hostState()) : new Set();

const child = spawn('npx', ['ava', '--verbose', ...process.argv.slice(2)], {
  stdio: ['ignore', 'pipe', 'pipe'],
  env: { ...process.env, DOCKCNI_HOST: host.ready ? 'ready' : 'unavailable' },
});
let text = '';
child.stdout.on('data', (d) => { text += d; process.stdout.write(d); });
child.stderr.on('data', (d) => { text += d; process.stderr.write(d); });
const code = await new Promise((resolve) => child.on('close', (c) => resolve(c ?? 1)));
if (process.env.DOCKCNI_KEEP_DOCKERD !== '1') teardown();

// ava's summary omits the passed count when something fails, so count its per-test lines.
const lines = (re) => text.split('\n').filter((l) => re.test(l)).length;
const count = (re) => Number(text.match(re)?.[1] ?? 0);
const passed = lines(/^\s+✔ /);
let failed = lines(/^\s+✘ /) + count(/(\d+) uncaught exceptions?/) + count(/(\d+) unhandled rejections?/);
const skipped = lines(/^\s+- \[(skip|todo)\]/);
const leaked = host.ready ? hostState().filter((item) => !before.has(item)) : [];
if (leaked.length > 0) {
  process.stdout.write(`\nthe tests left ${leaked.length} thing(s) on this host:\n${leaked.map((l) => `  ${l}`).join('\n')}\n`);
  failed += 1;
}
if ((code !== 0 || leaked.length > 0) && failed === 0) failed = 1;
process.stdout.write(`\n${passed} passed, ${failed} failed, ${skipped} skipped\n`);
process.exit(code !== 0 ? code : leaked.length > 0 ? 1 : 0);
