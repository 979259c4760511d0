import type { Argv, CommandModule } from 'yargs';
import { COMMANDS, oneOf, subcommandsOf } from '../command-list.js';
import { loadConfDir, pickNetwork, usableNetworks } from '../../cni/conf-dir.js';
import { SUBNET_POOL, subnetsOf, type NetworkSpec } from '../../cni/network-spec.js';
import type { NetworkConfigList } from '../../cni/types.js';
import { validateConfDir, validateNetwork } from '../../cni/validate.js';
import { DockcniError, InvalidInputError } from '../../errors.js';
import { ChildProcessCommands } from '../../host-commands.js';
import { attachedTo, createNetwork, removeNetwork } from '../../networks/lifecycle.js';
import { AttachmentStore } from '../../state/attachment-store.js';
import { dockerClient } from '../docker.js';
import { numeric, pathsFrom, withCniFlags, withDockerFlags, withOutput, type CniFlags, type DockerFlags } from '../flags.js';
import { table } from '../output.js';

interface Args extends CniFlags {
  readonly output: 'json' | 'text';
  readonly network?: string;
}

const withCniOutput = <T>(y: Argv<T>) => withOutput(withCniFlags(y));

function summary(list: NetworkConfigList) {
  return { name: list.name, cniVersion: list.cniVersion, plugins: list.plugins.map((p) => p.type), source: list.source };
}

const ls: CommandModule<object, Args> = {
  command: COMMANDS.networks.subcommands.ls.usage,
  describe: COMMANDS.networks.subcommands.ls.describe,
  builder: (y) => withCniOutput(y).example('$0 networks ls -o json', '') as unknown as Argv<Args>,
  handler: async (argv) => {
    const listing = loadConfDir(pathsFrom(argv).confDir);
    const networks = usableNetworks(listing);
    if (argv.output === 'json') {
      process.stdout.write(`${JSON.stringify({ networks: networks.map(summary), problems: listing.problems.map((p) => ({ file: p.file, reason: p.reason })) }, null, 2)}\n`);
      return;
    }
    const records = await new AttachmentStore(pathsFrom(argv).stateDir).list();
    const attached = (name: string) => attachedTo(name, records).length;
    process.stdout.write(`${table([['NAME', 'DRIVER', 'SUBNETS', 'ATTACHED', 'VERSION', 'PLUGINS', 'SOURCE'], ...networks.map((n) => [
      n.name, n.plugins[0]?.type ?? '-', subnetsOf(n).join(',') || '-', String(attached(n.name)), n.cniVersion, n.plugins.map((p) => p.type).join(','), n.source,
    ])])}\n`);
    for (const p of listing.problems) process.stderr.write(`warning: ${p.message} (ignored)\n`);
  },
};

const inspect: CommandModule<object, Args> = {
  command: COMMANDS.networks.subcommands.inspect.usage,
  describe: COMMANDS.networks.subcommands.inspect.describe,
  builder: (y) => withCniOutput(y).positional('network', { type: 'string', demandOption: true }).example('$0 networks inspect dockcni -o json', '') as unknown as Argv<Args>,
  handler: async (argv) => {
    const list = pickNetwork(loadConfDir(pathsFrom(argv).confDir), argv.network ?? '');
    if (argv.output === 'json') {
      process.stdout.write(`${JSON.stringify({ ...summary(list), config: JSON.parse(list.bytes.toString('utf8')) }, null, 2)}\n`);
      return;
    }
    const lines = [['NAME', list.name], ['VERSION', list.cniVersion], ['SOURCE', list.source], ['PLUGINS', list.plugins.map((p) => p.type).join(' → ')]];
    process.stdout.write(`${table(lines)}\n\n${JSON.stringify(JSON.parse(list.bytes.toString('utf8')), null, 2)}\n`);
  },
};

const validate: CommandModule<object, Args> = {
  command: COMMANDS.networks.subcommands.validate.usage,
  describe: COMMANDS.networks.subcommands.validate.describe,
  builder: (y) => withCniOutput(y).positional('network', { type: 'string' }).example('$0 networks validate', 'every file, every plugin') as unknown as Argv<Args>,
  handler: async (argv) => {
    const paths = pathsFrom(argv);
    // The engine loads only for validate, which runs plugins.
    const engine = (await import('../engine.js')).engineFrom(argv, paths);
    const listing = loadConfDir(paths.confDir);
    if (!listing.exists && !argv.network) {
      throw new DockcniError('config-invalid', `conf dir ${paths.confDir} does not exist: nothing there to validate`, { fix: `create it, or point --conf-dir (or NETCONFPATH) at your CNI configs` });
    }
    const findings = argv.network
      ? await validateNetwork(pickNetwork(listing, argv.network), engine, paths.cniPath)
      : await validateConfDir(listing, engine, paths.cniPath);
    const errors = findings.filter((f) => f.level === 'error').length;
    if (argv.output === 'json') process.stdout.write(`${JSON.stringify({ findings }, null, 2)}\n`);
    else if (findings.length === 0) {
      const checked = argv.network ? [argv.network] : usableNetworks(listing).map((n) => n.name);
      process.stdout.write(`valid: ${checked.join(', ')} (${paths.confDir}): every file parsed, every plugin and IPAM plugin found and answering VERSION\n`);
    }
    else process.stdout.write(findings.map((f) => `${f.level}: ${f.source}${f.network ? ` (${f.network})` : ''}: ${f.message}\n`).join(''));
    if (errors > 0) throw new DockcniError('validation-failed', `${errors} problem(s) found`);
  },
};

interface CreateArgs extends DockerFlags {
  readonly network: string;
  readonly driver: NetworkSpec['driver'];
  readonly subnet: string[];
  readonly gateway: string[];
  readonly ipRange?: string | undefined;
  readonly parent?: string | undefined;
  readonly mtu?: number | undefined;
  readonly internal: boolean;
  readonly ipam: NetworkSpec['ipam'];
  readonly label: string[];
  readonly output: 'json' | 'text';
}

const create: CommandModule<object, CreateArgs> = {
  command: COMMANDS.networks.subcommands.create.usage,
  describe: COMMANDS.networks.subcommands.create.describe,
  builder: (y) => withOutput(withDockerFlags(y))
    .positional('network', { type: 'string', demandOption: true })
    .option('driver', { alias: 'd', choices: ['bridge', 'macvlan', 'ipvlan', 'ptp'] as const, default: 'bridge' as const, describe: 'the link the containers get' })
    .option('subnet', { type: 'string', array: true, default: [], describe: `CIDR, repeatable: one IPv4 and/or one IPv6 (dual stack) [default: a free /24 of ${SUBNET_POOL}]` })
    .option('gateway', { type: 'string', array: true, default: [], describe: 'gateway address per subnet [default: the first address]' })
    .option('ip-range', { type: 'string', describe: 'allocate container addresses from this CIDR inside the subnet only' })
    .option('parent', { type: 'string', describe: 'host link for macvlan and ipvlan, e.g. eth0' })
    .option('mtu', { type: 'string', coerce: (v: unknown) => (v === undefined ? undefined : numeric('--mtu', { min: 576, integer: true, unit: 'bytes', example: 1500 })(v)), describe: 'MTU of the container\'s interface' })
    .option('internal', { type: 'boolean', default: false, describe: 'no masquerade and no default route: containers reach each other, nothing else' })
    .option('ipam', { choices: ['host-local', 'dhcp'] as const, default: 'host-local' as const, describe: 'who hands out addresses: dockcni\'s host-local reservations, or the LAN\'s DHCP server' })
    .option('label', { type: 'string', array: true, default: [], describe: 'KEY=VALUE kept in the conflist, repeatable' })
    .example('$0 networks create front', 'a bridge network on a free /24')
    .example('$0 networks create lan -d macvlan --parent eth0 --subnet 192.168.1.0/24 --ip-range 192.168.1.200/29', 'containers as hosts on the LAN') as unknown as Argv<CreateArgs>,
  handler: async (argv) => {
    const labels = Object.fromEntries(argv.label.map((l) => {
      const eq = l.indexOf('=');
      if (eq <= 0) throw new InvalidInputError('--label', l, 'not KEY=VALUE', 'write e.g. --label tier=web');
      return [l.slice(0, eq), l.slice(eq + 1)];
    }));
    const created = await createNetwork({
      name: argv.network, driver: argv.driver, subnets: argv.subnet, gateways: argv.gateway, ipRange: argv.ipRange, parent: argv.parent, mtu: argv.mtu,
      internal: argv.internal, ipam: argv.ipam, labels,
    }, { confDir: pathsFrom(argv).confDir, docker: await dockerClient(argv.dockerHost) });
    if (argv.output === 'json') process.stdout.write(`${JSON.stringify(created, null, 2)}\n`);
    else process.stdout.write(`${created.name}: ${created.driver} ${created.subnets.join(', ') || '(dhcp)'}${created.bridge === undefined ? '' : ` on bridge ${created.bridge}`} → ${created.file}\n`);
  },
};

interface RmArgs extends DockerFlags {
  readonly networks: string[];
  readonly force: boolean;
}

const rm: CommandModule<object, RmArgs> = {
  command: COMMANDS.networks.subcommands.rm.usage,
  describe: COMMANDS.networks.subcommands.rm.describe,
  builder: (y) => withDockerFlags(y)
    .positional('networks', { type: 'string', array: true, demandOption: true })
    .option('force', { alias: 'f', type: 'boolean', default: false, describe: 'detach the containers on it first (all their networks), and remove files dockcni did not write' })
    .example('$0 networks rm front', '') as unknown as Argv<RmArgs>,
  handler: async (argv) => {
    const paths = pathsFrom(argv);
    const deps = {
      confDir: paths.confDir, store: new AttachmentStore(paths.stateDir), commands: new ChildProcessCommands(),
      wirer: async () => (await (await import('../context.js')).contextFrom(argv)).wirer,
    };
    for (const name of argv.networks) {
      const removed = await removeNetwork(name, argv.force, deps);
      process.stdout.write(`removed ${name} (${removed.file})${removed.detached.length > 0 ? `, detached ${removed.detached.join(', ')}` : ''}${removed.kept.map((k) => `; ${k}`).join('')}\n`);
    }
  },
};

export const networksCommand: CommandModule = {
  command: COMMANDS.networks.usage,
  describe: COMMANDS.networks.describe,
  builder: (y) => y.command([ls, inspect, validate, create, rm] as CommandModule[]).demandCommand(1, `name a networks command: ${oneOf(subcommandsOf('networks') ?? [])}`).example('$0 networks ls', ''),
  handler: () => undefined,
};
