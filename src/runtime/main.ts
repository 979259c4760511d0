/**
 * The Node half of the runtime, started by bin/dockcni-runtime for `create` and for the `delete` of a
 * container dockcni holds a record for; `npm run build` bundles it into dist/runtime/main.mjs, since
 * loading one file instead of dozens of modules is most of what it can save on a container's start.
 * Until the container's labels are known it runs only node:http and the argument parser; the wiring
 * machinery is evaluated only for a container that asks for it.
 *
 * It writes nothing on stdout or stderr (the shim gives runc the container's own stdio): what Docker
 * should show goes into runc's --log file, as runc's own errors do.
 */
import { listedContainer, localSocket } from '../docker/local-api.js';
import { optionsProblem, parseInvocation, type Invocation } from './invocation.js';
import { NETWORKS_LABEL } from '../wiring/label-keys.js';
import { report } from './report.js';

/** How long the container list may take to answer: dockerd is waiting on this very create. */
const LOOKUP_TIMEOUT_MS = 10_000;

/** runc create's exit status, written by the script as the pipe's only line once runc has returned. */
async function runcStatus(): Promise<number> {
  let text = '';
  for await (const chunk of process.stdin) text += String(chunk);
  const status = Number(text.trim());
  return Number.isInteger(status) ? status : 1;
}

async function create(invocation: Invocation): Promise<number> {
  // Asked while runc is still creating the container, so that a container without the label waits for
  // no longer than runc; one with it has the wiring modules loading meanwhile.
  const problem = optionsProblem(invocation);
  const lookup = (problem === undefined ? listedContainer(localSocket(invocation.options.dockerHost), invocation.containerId, LOOKUP_TIMEOUT_MS) : Promise.reject(problem))
    .then((container) => ({ container, wiring: container?.labels[NETWORKS_LABEL] === undefined ? undefined : import('./wire.js') }));
  // Its failure is handled below, once runc's status is known: it must not end the process first.
  lookup.catch(() => undefined);
  const status = await runcStatus();
  if (status !== 0) return status;
  let found: Awaited<typeof lookup>;
  try {
    found = await lookup;
  } catch (error) {
    return (await import('./wire.js')).abandonCreate(invocation, error);
  }
  if (found.wiring === undefined || found.container === undefined) return 0;
  return (await found.wiring).wireCreated(invocation, found.container);
}

async function main(argv: readonly string[]): Promise<number> {
  const [mode, ...rest] = argv;
  const invocation = parseInvocation(rest);
  if (mode === 'create') return create(invocation);
  if (mode === 'delete') return (await import('./wire.js')).unwireDeleted(invocation);
  if (mode === 'start') return (await import('./wire.js')).restoreNames(invocation);
  // `dockcni runtime status`: everything a create may need loads.
  if (mode === 'check') {
    await import('./wire.js');
    return 0;
  }
  report(invocation, `dockcni runtime: unknown mode ${JSON.stringify(mode)}`);
  return 1;
}

process.exitCode = await main(process.argv.slice(2));
