import { closeSync, mkdirSync, openSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs';
import path from 'node:path';
import { abortableSleep, abortedError, DockcniError } from '../errors.js';
import { readdirOrEmptySync, readTextIfExistsSync, removeIfExistsSync } from '../fs-atomic.js';

export type Release = () => Promise<void>;

/**
 * The engine's cross-process locks (the CLI, `run`, `gc` and the daemon may run at once): one operation
 * per (network, container, ifname), and GC alone on its network (SPEC.md, "Lifecycle").
 */
export interface Locks {
  /** Exclusive on the attachment, shared on its network. */
  attachment(network: string, containerId: string, ifName: string): Promise<Release>;
  /** Exclusive on the network: waits for every attachment operation on it to finish, holds new ones off. */
  network(network: string): Promise<Release>;
  /** A plain named mutex, e.g. one container's wiring. */
  mutex(name: string): Promise<Release>;
}


/** pid plus its start time: a recycled pid is not mistaken for the owner that died. */
function processIdentity(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return `${pid} ${fields[19]}`;
  } catch {
    return undefined;
  }
}

function ownerAlive(owner: string): boolean {
  const pid = Number(owner.split(' ')[0]);
  return Number.isInteger(pid) && pid > 0 && processIdentity(pid) === owner;
}

/** The live pid holding a lock file, or undefined when it is free or its holder is dead. */
export function lockHolder(file: string): number | undefined {
  const owner = readTextIfExistsSync(file) ?? '';
  return owner !== '' && ownerAlive(owner) ? Number(owner.split(' ')[0]) : undefined;
}

/** Per process, not per FileLocks: two instances in one process must never name the same holder file. */
let sharedSeq = 0;

const turns = new Map<string, Promise<void>>();

/**
 * Waiters of one process queue here, in order, instead of polling the lock file: polling with backoff
 * left a daemon's own concurrent wirings sleeping many times longer than the lock was held.
 */
async function localTurn(key: string, waitMs: number, timeout: () => Error, signal: AbortSignal | undefined): Promise<() => void> {
  const queued = turns.get(key);
  const previous = queued ?? Promise.resolve();
  let done!: () => void;
  const mine = new Promise<void>((resolve) => { done = resolve; });
  const tail = previous.then(() => mine);
  turns.set(key, tail);
  const leave = () => {
    done();
    if (turns.get(key) === tail) turns.delete(key);
  };
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(true), waitMs); });
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<boolean>((resolve) => {
    // Only a real wait is cut short: a free lock is still taken after shutdown began (its cleanup needs it).
    if (queued === undefined) return;
    onAbort = () => resolve(true);
    if (signal?.aborted) resolve(true);
    else signal?.addEventListener('abort', onAbort, { once: true });
  });
  const gaveUp = await Promise.race([previous.then(() => false), expired, aborted]);
  clearTimeout(timer);
  // One listener per wait on a signal that lives as long as the daemon: it must go with the wait.
  if (onAbort) signal?.removeEventListener('abort', onAbort);
  // Giving up still passes the turn on, so those queued behind do not wait for this one.
  if (gaveUp) {
    leave();
    throw signal?.aborted ? abortedError(`lock ${path.basename(key)}`, signal) : timeout();
  }
  return leave;
}

/**
 * Lock files with their owner inside; a lock whose owner process is gone is taken over at once.
 *
 * The file operations are synchronous on purpose. Lock files are a few bytes under the run dir (tmpfs
 * by default), where creating or removing one takes microseconds; through libuv's thread pool each of
 * the operations of one wiring's locks cost a round trip plus a turn of the event loop, far more on a
 * busy host (`npm run bench`). Only the waits are asynchronous.
 */
export class FileLocks implements Locks {
  private readonly owner: string;

  /** `signal`: shutdown; every wait for a lock ends when it fires. */
  constructor(readonly dir: string, private readonly waitMs = 5 * 60_000, private readonly signal?: AbortSignal) {
    this.owner = processIdentity(process.pid) ?? `${process.pid} 0`;
  }

  async attachment(network: string, containerId: string, ifName: string): Promise<Release> {
    const releaseOne = await this.mutex(`att-${network}-${containerId}-${ifName}`);
    try {
      const releaseShared = await this.shared(network);
      return async () => {
        await releaseShared();
        await releaseOne();
      };
    } catch (error) {
      await releaseOne();
      throw error;
    }
  }

  async network(network: string): Promise<Release> {
    const releaseGate = await this.mutex(`net-${network}.gate`);
    try {
      const holders = path.join(this.dir, `net-${network}.shared`);
      const deadline = Date.now() + this.waitMs;
      for (let delay = 5; ; delay = Math.min(delay * 2, 100)) {
        const live = this.liveHolders(holders);
        if (live.length === 0) return releaseGate;
        if (Date.now() > deadline) throw this.timeout(`network ${network}`, live[0] ?? '');
        await abortableSleep(delay, `lock on network ${network}`, this.signal);
      }
    } catch (error) {
      await releaseGate();
      throw error;
    }
  }

  async mutex(name: string): Promise<Release> {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const file = path.join(this.dir, `${name}.lock`);
    const leave = await localTurn(file, this.waitMs, () => this.timeout(name, this.owner), this.signal);
    try {
      await this.acquireFile(name, file);
    } catch (error) {
      leave();
      throw error;
    }
    return async () => {
      try {
        this.releaseFile(file);
      } finally {
        leave();
      }
    };
  }

  /** Against other processes only: this one's waiters are queued by localTurn. */
  private async acquireFile(name: string, file: string): Promise<void> {
    const deadline = Date.now() + this.waitMs;
    for (let delay = 2; ; delay = Math.min(delay * 2, 100)) {
      if (this.tryCreate(file)) return;
      const holder = readTextIfExistsSync(file) ?? '';
      // An empty lock file is one whose creator died before writing its name: stale once it is not new.
      const orphan = holder === '' && Date.now() - (statSync(file, { throwIfNoEntry: false })?.mtimeMs ?? Date.now()) > 2000;
      if ((holder !== '' && !ownerAlive(holder)) || orphan) this.steal(file, holder);
      else if (Date.now() > deadline) throw this.timeout(name, holder);
      else await abortableSleep(delay, `lock ${name}`, this.signal);
    }
  }

  private async shared(network: string): Promise<Release> {
    const releaseGate = await this.mutex(`net-${network}.gate`);
    try {
      const holders = path.join(this.dir, `net-${network}.shared`);
      mkdirSync(holders, { recursive: true, mode: 0o700 });
      const file = path.join(holders, `${this.owner.replace(' ', '_')}_${sharedSeq++}`);
      closeSync(openSync(file, 'wx', 0o600));
      return async () => {
        removeIfExistsSync(file);
      };
    } finally {
      await releaseGate();
    }
  }

  private liveHolders(dir: string): string[] {
    const live: string[] = [];
    for (const name of readdirOrEmptySync(dir)) {
      const [pid, start] = name.split('_');
      if (ownerAlive(`${pid} ${start}`)) live.push(`${pid} ${start}`);
      else removeIfExistsSync(path.join(dir, name));
    }
    return live;
  }

  private tryCreate(file: string): boolean {
    let fd: number;
    try {
      fd = openSync(file, 'wx', 0o600);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw error;
    }
    try {
      writeSync(fd, this.owner);
    } finally {
      closeSync(fd);
    }
    return true;
  }

  /** Two processes may find the same dead owner; a guard file lets only one of them remove the lock. */
  private steal(file: string, deadOwner: string): void {
    const guard = `${file}.steal`;
    const guardMtime = statSync(guard, { throwIfNoEntry: false })?.mtimeMs;
    if (guardMtime !== undefined && Date.now() - guardMtime > 5000) removeIfExistsSync(guard);
    if (!this.tryCreate(guard)) return;
    try {
      if (readTextIfExistsSync(file) === deadOwner) unlinkSync(file);
    } finally {
      removeIfExistsSync(guard);
    }
  }

  private releaseFile(file: string): void {
    if (readTextIfExistsSync(file) === this.owner) removeIfExistsSync(file);
  }

  private timeout(name: string, holder: string): DockcniError {
    return new DockcniError('lock-timeout', `gave up after ${Math.round(this.waitMs / 1000)}s waiting for lock "${name}" held by pid ${holder.split(' ')[0] || '?'}`, {
      fix: `check what that process is doing; the lock is in ${this.dir}`,
    });
  }
}
