import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { ROOT } from '../helpers/fixtures.js';

/** A bundle file and every chunk it imports statically (what loads with it), transitively. */
function loadedWith(file: string, seen = new Set<string>()): Set<string> {
  if (seen.has(file)) return seen;
  seen.add(file);
  const text = readFileSync(file, 'utf8');
  for (const m of text.matchAll(/(?:from\s*|import\s*)"(\.\/[^"]+\.js)"/g)) loadedWith(path.join(path.dirname(file), m[1] ?? ''), seen);
  return seen;
}

// The etcd client (and gRPC under it) is for the daemon of a cluster host and the cluster commands:
// never on the runtime's way to a container's first instruction, nor on any other command's start.
test('the etcd client is in no bundle the runtime or the CLI load up front, only in the cluster chunks', (t) => {
  const runtime = path.join(ROOT, 'dist/runtime/main.mjs');
  const cli = path.join(ROOT, 'dist/cli/main.js');
  t.true(existsSync(runtime) && existsSync(cli), 'npm run build made the bundles');
  t.notRegex(readFileSync(runtime, 'utf8'), /etcd3/);
  const upFront = [...loadedWith(cli)];
  t.true(upFront.length > 1);
  for (const file of upFront) t.notRegex(readFileSync(file, 'utf8'), /etcd3/, path.basename(file));
  const dir = path.dirname(cli);
  const withEtcd = readdirSync(dir).filter((f) => f.endsWith('.js') && readFileSync(path.join(dir, f), 'utf8').includes('etcd3'));
  t.true(withEtcd.length > 0, 'the cluster commands have it, in a chunk of their own');
});
