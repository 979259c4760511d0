import test from 'ava';
import { KeyedQueue } from '../../../src/daemon/keyed-queue.js';

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('one key runs in order; keys run side by side up to the limit; errors do not stop the queue', async (t) => {
  const log: string[] = [];
  const errors: string[] = [];
  const queue = new KeyedQueue(2, (key, error) => errors.push(`${key}:${(error as Error).message}`));
  let running = 0;
  let peak = 0;
  const task = (name: string, ms: number, fail = false) => async () => {
    running++;
    peak = Math.max(peak, running);
    log.push(`start ${name}`);
    await tick(ms);
    log.push(`end ${name}`);
    running--;
    if (fail) throw new Error('boom');
  };
  void queue.push('a', task('a1', 30, true));
  void queue.push('a', task('a2', 5));
  void queue.push('b', task('b1', 10));
  void queue.push('c', task('c1', 10));
  await queue.drain();
  t.true(log.indexOf('start a2') > log.indexOf('end a1'));
  t.is(peak, 2);
  t.deepEqual(errors, ['a:boom']);
  t.is(queue.pending, 0);
});

test('teardowns have their own slots: a DEL never waits behind stuck ADDs of other containers', async (t) => {
  const q = new KeyedQueue(1, () => undefined);
  let unstick!: () => void;
  const stuck = q.push('a', () => new Promise<void>((resolve) => { unstick = resolve; }));
  const blocked: string[] = [];
  void q.push('b', async () => { blocked.push('add b'); });
  await q.push('c', async () => { blocked.push('del c'); }, 'del');
  t.deepEqual(blocked, ['del c'], 'the DEL ran while the only ADD slot was held; the second ADD still waits');
  unstick();
  await stuck;
  await q.drain();
  t.deepEqual(blocked, ['del c', 'add b']);
});
