import { hostTest } from '../helpers/host.js';
import { runChaos } from './chaos.js';

const test = hostTest();
// `npm run chaos` sets CHAOS_FULL=1: 1000 lifecycles and a dockerd restart. Inside `npm test`, a short run.
const full = process.env['CHAOS_FULL'] === '1';

test(`chaos (${full ? 'full' : 'short'}): no leak, no address held twice`, async (t) => {
  t.timeout(full ? 3 * 60 * 60_000 : 5 * 60_000);
  const report = await runChaos(t, {
    lifecycles: Number(process.env['CHAOS_LIFECYCLES'] ?? (full ? 1000 : 40)),
    concurrency: full ? 6 : 4,
    killEvery: full ? 100 : 40,
    restartDockerd: full || process.env['CHAOS_DOCKERD'] === '1',
    pluginFaults: true,
    log: (line) => { t.log(line); process.stdout.write(`${line}\n`); },
  });
  t.true(report.daemonKills >= Math.floor(report.operations / (full ? 100 : 40)) - 1, `daemon SIGKILLed ${report.daemonKills} times`);
  // Each planned fault fired and was lived through, and lifecycles were wired at all.
  // Most lifecycles stop their container within a few hundred ms, often before a wiring; some must get one.
  t.true(report.wiredContainers >= report.lifecycles / 10, `only ${report.wiredContainers} containers wired in ${report.lifecycles} lifecycles`);
  t.true(report.pluginFailuresSeen > 0, 'the failing-plugin stretch met a wiring');
  t.true(report.pluginTimeoutsSeen > 0, 'the hanging-plugin stretch met a wiring');
  t.deepEqual(report.violations, []);
  t.deepEqual(report.duplicateSightings, []);
});
