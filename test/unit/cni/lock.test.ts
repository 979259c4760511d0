import { readFile, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import { execa, type ResultPromise } from 'execa';
import { FileLocks } from '../../../src/cni/lock.js';
import { ROOT, tempDir } from '../../helpers/fixtures.js';

const LOCK_MODULE = path.join(ROOT, 'dist/src/cni/lock.js');

/**
 * Another process holding a lock: it takes it (`kind` = mutex, attachment or network), prints "held",
 * keeps it `holdMs`, prints "released" and exits. Exclusion between processes is what the lock files
 * are for; a second FileLocks in this process would only exercise the in-process queue.
 */
function holder(dir: string, kind: 'mutex' | 'attachment' | 'network', holdMs: number): { child: ResultPromise; held: Promise<number> } {
  const take = kind === 'mutex' ? "l.mutex('x')" : kind === 'attachment' ? "l.attachment('net', 'ctr', 'eth0')" : "l.network('net')";
  const script = `const { FileLocks } = await import(${JSON.stringify(LOCK_MODULE)}); const l = new FileLocks(${JSON.stringify(dir)}, 10000);
    const release = await ${take}; console.log('held ' + Date.now()); await new Promise((r) => setTimeout(r, ${holdMs}));
    console.log('released ' + Date.now()); await release();`;
  const child = execa('node', ['--input-type=module', '-e', script], { buffer: false });
  const held = new Promise<number>((resolve, reject) => {
    child.stdout?.on('data', (chunk: Buffer) => { const m = /held (\d+)/.exec(chunk.toString()); if (m) resolve(Number(m[1])); });
    child.catch(reject);
  });
  return { child, held };
}

const releasedAt = async (child: ResultPromise) => {
  let out = '';
  child.stdout?.on('data', (c: Buffer) => { out += c.toString(); });
  await child;
  return Number(/released (\d+)/.exec(out)?.[1]);
};

test('a mutex held by another process is waited for, and taken only once that process releases it', async (t) => {
  const dir = await tempDir(t);
  const other = holder(dir, 'mutex', 700);
  await other.held;
  const done = releasedAt(other.child);
  const release = await new FileLocks(dir, 10_000).mutex('x');
  const gotAt = Date.now();
  await release();
  t.true(gotAt >= await done, 'taken after the other process released it');
});

test('GC holds its network alone: it waits for an attachment operation of another process, and holds new ones off', async (t) => {
  const dir = await tempDir(t);
  const op = holder(dir, 'attachment', 700);
  await op.held;
  const opDone = releasedAt(op.child);
  const releaseNet = await new FileLocks(dir, 10_000).network('net');
  t.true(Date.now() >= await opDone, 'GC began after the ADD/DEL in flight ended');
  const late = holder(dir, 'attachment', 10);
  await new Promise((r) => setTimeout(r, 500));
  const releasedNetAt = Date.now();
  await releaseNet();
  t.true(await late.held >= releasedNetAt, 'a new operation waited for GC');
  await late.child;
});

test('a lock left by a dead process is taken over at once, and then holds this process as owner', async (t) => {
  const dir = await tempDir(t);
  await writeFile(path.join(dir, 'x.lock'), '999999999 1');
  const started = Date.now();
  const release = await new FileLocks(dir, 5000).mutex('x');
  t.true(Date.now() - started < 1000, 'not waited for');
  t.regex(await readFile(path.join(dir, 'x.lock'), 'utf8'), new RegExp(`^${process.pid} `));
  await release();
});

test('an empty lock file (its creator died before writing its name) is taken over once it is old, never while it is fresh', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'y.lock');
  await writeFile(file, '');
  await t.throwsAsync(new FileLocks(dir, 500).mutex('y'), { message: /gave up after .* waiting for lock "y"/ }, 'a fresh empty file may be a creator about to write its name');
  const old = new Date(Date.now() - 10_000);
  await utimes(file, old, old);
  const release = await new FileLocks(dir, 2000).mutex('y');
  t.regex(await readFile(file, 'utf8'), new RegExp(`^${process.pid} `));
  await release();
});

test('a live holder is waited for, and the wait ends with the holder named', async (t) => {
  const dir = await tempDir(t);
  const other = holder(dir, 'mutex', 2000);
  await other.held;
  await t.throwsAsync(new FileLocks(dir, 300).mutex('x'), { message: new RegExp(`lock "x" held by pid ${other.child.pid}`) });
  await other.child;
});

test('shutdown ends a wait for a lock at once; a free lock is still taken after it', async (t) => {
  const dir = await tempDir(t);
  const other = holder(dir, 'mutex', 3000);
  await other.held;
  const controller = new AbortController();
  const locks = new FileLocks(dir, 60_000, controller.signal);
  const waiting = locks.mutex('x');
  setTimeout(() => controller.abort(), 200);
  const started = Date.now();
  const error = await t.throwsAsync(waiting, { message: /stopped waiting for lock x: dockcni is shutting down/ });
  t.is((error as { code?: string } | undefined)?.code, 'aborted');
  t.true(Date.now() - started < 1500, 'not after the holder let go');
  const release = await locks.mutex('free');
  await release();
  await other.child;
});
