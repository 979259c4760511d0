import path from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { COMMANDS, oneOf, subcommandsOf } from '../command-list.js';
import { localSocket } from '../../docker/local-api.js';
import { dockerClient } from '../docker.js';
import { checkEngine } from '../../docker/engine-support.js';
import { DockcniError, InvalidInputError } from '../../errors.js';
import type { RuntimeChange } from '../../runtime/install.js';
import { numeric, pathsFrom, withOutput, withPathFlags } from '../flags.js';
import type { PathFlags } from '../../paths.js';
import { table } from '../output.js';

interface Args {
  readonly dockerHost?: string | undefined;
  readonly name: string;
  readonly daemonJson: string;
  readonly output: 'json' | 'text';
}

interface ChangeArgs extends Args {
  readonly reload: boolean;
}

interface InstallArgs extends ChangeArgs, PathFlags {
  readonly timeout: number;
  readonly podNamespace: string;
  readonly default: boolean;
  readonly runc?: string | undefined;
  readonly allowNetworks?: string | undefined;
  readonly allowArgs?: string | undefined;
}

function common<T>(y: Argv<T>) {
  return withOutput(y)
    .option('docker-host', { type: 'string', describe: 'Docker endpoint; the runtime itself needs a unix socket [default unix:///var/run/docker.sock]' })
    .option('name', { type: 'string', default: 'dockcni', describe: 'the runtime\'s name in Docker (docker run --runtime NAME)' })
    .option('daemon-json', { type: 'string', default: '/etc/docker/daemon.json', describe: 'dockerd\'s config file' });
}

/** For the commands that change daemon.json. */
function changing<T>(y: Argv<T>) {
  return common(y).option('reload', { type: 'boolean', default: true, describe: 'send dockerd SIGHUP and wait until it lists the change (--no-reload: only write the file)' });
}

const docker = (argv: Args) => dockerClient(argv.dockerHost);

function said(verb: string, name: string, change: RuntimeChange): string {
  if (!change.changed) return `${name}: ${change.daemonJson} already ${verb === 'installed' ? 'had it' : 'did not have it'}; nothing written`;
  const lines = [`${verb} runtime ${name} in ${change.daemonJson}`];
  if (change.backup) lines.push(`previous file kept as ${change.backup}`);
  if (change.listedUntilRestart) lines.push(`dockerd${change.reloadedPid ? ` (pid ${change.reloadedPid}) reloaded its config but` : ''} lists ${name} until it restarts: it reloads runtimes only from a daemon.json that names at least one`);
  else if (change.reloadedPid) lines.push(`dockerd (pid ${change.reloadedPid}) reloaded its config and ${verb === 'installed' ? 'lists' : 'no longer lists'} ${name}`);
  else lines.push('dockerd not reloaded (--no-reload): run `systemctl reload docker` or `kill -HUP <dockerd pid>`');
  return lines.join('\n');
}

function print(argv: Args, text: string, json: unknown): void {
  process.stdout.write(argv.output === 'json' ? `${JSON.stringify(json, null, 2)}\n` : `${text}\n`);
}

const install: CommandModule<object, InstallArgs> = {
  command: COMMANDS.runtime.subcommands.install.usage,
  describe: COMMANDS.runtime.subcommands.install.describe,
  builder: (y) => changing(withPathFlags(y))
    .option('timeout', { type: 'string', default: '120', coerce: numeric('--timeout', { min: 0.1, unit: 'seconds', example: 120 }), describe: 'seconds a plugin call may take before it is killed (and the container\'s start fails)' })
    .option('pod-namespace', { type: 'string', default: 'default', describe: 'K8S_POD_NAMESPACE passed to plugins for every container' })
    .option('default', { type: 'boolean', default: false, describe: 'also make it dockerd\'s default-runtime (containers without the label pass straight to runc)' })
    .option('runc', { type: 'string', describe: 'the runc the runtime passes every command to [default: runc on PATH]' })
    .option('allow-networks', { type: 'string', describe: 'comma-separated networks labels may ask for [default: all]' })
    .option('allow-args', { type: 'string', describe: 'comma-separated CNI_ARGS keys dockcni.args may set ("" = none)' })
    .example('$0 runtime install', 'then: docker run --runtime dockcni --network none -l dockcni.networks=dockcni IMAGE')
    .example('$0 runtime install --name dockcni-lab --conf-dir /srv/cni', 'a second runtime with its own configs') as unknown as Argv<InstallArgs>,
  handler: async (argv) => {
    const { installRuntime } = await import('../../runtime/install.js');
    const { firstExecutable, splitPath } = await import('../../cni/plugin-path.js');
    // An absolute path: the shim's PATH is dockerd's, not the operator's.
    const runc = argv.runc === undefined ? firstExecutable('runc', splitPath(process.env['PATH'] ?? '')) : path.resolve(argv.runc);
    if (runc === undefined) throw new DockcniError('not-found', 'runc is not on PATH', { fix: 'install it (Debian: apt-get install runc) or give --runc /path/to/runc' });
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(argv.name)) throw new InvalidInputError('--name', argv.name, 'not a runtime name Docker accepts', 'use letters, digits, ".", "_" and "-"');
    const client = await docker(argv);
    await checkEngine(client);
    const paths = pathsFrom(argv);
    const endpoint = argv.dockerHost === undefined ? undefined : `unix://${localSocket(argv.dockerHost)}`;
    const change = await installRuntime({
      docker: client, name: argv.name, daemonJson: path.resolve(argv.daemonJson), makeDefault: argv.default, reload: argv.reload,
      runtime: {
        confDir: paths.confDir, cniPath: paths.cniPath.join(':'), cacheDir: paths.cacheDir, stateDir: paths.stateDir, runDir: paths.runDir, dockerHost: endpoint,
        dockerRoot: (await client.runtimes()).rootDir, timeout: String(argv.timeout), podNamespace: argv.podNamespace,
        allowNetworks: argv.allowNetworks, allowArgs: argv.allowArgs, node: process.execPath, runc,
      },
    });
    print(argv, said('installed', argv.name, change), change);
  },
};

const uninstall: CommandModule<object, ChangeArgs> = {
  command: COMMANDS.runtime.subcommands.uninstall.usage,
  describe: COMMANDS.runtime.subcommands.uninstall.describe,
  builder: (y) => changing(y).example('$0 runtime uninstall', '') as unknown as Argv<ChangeArgs>,
  handler: async (argv) => {
    const { uninstallRuntime } = await import('../../runtime/install.js');
    const change = await uninstallRuntime({ docker: await docker(argv), name: argv.name, daemonJson: path.resolve(argv.daemonJson), reload: argv.reload });
    print(argv, said('uninstalled', argv.name, change), change);
  },
};

const status: CommandModule<object, Args> = {
  command: COMMANDS.runtime.subcommands.status.usage,
  describe: COMMANDS.runtime.subcommands.status.describe,
  builder: (y) => common(y).example('$0 runtime status -o json', '') as unknown as Argv<Args>,
  handler: async (argv) => {
    const { runtimeStatus } = await import('../../runtime/install.js');
    const { ChildProcessCommands } = await import('../../host-commands.js');
    const s = await runtimeStatus(await docker(argv), new ChildProcessCommands(), argv.name, path.resolve(argv.daemonJson));
    if (argv.output === 'json') process.stdout.write(`${JSON.stringify(s, null, 2)}\n`);
    else {
      process.stdout.write(`${table([
        ['RUNTIME', s.name],
        ['DAEMON.JSON', s.entry ? `${s.daemonJson}: ${s.entry.path}` : `${s.daemonJson}: not there`],
        ['DOCKERD', s.registered === undefined ? 'could not ask' : s.registered ? `lists it${s.isDefault ? ' (default runtime)' : ''}` : 'does not list it'],
        ['ANSWERING', s.answering ? 'yes' : 'no'],
        ...(s.problem ? [['PROBLEM', s.problem]] : []),
      ])}\n`);
    }
    if (!(s.entry && s.registered && s.answering)) process.exitCode = 1;
  },
};

export const runtimeCommand: CommandModule = {
  command: COMMANDS.runtime.usage,
  describe: COMMANDS.runtime.describe,
  builder: (y) => y.command([install, uninstall, status] as CommandModule[]).demandCommand(1, `name a runtime command: ${oneOf(subcommandsOf('runtime') ?? [])}`).example('$0 runtime install', ''),
  handler: () => undefined,
};
