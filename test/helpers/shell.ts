import { randomBytes } from 'node:crypto';
import { execa } from 'execa';

/**
 * Processes, names and waiting, for tests and the bench alike: nothing here loads ava, so the bench
 * and the cluster harness (test/helpers/cluster.ts) use it outside a test run.
 */
export const BUSYBOX_IMAGE = 'dockcni-test-busybox:latest';
export const PAUSE_IMAGE = 'dockcni-test-pause:latest';
export const PLUGIN_DIR = '/usr/lib/cni';

export const uid = (prefix: string) => `${prefix}${randomBytes(3).toString('hex')}`;

export async function sh(file: string, args: readonly string[], options: { reject?: boolean; input?: string; timeout?: number } = {}) {
  return execa(file, args, { reject: options.reject ?? true, timeout: options.timeout ?? 60_000, ...(options.input === undefined ? {} : { input: options.input }) });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls until fn returns a truthy value; fails with `what` after timeoutMs. */
export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}
