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
