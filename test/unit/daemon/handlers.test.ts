import test from 'ava';
import { ContainerHandlers, type FailurePolicy } from '../../../src/daemon/handlers.js';
import { Metrics } from '../../../src/daemon/metrics.js';
import { FakeDocker } from '../../helpers/fake-docker.js';
import { daemonOn, FakeWirer, MemoryLog } from '../../helpers/fake-wirer.js';

const ID = 'a'.repeat(64);
const SANDBOX = 'b'.repeat(64);

function handlers(docker: FakeDocker, wirer: FakeWirer, policy: FailurePolicy = 'stop', retries = 2) {
  const log = new MemoryLog();
  const metrics = new Metrics();
  return { log, metrics, h: new ContainerHandlers({ docker, wirer, sandboxes: wirer, log, metrics, labels: {}, onFailure: policy, retries, retryDelayMs: 1 }) };
}

test('a container gone between the event and the inspect is skipped quietly', async (t) => {
  const docker = new FakeDocker();
  const wirer = new FakeWirer();
  const { h, log } = handlers(docker, wirer);
  await h.started(ID);
  t.deepEqual(wirer.wired, []);
  t.deepEqual(log.lines.map((l) => l.level), ['debug'], 'a debug line only: its die event does the rest');
});

test('a container with PID 0 (not running) is not wired', async (t) => {
  const docker = new FakeDocker();
  docker.add(ID, { 'dockcni.networks': 'front' }, { running: false, pid: 0 });
  const wirer = new FakeWirer();
  await handlers(docker, wirer).h.started(ID);
  t.deepEqual(wirer.wired, []);
});

test('bad labels: the policy applies at once, nothing is wired, the log names the label', async (t) => {
  const docker = new FakeDocker();
  docker.add(ID, { 'dockcni.networks': 'front', 'dockcni.ports': '70000:80' });
  const wirer = new FakeWirer();
  const { h, log } = handlers(docker, wirer, 'kill');
  await h.started(ID);
  t.deepEqual(wirer.wired, []);
  t.deepEqual(docker.calls, [`kill ${ID}`]);
  t.regex(log.text(), /bad dockcni labels .*dockcni\.ports.*port 70000 is outside 1-65535/);
});

test('CNI code 11: retried with backoff until it works; metrics count the failures', async (t) => {
  const docker = new FakeDocker();
  docker.add(ID, { 'dockcni.networks': 'front' });
  const wirer = new FakeWirer(2);
  const { h, log, metrics } = handlers(docker, wirer);
  await h.started(ID);
  t.is(wirer.wired.length, 3);
  t.deepEqual(docker.calls, []);
  t.regex(log.text(), /wiring failed .*"attempt":1,"plugin":"bridge","cniCode":11/);
  t.regex(metrics.render(), /dockcni_operations_total\{operation="add",result="error"\} 2/);
  t.regex(metrics.render(), /dockcni_operations_total\{operation="add",result="ok"\} 1/);
});

test('failing for good: the failure policy stops the container after the retries', async (t) => {
  const docker = new FakeDocker();
  docker.add(ID, { 'dockcni.networks': 'front' });
  const wirer = new FakeWirer(99);
  const { h, log } = handlers(docker, wirer, 'stop', 2);
  await h.started(ID);
  t.is(wirer.wired.length, 3);
  t.deepEqual(docker.calls, [`stop ${ID}`]);
  t.regex(log.text(), /stopping container without its CNI networking/);
});

test('a container restarted in the middle of its ADD: the old attempt neither retries nor applies the policy', async (t) => {
  const docker = new FakeDocker();
  const info = docker.add(ID, { 'dockcni.networks': 'front' });
  const wirer = new FakeWirer(99, new Error('netns vanished'), () => { docker.add(ID, info.labels, { pid: info.pid + 1 }); });
  await handlers(docker, wirer).h.started(ID, info);
  t.is(wirer.wired.length, 1);
  t.deepEqual(docker.calls, []);
});

test('a run app takes its sandbox with it; a label naming any other container touches nothing', async (t) => {
  const docker = new FakeDocker();
  const VICTIM = 'd'.repeat(64);
  const INTRUDER = 'e'.repeat(64);
  docker.add(SANDBOX, { 'dockcni.role': 'sandbox' });
  docker.add(VICTIM, {});
  const wirer = new FakeWirer();
  wirer.sandboxes.set(SANDBOX, ID);
  const { h, log } = handlers(docker, wirer);
  // Forged: a container naming an unrelated container, and one naming a real sandbox that is not its own.
  await h.stopped(INTRUDER, { 'dockcni.role': 'app', 'dockcni.sandbox': VICTIM });
  await h.stopped(INTRUDER, { 'dockcni.role': 'app', 'dockcni.sandbox': SANDBOX });
  await h.stopped(INTRUDER, { 'dockcni.role': 'app', 'dockcni.sandbox': '../../etc' });
  t.deepEqual(wirer.unwired, [INTRUDER, INTRUDER, INTRUDER]);
  t.deepEqual(docker.calls, []);
  t.deepEqual(log.lines.filter((l) => l.message.startsWith('left alone')).map((l) => l.fields['named']), [VICTIM, SANDBOX, '../../etc'], 'each forgery said');
  // The app run recorded: its sandbox goes, whatever its own labels say.
  await h.stopped(ID, { 'dockcni.sandbox': SANDBOX });
  t.deepEqual(wirer.unwired.slice(3), [ID, SANDBOX]);
  t.deepEqual(docker.calls, [`remove ${SANDBOX}`]);
});

test('only failures that may pass are retried: a network mode other than none is refused at once', async (t) => {
  const docker = new FakeDocker();
  docker.add(ID, { 'dockcni.networks': 'front' }, { networkMode: 'default' });
  const { NetworkModeError } = await import('../../../src/wiring/wire-errors.js');
  const wirer = new FakeWirer(9, new NetworkModeError('web', 'default'));
  const { h, log } = handlers(docker, wirer, 'stop', 2);
  await h.started(ID);
  t.is(wirer.wired.length, 1, 'no retry');
  t.deepEqual(docker.calls, [`stop ${ID}`]);
  t.regex(log.text(), /network mode \\"default\\", not \\"none\\".*"fix":"start it with --network none/);
});

test('Docker unreachable: the daemon retries, connects, reconciles, follows events, and stops cleanly', async (t) => {
  const docker = new FakeDocker();
  docker.pingFailures = 2;
  const wirer = new FakeWirer();
  let reconciles = 0;
  const { daemon, running, log, metrics, until } = daemonOn(docker, wirer, async () => { reconciles++; });
  await until(() => reconciles > 0);
  t.regex(log.text(), /Docker unavailable; retrying .*ENOENT/);
  t.true(metrics.healthy);
  docker.add(ID, { 'dockcni.networks': 'front' });
  docker.send({ id: ID, action: 'start', labels: { 'dockcni.networks': 'front' } });
  await until(() => wirer.wired.length > 0);
  t.is(wirer.wired[0]?.target.containerId, ID);
  docker.send({ id: ID, action: 'die', labels: {} });
  await until(() => wirer.unwired.length > 0);
  t.deepEqual(wirer.unwired, [ID]);
  await daemon.stop();
  await running;
  t.false(metrics.healthy);
});

test('a reconcile that fails is retried on its own: one subscription, each event handled once, a bad event line skipped', async (t) => {
  const docker = new FakeDocker();
  docker.malformedLines = ['{not json'];
  const wirer = new FakeWirer();
  let attempts = 0;
  let reconciled = false;
  const { daemon, running, log, until } = daemonOn(docker, wirer, async () => {
    if (++attempts <= 2) throw new Error('/var/lib/cni/results/x: not a cniCacheV1 entry');
    reconciled = true;
  });
  await until(() => reconciled);
  t.true(reconciled);
  t.regex(log.text(), /error reconcile failed; retrying .*not a cniCacheV1 entry/);
  t.notRegex(log.text(), /Docker unavailable/);
  t.regex(log.text(), /warn skipped an event Docker sent that is not JSON .*\{not json/);
  t.is(docker.subscriptions, 1);
  t.is(docker.liveSubscriptions, 1);
  docker.add(ID, { 'dockcni.networks': 'front' });
  docker.send({ id: ID, action: 'start', labels: { 'dockcni.networks': 'front' } });
  await until(() => wirer.wired.length > 0);
  await new Promise((r) => setTimeout(r, 100));
  t.is(wirer.wired.length, 1, 'wired once');
  const last = BigInt(Date.now() + 60_000) * 1_000_000n + 789n;
  docker.send({ id: 'f'.repeat(64), action: 'destroy', labels: {} }, last);
  docker.drop();
  await until(() => docker.subscriptions === 2);
  t.is(docker.liveSubscriptions, 1, 'the old stream closed before the new one opened');
  t.deepEqual(docker.sinces, [undefined, last], 'the new stream resumes from the last event seen');
  await daemon.stop();
  await running;
  t.is(docker.liveSubscriptions, 0);
});

test('shutdown: a wiring waiting to be retried is given up at once, without the failure policy', async (t) => {
  const docker = new FakeDocker();
  docker.add(ID, { 'dockcni.networks': 'front' });
  const wirer = new FakeWirer(9);
  const log = new MemoryLog();
  const controller = new AbortController();
  const h = new ContainerHandlers({ docker, wirer, sandboxes: wirer, log, metrics: new Metrics(), labels: {}, onFailure: 'stop', retries: 5, retryDelayMs: 60_000, signal: controller.signal });
  const started = Date.now();
  setTimeout(() => controller.abort(), 100);
  await h.started(ID);
  t.true(Date.now() - started < 2000);
  t.is(wirer.wired.length, 1);
  t.deepEqual(docker.calls, [], 'no policy applied on the way out');
  t.regex(log.text(), /shutting down: wiring not retried/);
});

test('retries back off, doubling from --retry delay', async (t) => {
  const docker = new FakeDocker();
  docker.add(ID, { 'dockcni.networks': 'front' });
  const at: number[] = [];
  const wirer = new FakeWirer(3, undefined, () => at.push(performance.now()));
  const h = new ContainerHandlers({ docker, wirer, sandboxes: wirer, log: new MemoryLog(), metrics: new Metrics(), labels: {}, onFailure: 'stop', retries: 3, retryDelayMs: 40 });
  await h.started(ID);
  const gaps = at.slice(1).map((x, i) => x - (at[i] ?? 0));
  t.is(gaps.length, 3);
  // Timers fire on whole milliseconds: a gap may measure a fraction under its delay, never half of it.
  t.true(gaps.every((g, i) => g >= 40 * 2 ** i - 2), `gaps ${gaps.map((g) => g.toFixed(1)).join(', ')} ms: each about double the one before`);
});
