#!/usr/bin/env node
// The test command: prepares the host, runs ava, stops what it started, and ends with one plain line
// "N passed, N failed, N skipped". Under CI=true a host that cannot be prepared fails the run.
import { spawn } from 'node:child_process';
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

// What tests could leave on the host (test/helpers/host-state.ts, built by `npm test` first), read
// before the run and again after it, before teardown stops the dockerd setup started. A snapshot that
// cannot be taken fails the run.
const { hostState, added } = host.ready ? await import('../../dist/test/helpers/host-state.js') : { hostState: () => [], added: () => [] };
const before = hostState();

const child = spawn('npx', ['ava', '--verbose', ...process.argv.slice(2)], {
  stdio: ['ignore', 'pipe', 'pipe'],
  env: { ...process.env, DOCKCNI_HOST: host.ready ? 'ready' : 'unavailable' },
});
let text = '';
child.stdout.on('data', (d) => { text += d; process.stdout.write(d); });
child.stderr.on('data', (d) => { text += d; process.stderr.write(d); });
const code = await new Promise((resolve) => child.on('close', (c) => resolve(c ?? 1)));
let leaked;
try {
  leaked = added(before, hostState());
} catch (error) {
  leaked = [`(the snapshot after the run failed: ${error.message})`];
}
if (process.env.DOCKCNI_KEEP_DOCKERD !== '1') teardown();

// ava's summary omits the passed count when something fails, so count its per-test lines.
const lines = (re) => text.split('\n').filter((l) => re.test(l)).length;
const count = (re) => Number(text.match(re)?.[1] ?? 0);
const passed = lines(/^\s+✔ /);
let failed = lines(/^\s+✘ /) + count(/(\d+) uncaught exceptions?/) + count(/(\d+) unhandled rejections?/);
const skippedTitles = text.split('\n').filter((l) => /^\s+- \[(skip|todo)\]/.test(l)).map((l) => l.trim());
const skipped = skippedTitles.length;
// Under CI every test must run: a skip there is a test that did not see what it claims.
if (process.env.CI === 'true' && skipped > 0) {
  process.stdout.write(`\nCI=true and ${skipped} test(s) were skipped:\n${skippedTitles.map((l) => `  ${l}`).join('\n')}\n`);
  failed += skipped;
}
if (leaked.length > 0) {
  process.stdout.write(`\nthe tests left ${leaked.length} thing(s) on this host:\n${leaked.map((l) => `  ${l}`).join('\n')}\n`);
  failed += 1;
}
if ((code !== 0 || leaked.length > 0) && failed === 0) failed = 1;
if (skipped > 0) process.stdout.write(`\nskipped: ${skippedTitles.join('; ')}\n`);
process.stdout.write(`\n${passed} passed, ${failed} failed, ${skipped} skipped\n`);
process.exit(code !== 0 ? code : failed > 0 ? 1 : 0);
