import { dockerCliEnv, resolveDockerEndpoint } from '../../docker/endpoint.js';
import { DockerCliRunner } from '../../run/app-runner.js';
import { ChildProcessCommands } from '../../host-commands.js';
import { parseRunArgs } from '../../run/run-args.js';
import { DEFAULT_SANDBOX_IMAGE, runWithCni, runWithRuntime } from '../../run/run.js';
import { runtimeFor } from '../../run/runtime-choice.js';
import { numeric } from '../flags.js';
import { formatError, progress } from '../output.js';

export const RUN_HELP = `dockcni run [DOCKCNI FLAGS] [DOCKER RUN FLAGS] IMAGE [COMMAND…]

docker run, with CNI networking wired before the app's first instruction. With the dockcni runtime
installed (\`dockcni runtime install\`, same locations as this run), one container is started through
it and wired between its creation and its first instruction. Otherwise a --network none sandbox
container is created and wired first (as kubelet does), then the app joins its network namespace.

Networking (applied through CNI and the sandbox):
  --network NAME        CNI network, repeatable: eth0, eth1, … [default: dockcni, the embedded network]
  -p, --publish [IP:]HOSTPORT:CONTAINERPORT[/PROTO]   port mapping (portmap plugin), first network
  --ip, --ip6 ADDR      static address on the first network (ips capability)
  --mac-address MAC     (mac capability)
  --network-alias NAME  another name peers on its networks resolve it by, repeatable
  --dns, --dns-search, --dns-option, --add-host, -h/--hostname   set on the sandbox
dockcni flags:
  --sandbox             use the sandbox path even when the runtime is installed
  --dockcni-runtime NAME   the runtime to use (fails if dockerd does not have it) [default: dockcni, if installed]
  --sandbox-image IMG   [default: ${DEFAULT_SANDBOX_IMAGE}]
  --conf-dir, --cni-path, --cache-dir, --state-dir, --run-dir, --timeout SECONDS, --trace
  --docker-host URL, --pod-namespace NS, --dockcni-quiet (no spinner)
Everything else goes to docker run unchanged (-it, --rm, --name, -e, -v, --entrypoint, -w, -u, …).

With -d, dockcni returns once the app is started and prints its id. Through the runtime, its networks
are released when it stops; on the sandbox path, by \`dockcni daemon\` if it runs, otherwise by the next
\`dockcni gc\`. --restart needs the runtime. Not supported: -P, --link, --expose.
`;

/** `dockcni run`: parsed by hand, because everything after the image belongs to the app. */
export async function runCommand(argv: readonly string[]): Promise<number> {
  if (argv.length === 0 || argv[0] === '--help') {
    process.stdout.write(RUN_HELP);
    return argv.length === 0 ? 2 : 0;
  }
  try {
    const args = parseRunArgs(argv);
    const flag = (name: string) => (typeof args.dockcni[name] === 'string' ? args.dockcni[name] as string : undefined);
    const timeout = numeric('--timeout', { min: 0.1, unit: 'seconds', example: 120 })(flag('timeout') ?? '120');
    const spinner = await progress(process.stderr, args.dockcni['dockcni-quiet'] === true);
    spinner.step('starting…');
    const flags = {
      confDir: flag('conf-dir'), cniPath: flag('cni-path'), cacheDir: flag('cache-dir'), stateDir: flag('state-dir'), runDir: flag('run-dir'),
      timeout, trace: args.dockcni['trace'] === true, dockerHost: flag('docker-host'), podNamespace: flag('pod-namespace') ?? 'default', sandboxGrace: 30,
    };
    const runner = new DockerCliRunner(dockerCliEnv(resolveDockerEndpoint(flag('docker-host'))), new ChildProcessCommands());
    // Signals for dockcni go to the docker CLI, which passes them to the app (--sig-proxy).
    const forward: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
    let app: { signal(s: NodeJS.Signals): void } | undefined;
    const onSignal = (signal: NodeJS.Signals) => app?.signal(signal);
    const onApp = (started: { signal(s: NodeJS.Signals): void }) => { spinner.done(); app = started; };
    for (const s of forward) process.on(s, onSignal);
    try {
      const runtime = await runtimeFor({
        sandbox: args.dockcni['sandbox'] === true, name: flag('dockcni-runtime') ?? 'dockcni', explicit: flag('dockcni-runtime') !== undefined, flags, dockerHost: flag('docker-host'),
      });
      if (runtime !== undefined) return await runWithRuntime(args, { app: runner, onApp }, runtime, {});
      return await runWithCni(args, {
        app: runner,
        // Loaded here, not at the top: the engine and dockerode load while Docker starts the sandbox.
        context: async () => (await import('../context.js')).contextFrom(flags, { onProgress: (step) => spinner.step(step) }),
        onApp,
        warn: (line) => process.stderr.write(`dockcni: ${line}\n`),
      }, { sandboxImage: flag('sandbox-image') ?? DEFAULT_SANDBOX_IMAGE });
    } catch (error) {
      spinner.fail();
      throw error;
    } finally {
      for (const s of forward) process.off(s, onSignal);
    }
  } catch (error) {
    process.stderr.write(`${formatError(error)}\n`);
    return 125;
  }
}
