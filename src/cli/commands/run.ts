import { dockerCliEnv, resolveDockerEndpoint } from '../../docker/endpoint.js';
import { DockerCliRunner } from '../../run/app-runner.js';
import { parseRunArgs } from '../../run/run-args.js';
import { DEFAULT_SANDBOX_IMAGE, runWithCni } from '../../run/run.js';
import { numeric } from '../flags.js';
import { formatError, progress } from '../output.js';

export const RUN_HELP = `dockcni run [DOCKCNI FLAGS] [DOCKER RUN FLAGS] IMAGE [COMMAND…]

docker run, with CNI networking wired before the app's first instruction: a --network none sandbox
container is created and wired first (as kubelet does), then the app joins its network namespace.

Networking (applied through CNI and the sandbox):
  --network NAME        CNI network, repeatable: eth0, eth1, … [default: dockcni, the embedded network]
  -p, --publish [IP:]HOSTPORT:CONTAINERPORT[/PROTO]   port mapping (portmap plugin), first network
  --ip, --ip6 ADDR      static address on the first network (ips capability)
  --mac-address MAC     (mac capability)
  --dns, --dns-search, --dns-option, --add-host, -h/--hostname   set on the sandbox
dockcni flags:
  --sandbox-image IMG   [default: ${DEFAULT_SANDBOX_IMAGE}]
  --conf-dir, --cni-path, --cache-dir, --state-dir, --run-dir, --timeout SECONDS, --trace
  --docker-host URL, --pod-namespace NS, --dockcni-quiet (no spinner)
Everything else goes to docker run unchanged (-it, --rm, --name, -e, -v, --entrypoint, -w, -u, …).

With -d, dockcni returns once the app is started and prints its id. Its sandbox and addresses are
released when the app stops: by \`dockcni daemon\` if it runs, otherwise by the next \`dockcni gc\`.
Not supported: --restart (run such services under the daemon), -P, --link, --expose, --network-alias.
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
    spinner.step('starting the sandbox…');
    const flags = {
      confDir: flag('conf-dir'), cniPath: flag('cni-path'), cacheDir: flag('cache-dir'), stateDir: flag('state-dir'), runDir: flag('run-dir'),
      timeout, trace: args.dockcni['trace'] === true, dockerHost: flag('docker-host'), podNamespace: flag('pod-namespace') ?? 'default', sandboxGrace: 30,
    };
    const forward: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
    let app: { signal(s: NodeJS.Signals): void } | undefined;
    const onSignal = (signal: NodeJS.Signals) => app?.signal(signal);
    for (const s of forward) process.on(s, onSignal);
    try {
      return await runWithCni(args, {
        app: new DockerCliRunner(dockerCliEnv(resolveDockerEndpoint(flag('docker-host')))),
        // Loaded here, not at the top: the engine and dockerode load while Docker starts the sandbox.
        context: async () => (await import('../context.js')).contextFrom(flags, (step) => spinner.step(step)),
        onApp: (started) => { spinner.done(); app = started; },
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
