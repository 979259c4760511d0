import test from 'ava';
import { HealthLoop } from '../../../src/daemon/health-loop.js';
import type { Logger } from '../../../src/daemon/logger.js';
import type { Broken } from '../../../src/heal/healer.js';

const ID = 'b'.repeat(64);
const broken: Broken = { containerId: ID, name: 'web', network: 'front', ifName: 'eth0', missing: ['masquerade rules (nat)'] };

function setup(repair: () => Promise<boolean>, findings: () => Broken[] = () => [broken], clock = { t: 0 }) {
  const lines: { level: string; msg: string; fields: Record<string, unknown> }[] = [];
  const log: Logger = { log: (level, msg, fields = {}) => { lines.push({ level, msg, fields }); } };
  const results: boolean[] = [];
  const gaveUp: string[] = [];
  let attempts = 0;
  const loop = new HealthLoop({
    healer: { findBroken: async () => findings(), repair: async () => { attempts++; return repair(); } },
    log, metrics: { observeRepair: (ok) => { results.push(ok); } }, intervalMs: 0, retries: 1,
    enqueue: async (_id, task) => task(), giveUp: async (id) => { gaveUp.push(id); }, now: () => clock.t,
  });
  return { loop, lines, results, gaveUp, attempts: () => attempts };
}

test('a repair that keeps failing backs off (no attempt in the rounds right after), then the failure policy applies once', async (t) => {
  const s = setup(async () => { throw new Error('plugin "bridge" not found'); });
  await s.loop.round();
  t.is(s.attempts(), 1);
  t.like(s.lines.at(-1), { level: 'error', msg: 'repair failed', fields: { container: 'web', attempt: 1, retryInMs: 2000 } });
  for (let i = 0; i < 5; i++) await s.loop.round();
  t.is(s.attempts(), 1, 'rounds inside the backoff try nothing: no hot loop');
  t.deepEqual(s.gaveUp, [], 'not given up after one failure (retries 1)');
  t.deepEqual(s.results, [false]);
});

test('once the backoff has passed it tries again, waits longer, and after retries + 1 failures applies the policy', async (t) => {
  const clock = { t: 0 };
  const s = setup(async () => { throw new Error('plugin "bridge" not found'); }, undefined, clock);
  await s.loop.round();
  clock.t = 2000;
  await s.loop.round();
  t.is(s.attempts(), 2);
  t.like(s.lines.at(-1), { fields: { attempt: 2, retryInMs: 4000 } });
  t.deepEqual(s.gaveUp, [ID], '--on-failure after the second failure (retries 1)');
  clock.t = 5000;
  await s.loop.round();
  t.is(s.attempts(), 2, 'still backing off');
});

test('a repair that works is logged and counted once; a whole attachment is left alone', async (t) => {
  let whole = false;
  const s = setup(async () => true, () => (whole ? [] : [broken]));
  await s.loop.round();
  whole = true;
  await s.loop.round();
  t.is(s.attempts(), 1);
  t.deepEqual(s.results, [true]);
  t.like(s.lines.find((l) => l.msg === 'repaired'), { level: 'info', fields: { container: 'web', missing: 'masquerade rules (nat)' } });
});

test('two rounds asked at once are one round', async (t) => {
  const s = setup(async () => true);
  await Promise.all([s.loop.round(), s.loop.round()]);
  t.is(s.attempts(), 1);
});

test('an attachment its container keeps undoing (NET_ADMIN) is not repaired every round: it backs off, longer each time, and the log says why', async (t) => {
  const clock = { t: 0 };
  const undone: Broken = { ...broken, missing: ['address 10.1.0.5/24 on eth0'] };
  const s = setup(async () => true, () => [undone], clock);
  await s.loop.round();
  t.is(s.attempts(), 1, 'the first break is repaired');
  clock.t = 1000;
  await s.loop.round();
  t.is(s.attempts(), 1, 'broken again one round later: no repair');
  t.like(s.lines.at(-1), { level: 'warn', msg: 'broken again right after its repair: backing off', fields: { relapses: 1, retryInMs: 2000, why: 'the container changes its own network (it holds NET_ADMIN?)' } });
  clock.t = 2000;
  await s.loop.round();
  t.is(s.attempts(), 1, 'inside the backoff');
  clock.t = 3000;
  await s.loop.round();
  t.is(s.attempts(), 2, 'repaired once the backoff passed');
  clock.t = 4000;
  await s.loop.round();
  t.like(s.lines.at(-1), { fields: { relapses: 2, retryInMs: 4000 } });
  for (clock.t = 5000; clock.t < 8000; clock.t += 1000) await s.loop.round();
  t.is(s.attempts(), 2, 'the second backoff is longer');
  t.deepEqual(s.gaveUp, [], 'a relapse is not a failed repair: the container is not stopped');
});

test('a round someone asks for (SIGHUP) repairs what the backoff holds back: after a relapse and after a failed repair', async (t) => {
  const clock = { t: 0 };
  let fail = false;
  const s = setup(async () => { if (fail) throw new Error('plugin "bridge" not found'); return true; }, undefined, clock);
  await s.loop.round();
  clock.t = 1000;
  await s.loop.round();
  t.is(s.attempts(), 1, 'a relapse: backing off');
  await s.loop.round(true);
  t.is(s.attempts(), 2, 'asked for: repaired at once');
  fail = true;
  clock.t = 10_000;
  await s.loop.round();
  t.is(s.attempts(), 3);
  await s.loop.round();
  t.is(s.attempts(), 3, 'a failed repair backs off');
  await s.loop.round(true);
  t.is(s.attempts(), 4, 'asked for: tried again at once');
  t.deepEqual(s.gaveUp, [ID], 'and its failure counts towards --on-failure');
});
