import { utimes, writeFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import { FileLocks } from '../../../src/cni/lock.js';
import { tempDir } from '../../helpers/fixtures.js';

test('a lock left by a dead process is taken over at once', async (t) => {
  const dir = await tempDir(t);
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'x.lock'), '999999999 1');
  const release = await new FileLocks(dir, 2000).mutex('x');
  await release();
  t.pass();
});

test('an empty lock file (its creator died before writing its name) is taken over once it is not new', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'y.lock');
  await writeFile(file, '');
  const old = new Date(Date.now() - 10_000);
  await utimes(file, old, old);
  const release = await new FileLocks(dir, 2000).mutex('y');
  await release();
  t.pass();
});

test('a live holder is waited for, and the wait ends with the holder named', async (t) => {
  const dir = await tempDir(t);
  const locks = new FileLocks(dir, 300);
  const release = await locks.mutex('z');
  await t.throwsAsync(new FileLocks(dir, 300).mutex('z'), { message: new RegExp(`lock "z" held by pid ${process.pid}`) });
  await release();
});
