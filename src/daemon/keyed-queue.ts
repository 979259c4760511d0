/**
 * One container's operations run in order; different containers run side by side, at most `limit`
 * at once. Errors belong to the task: `onError` gets them, the queue goes on.
 */
export class KeyedQueue {
  private readonly tails = new Map<string, Promise<void>>();
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly limit: number, private readonly onError: (key: string, error: unknown) => void) {}

  push(key: string, task: () => Promise<void>): Promise<void> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const next = previous.then(() => this.slot(key, task));
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

  private async slot(key: string, task: () => Promise<void>): Promise<void> {
    if (this.running >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.running++;
    try {
      await task();
    } catch (error) {
      this.onError(key, error);
    } finally {
      this.running--;
      this.waiting.shift()?.();
    }
  }
}
