import test from 'ava';
import type { ContainerInfo } from '../../../src/docker/docker-client.js';
import { InvalidInputError } from '../../../src/errors.js';
import type { AppProcess, AppRunner } from '../../../src/run/app-runner.js';
import { parseRunArgs } from '../../../src/run/run-args.js';
import { runWithCni, sandboxLabels, sandboxRunArgs, type RunContext } from '../../../src/run/run.js';

const SANDBOX = 'a'.repeat(64);
const APP = 'f'.repeat(64);

class FakeRunner implements AppRunner {
  readonly calls: string[] = [];
  started: string[] = [];
  constructor(private readonly status = 0) {}
  start(args: readonly string[]): AppProcess {
    this.started = [...args];
    this.calls.push('app');
    return { exited: Promise.resolve(this.status), containerId: Promise.resolve(APP), signal: () => undefined };
  }
  async runDetached(): Promise<string> { this.calls.push('sandbox'); return SANDBOX; }
  async remove(id: string): Promise<void> { this.calls.push(`remove ${id.slice(0, 4)}`); }
}

const running = { id: SANDBOX, name: 'web.sandbox', labels: {}, running: true, pid: 42, startedAt: 't', createdAt: 't', networkMode: 'none', hostsPath: '', resolvConfPath: '', hostname: 'web' } satisfies ContainerInfo;

function context(calls: string[], wireError?: Error): RunContext {
  return {
    docker: { inspect: async () => running },
    wirer: {
      wire: async (target) => { calls.push(`wire ${target.name}`); if (wireError) throw wireError; return { record: { containerId: SANDBOX, name: target.name, pid: 42, startedAt: 't', netns: '/run/x', origin: 'run', networks: [], updatedAt: '' }, namesMs: 0 }; },
      unwire: async () => { calls.push('unwire'); return 'unwired' as const; },
    },
    sandboxes: { recordApp: async (sandbox, app) => { calls.push(`record ${sandbox.slice(0, 4)} app ${app.slice(0, 4)}`); } },
  };
}

const deps = (runner: FakeRunner, ctx: () => Promise<RunContext>) => ({ app: runner, context: ctx, warn: () => undefined });

test('the sandbox gets networking flags Docker refuses on the app, each as --flag=value; its image cannot pose as a flag', (t) => {
  const args = parseRunArgs(['--name', 'web', '--dns', '10.0.0.53', '--add-host', 'db:10.0.0.9', '--network', 'front', 'busybox']);
  // No dockcni.networks label: run wires its sandbox itself, and the daemon leaves it alone.
  t.deepEqual(sandboxRunArgs(args, 'pause'), [
    '--network=none', '--label=dockcni.role=sandbox', '--name=web.sandbox', '--hostname=web',
    '--dns=10.0.0.53', '--add-host=db:10.0.0.9', 'pause',
  ]);
  t.deepEqual(sandboxLabels(args), { 'dockcni.networks': 'front' });
  t.throws(() => sandboxRunArgs(args, '--privileged'), { instanceOf: InvalidInputError, message: /--sandbox-image "--privileged"/ });
});

test('sandbox, wiring, then the app in its netns; teardown unwires and removes the sandbox', async (t) => {
  const runner = new FakeRunner(7);
  const args = parseRunArgs(['--rm', '--name', 'web', 'busybox', 'true']);
  t.is(await runWithCni(args, deps(runner, async () => context(runner.calls)), { sandboxImage: 'pause' }), 7);
  t.deepEqual(runner.calls, ['sandbox', 'wire web', 'app', 'record aaaa app ffff', 'unwire', 'remove aaaa']);
  t.deepEqual(runner.started.slice(0, 2), ['--network', `container:${SANDBOX}`]);
});

test('a context that cannot be built removes the sandbox already started', async (t) => {
  const runner = new FakeRunner();
  await t.throwsAsync(runWithCni(parseRunArgs(['busybox']), deps(runner, async () => { throw new Error('bad --cache-dir'); }), { sandboxImage: 'pause' }), { message: 'bad --cache-dir' });
  t.deepEqual(runner.calls, ['sandbox', 'remove aaaa']);
});

test('a failed wiring undoes everything and never starts the app', async (t) => {
  const runner = new FakeRunner();
  await t.throwsAsync(runWithCni(parseRunArgs(['busybox']), deps(runner, async () => context(runner.calls, new Error('plugin failed'))), { sandboxImage: 'pause' }), { message: 'plugin failed' });
  t.deepEqual(runner.calls, ['sandbox', 'wire web.sandbox', 'unwire', 'remove aaaa']);
});
