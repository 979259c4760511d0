import type { Locks } from '../cni/lock.js';

/** One container handled by one caller at a time, across processes (daemon, runtime, run, attach, gc). */
export async function underContainerLock<T>(locks: Pick<Locks, 'mutex'>, containerId: string, fn: () => Promise<T>): Promise<T> {
  const release = await locks.mutex(`ctr-${containerId}`);
  try {
    return await fn();
  } finally {
    await release();
  }
}
