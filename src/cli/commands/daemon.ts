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
import { DockcniError } from '../../errors.js';
import { commaSet } from '../../wiring/labels.js';
import { contextFrom } from '../context.js';
import { numeric, withDockerFlags, type DockerFlags } from '../flags.js';

interface Args extends DockerFlags {
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

export const daemonCommand: CommandModule<object, Args> = {
  command: COMMANDS.daemon.usage,
  describe: COMMANDS.daemon.describe,
  builder: (y) => withDockerFlags(y)
    .example('$0 daemon --metrics-addr 9584', 'then: docker run -d --network none -l dockcni.networks=dockcni IMAGE')
    .option('concurrency', { type: 'string', default: '8', coerce: numeric('--concurrency', { min: 1, integer: true, unit: 'containers', example: 8 }), describe: 'containers wired at once (and as many torn down)' })
    .option('on-failure', { choices: ['stop', 'kill', 'ignore'] as const, default: 'stop' as const, describe: 'what to do with a container whose wiring keeps failing' })
    .option('retries', { type: 'string', default: '2', coerce: numeric('--retries', { min: 0, integer: true, unit: 'retries', example: 2 }), describe: 'retries of a failure that may pass (CNI code 11, a hang or crash), with doubling backoff from 1 s' })
    .option('allow-networks', { type: 'string', describe: 'comma-separated networks labels may ask for [default: all]' })
    .option('allow-args', { type: 'string', describe: 'comma-separated CNI_ARGS keys dockcni.args may set ("" = none) [default: any but the identity and address keys]' })
    .option('log-format', { choices: ['text', 'json'] as const, default: 'text' as const, describe: 'one line per event: key=value text, or JSON for log shippers' })
    .option('metrics-addr', { type: 'string', describe: 'serve /metrics and /healthz on PORT (loopback) or HOST:PORT' })
    .option('check-interval', { type: 'string', default: '30', coerce: numeric('--check-interval', { min: 0, unit: 'seconds', example: 30 }), describe: 'seconds between checks that every attachment is whole (rules, links, addresses), repairing the broken ones; 0 = off (SIGHUP checks at once)' })
    .option('debug', { type: 'boolean', default: false, describe: 'log debug lines too (containers skipped, and why)' }) as unknown as Argv<Args>,
  handler: async (argv) => {
    const log = new StreamLogger(process.stderr, argv.logFormat, argv.debug);
    const metrics = new Metrics();
    const pluginTime = new PluginTime(metrics);
    const shutdownSignal = new AbortController();
    const ctx = await contextFrom(argv, { observe: pluginTime.observe, signal: shutdownSignal.signal, onWarning: (message) => log.log('warn', message) });
    const single = await new FileLocks(locksDir(ctx.paths), 1000).mutex('daemon').catch((error: Error) => {
      throw new DockcniError('daemon-running', `another dockcni daemon is running: ${error.message}`, { cause: error, fix: 'stop it first (systemctl stop dockcni), or give this one its own --run-dir and --state-dir' });
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
      health: { healer, intervalMs: Math.round(argv.checkInterval * 1000), retries: argv.retries },
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
      served?.server.close();
      await single();
    }
    log.log('info', 'stopped');
  },
};
