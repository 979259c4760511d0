import type { Argv, CommandModule } from 'yargs';
import { COMMANDS } from '../command-list.js';
import { loadConfDir } from '../../cni/conf-dir.js';
import { FileLocks } from '../../cni/lock.js';
import { ContainerHandlers, type FailurePolicy } from '../../daemon/handlers.js';
import { Daemon } from '../../daemon/daemon.js';
import { StreamLogger, type Logger } from '../../daemon/logger.js';
import { Metrics, serveMetrics } from '../../daemon/metrics.js';
import { PluginTime } from '../../daemon/plugin-time.js';
import { locksDir } from '../../paths.js';
import { DockcniError, InvalidInputError } from '../../errors.js';
import { hostname } from 'node:os';
import { commaSet } from '../../wiring/labels.js';
import { contextFrom } from '../context.js';
import { etcdFrom, numeric, pathsFrom, withDockerFlags, withEtcdFlags, type DockerFlags, type EtcdFlags } from '../flags.js';
import type { ClusterAgent } from '../../cluster/agent.js';

interface Args extends DockerFlags, EtcdFlags {
  readonly advertiseAddress?: string | undefined;
  readonly advertiseInterface?: string | undefined;
  readonly hostName: string;
  readonly hostTtl: number;
  readonly blockTtl: number;
  readonly concurrency: number;
  readonly onFailure: FailurePolicy;
  readonly retries: number;
  readonly allowNetworks?: string | undefined;
  readonly allowArgs?: string | undefined;
  readonly logFormat: 'text' | 'json';
  readonly metricsAddr?: string | undefined;
  readonly debug: boolean;
  readonly checkInterval: number;
}

/** Said once at start: a broken or shadowed file otherwise shows only when a container asks for it. */
function reportConfDir(dir: string, log: Logger): void {
  const listing = loadConfDir(dir);
  for (const problem of listing.problems) log.log('warn', 'unusable network config', { error: problem.message, fix: 'correct or remove the file; `dockcni networks validate` lists every problem' });
  for (const s of listing.shadowed) log.log('warn', `network ${s.name} is defined twice; the first file wins`, { file: s.file, by: s.by });
}

/** The cluster agent, when the daemon is given etcd; its modules (and the etcd client) load only then. */
async function clusterAgent(argv: Args, log: Logger, namesChanged: (networks: readonly string[]) => Promise<void>): Promise<ClusterAgent | undefined> {
  const etcd = etcdFrom(argv);
  if (etcd === undefined) {
    if (argv.advertiseAddress !== undefined || argv.advertiseInterface !== undefined) throw new InvalidInputError('--advertise-address', argv.advertiseAddress ?? argv.advertiseInterface ?? '', 'means nothing without --etcd', 'give --etcd (or DOCKCNI_ETCD_ENDPOINTS) to join a cluster');
    return undefined;
  }
  if (argv.advertiseAddress === undefined && argv.advertiseInterface === undefined) {
    throw new InvalidInputError('--advertise-address', '', 'a cluster host needs the address other hosts reach it at', 'give --advertise-address 10.0.0.11 or --advertise-interface eth0');
  }
  const { EtcdCluster } = await import('../../cluster/etcd.js');
  const { ClusterAgent: Agent, underlayOf } = await import('../../cluster/agent.js');
  const { checkHostName } = await import('../../cluster/model.js');
  const { ChildProcessCommands } = await import('../../host-commands.js');
  const { AttachmentStore } = await import('../../state/attachment-store.js');
  const commands = new ChildProcessCommands();
  const underlay = await underlayOf(commands, { address: argv.advertiseAddress, iface: argv.advertiseInterface });
  const paths = pathsFrom(argv);
  return new Agent({
    etcd: new EtcdCluster(etcd), host: { name: checkHostName(argv.hostName), address: underlay.address, underlayIf: underlay.iface, underlayMtu: underlay.mtu },
    hostTtlSeconds: argv.hostTtl, blockTtlSeconds: argv.blockTtl, confDir: paths.confDir, stateDir: paths.stateDir, runDir: paths.runDir,
    commands, store: new AttachmentStore(paths.stateDir), log, namesChanged,
  });
}

export const daemonCommand: CommandModule<object, Args> = {
  command: COMMANDS.daemon.usage,
  describe: COMMANDS.daemon.describe,
  builder: (y) => withEtcdFlags(withDockerFlags(y))
    .example('$0 daemon --metrics-addr 9584', 'then: docker run -d --network none -l dockcni.networks=dockcni IMAGE')
    .option('concurrency', { type: 'string', default: '8', coerce: numeric('--concurrency', { min: 1, integer: true, unit: 'containers', example: 8 }), describe: 'containers wired at once (and as many torn down)' })
    .option('on-failure', { choices: ['stop', 'kill', 'ignore'] as const, default: 'stop' as const, describe: 'what to do with a container whose wiring keeps failing' })
    .option('retries', { type: 'string', default: '2', coerce: numeric('--retries', { min: 0, integer: true, unit: 'retries', example: 2 }), describe: 'retries of a failure that may pass (CNI code 11, a hang or crash), with doubling backoff from 1 s' })
    .option('allow-networks', { type: 'string', describe: 'comma-separated networks labels may ask for [default: all]' })
    .option('allow-args', { type: 'string', describe: 'comma-separated CNI_ARGS keys dockcni.args may set ("" = none) [default: any but the identity and address keys]' })
    .option('log-format', { choices: ['text', 'json'] as const, default: 'text' as const, describe: 'one line per event: key=value text, or JSON for log shippers' })
    .option('metrics-addr', { type: 'string', describe: 'serve /metrics and /healthz on PORT (loopback) or HOST:PORT' })
    .option('check-interval', { type: 'string', default: '30', coerce: numeric('--check-interval', { min: 0, unit: 'seconds', example: 30 }), describe: 'seconds between checks that every attachment is whole (rules, links, addresses), repairing the broken ones; 0 = off (SIGHUP checks at once)' })
    .option('debug', { type: 'boolean', default: false, describe: 'log debug lines too (containers skipped, and why)' })
    .option('advertise-address', { type: 'string', describe: 'with --etcd: this host\'s address on the underlay, which other hosts reach it at' })
    .option('advertise-interface', { type: 'string', describe: 'with --etcd: the underlay interface (its first IPv4 address is advertised)' })
    .option('host-name', { type: 'string', default: hostname(), describe: 'with --etcd: this host\'s name in the cluster' })
    .option('host-ttl', { type: 'string', default: '30', coerce: numeric('--host-ttl', { min: 5, integer: true, unit: 'seconds', example: 30 }), describe: 'with --etcd: seconds after which a host that stopped answering is lost to its peers (its routes and names go)' })
    .option('block-ttl', { type: 'string', default: '86400', coerce: numeric('--block-ttl', { min: 10, integer: true, unit: 'seconds', example: 86400 }), describe: 'with --etcd: seconds a lost host keeps its address blocks, so that it keeps its containers\' addresses when it comes back' })
    .example('$0 daemon --etcd http://10.0.0.1:2379 --advertise-address 10.0.0.11', 'a host of a cluster: its cluster networks span every host') as unknown as Argv<Args>,
  handler: async (argv) => {
    const log = new StreamLogger(process.stderr, argv.logFormat, argv.debug);
    const metrics = new Metrics();
    const pluginTime = new PluginTime(metrics);
    const shutdownSignal = new AbortController();
    const agent = await clusterAgent(argv, log, (networks) => ctx.wirer.refreshNames(networks));
    const ctx = await contextFrom(argv, { observe: pluginTime.observe, signal: shutdownSignal.signal, onWarning: (message) => log.log('warn', message), cluster: agent });
    const single = await new FileLocks(locksDir(ctx.paths), 1000).mutex('daemon').catch((error: Error) => {
      throw new DockcniError('daemon-running', `another dockcni daemon is running: ${error.message}`, { cause: error, fix: 'stop it first (systemctl stop dockcni), or give this one its own --run-dir and --state-dir' });
    });
    // Joined before anything else starts: an etcd that does not answer, a taken host name or an address
    // not on this host fails the daemon here, with nothing changed.
    await agent?.start().catch(async (error: unknown) => {
      await single();
      throw error;
    });
    const served = argv.metricsAddr ? await serveMetrics(metrics, argv.metricsAddr) : undefined;
    if (served) log.log('info', 'metrics listening', { address: `${served.address.address}:${served.address.port}` });
    const handlers = new ContainerHandlers({
      docker: ctx.docker, wirer: ctx.wirer, sandboxes: ctx.sandboxes, log, metrics, onFailure: argv.onFailure, retries: argv.retries, retryDelayMs: 1000, pluginTime, signal: shutdownSignal.signal,
      labels: {
        allowNetworks: argv.allowNetworks ? commaSet(argv.allowNetworks) : undefined,
        allowArgs: argv.allowArgs === undefined ? undefined : commaSet(argv.allowArgs),
      },
    });
    const healer = (await import('../../heal/healer.js')).createHealer(ctx);
    const daemon = new Daemon({
      docker: ctx.docker, handlers, collector: ctx.collector, log, metrics, concurrency: argv.concurrency,
      health: {
        healer, intervalMs: Math.round(argv.checkInterval * 1000), retries: argv.retries,
        alsoCheck: agent && (async () => (await agent.check(true)).map((f) => ({ what: `cluster network ${f.network}: data path`, missing: f.missing }))),
      },
    });
    process.on('SIGHUP', () => {
      log.log('info', 'SIGHUP: checking every attachment now');
      void daemon.checkNow();
    });
    let stopping: Promise<void> | undefined;
    const shutdown = (signal: string) => {
      if (stopping) {
        log.log('info', `${signal}: already stopping`);
        return;
      }
      log.log('info', `${signal}: finishing in-flight operations; containers keep their networking`);
      // Waits end (locks, retry backoff); plugins already running finish.
      shutdownSignal.abort();
      stopping = daemon.stop();
    };
    // Kept (not `once`) for the daemon's whole life: with no listener left, a second signal, or a
    // library that re-raises the signal once its own cleanup ran, would kill it mid-DEL.
    process.on('SIGTERM', () => shutdown('SIGTERM'));
    process.on('SIGINT', () => shutdown('SIGINT'));
    log.log('info', 'dockcni daemon starting', { confDir: ctx.paths.confDir, cniPath: ctx.paths.cniPath.join(':'), stateDir: ctx.paths.stateDir });
    reportConfDir(ctx.paths.confDir, log);
    try {
      await daemon.run();
      await stopping;
    } finally {
      await agent?.stop();
      served?.server.close();
      await single();
    }
    log.log('info', 'stopped');
    // Stopped means gone: a client library may keep a timer or a reconnecting stream alive after its
    // close() (etcd's, after its circuit breaker opened), and a stopped daemon must not linger for it.
    process.exit(process.exitCode ?? 0);
  },
};
