/** Wiring and teardown take slots from separate pools: a teardown never waits for a stuck wiring's slot. */
export type Lane = 'add' | 'del';

/**
 * One container's operations run in order; different containers run side by side, at most `limit`
 * per lane at once. Errors belong to the task: `onError` gets them, the queue goes on.
 */
export class KeyedQueue {
  private readonly tails = new Map<string, Promise<void>>();
  private readonly lanes: Record<Lane, { running: number; waiting: (() => void)[] }> = { add: { running: 0, waiting: [] }, del: { running: 0, waiting: [] } };

  constructor(private readonly limit: number, private readonly onError: (key: string, error: unknown) => void) {}

  push(key: string, task: () => Promise<void>, lane: Lane = 'add'): Promise<void> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const next = previous.then(() => this.slot(key, task, this.lanes[lane]));
    this.tails.set(key, next);
    void next.then(() => {
      if (this.tails.get(key) === next) this.tails.delete(key);
    });
    return next;
  }

  /** Resolves once everything queued so far has finished. */
  async drain(): Promise<void> {
    while (this.tails.size > 0) await Promise.all([...this.tails.values()]);
  }

  get pending(): number {
    return this.tails.size;
  }

  private async slot(key: string, task: () => Promise<void>, lane: { running: number; waiting: (() => void)[] }): Promise<void> {
    if (lane.running >= this.limit) await new Promise<void>((resolve) => lane.waiting.push(resolve));
    lane.running++;
    try {
      await task();
    } catch (error) {
      this.onError(key, error);
    } finally {
      lane.running--;
      lane.waiting.shift()?.();
    }
  }
}
