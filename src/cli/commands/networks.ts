import type { Argv, CommandModule } from 'yargs';
import { COMMANDS, oneOf, subcommandsOf } from '../command-list.js';
import { loadConfDir, pickNetwork, usableNetworks } from '../../cni/conf-dir.js';
import { overlap, SUBNET_POOL, subnetsOf, type NetworkSpec } from '../../cni/network-spec.js';
import type { NetworkConfigList } from '../../cni/types.js';
import { validateConfDir, validateNetwork } from '../../cni/validate.js';
import { DockcniError, InvalidInputError } from '../../errors.js';
import { ChildProcessCommands } from '../../host-commands.js';
import { attachedTo, createNetwork, removeNetwork, takenSubnets } from '../../networks/lifecycle.js';
import { AttachmentStore } from '../../state/attachment-store.js';
import { dockerClient } from '../docker.js';
import { clusterConf } from '../../wiring/cluster-link.js';
import { etcdFrom, numeric, pathsFrom, withCniFlags, withDockerFlags, withEtcdFlags, withOutput, type CniFlags, type DockerFlags, type EtcdFlags } from '../flags.js';
import { table } from '../output.js';

interface Args extends CniFlags {
  readonly output: 'json' | 'text';
  readonly network?: string;
}

const withCniOutput = <T>(y: Argv<T>) => withOutput(withCniFlags(y));

/** cluster: written by the cluster agent from etcd (one network across hosts); local: this host's. */
const scopeOf = (list: NetworkConfigList) => (clusterConf(list) === undefined ? 'local' : 'cluster');

function summary(list: NetworkConfigList) {
  return { name: list.name, cniVersion: list.cniVersion, plugins: list.plugins.map((p) => p.type), source: list.source, scope: scopeOf(list) };
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
    process.stdout.write(`${table([['NAME', 'DRIVER', 'SUBNETS', 'ATTACHED', 'VERSION', 'PLUGINS', 'SOURCE', 'SCOPE'], ...networks.map((n) => [
      n.name, n.plugins[0]?.type ?? '-', [...new Set(subnetsOf(n))].join(',') || '-', String(attached(n.name)), n.cniVersion, n.plugins.map((p) => p.type).join(','), n.source, scopeOf(n),
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

interface CreateArgs extends DockerFlags, EtcdFlags {
  readonly network: string;
  readonly scope: 'local' | 'cluster';
  readonly blockSize?: number | undefined;
  readonly backend?: string | undefined;
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
  builder: (y) => withEtcdFlags(withOutput(withDockerFlags(y)))
    .positional('network', { type: 'string', demandOption: true })
    .option('scope', { choices: ['local', 'cluster'] as const, default: 'local' as const, describe: 'local: this host only; cluster: one network across every host of the cluster (etcd), each host allocating from blocks of its own' })
    .option('block-size', { type: 'string', coerce: (v: unknown) => (v === undefined ? undefined : numeric('--block-size', { min: 8, integer: true, unit: 'prefix bits', example: 24 })(v)), describe: 'with --scope cluster: the prefix of the blocks hosts take from --ip-range [default 24]' })
    .option('backend', { choices: ['vxlan', 'host-gw'], describe: 'with --scope cluster: how hosts carry it: a VXLAN device (any underlay), or plain routes (hosts on one link) [default vxlan]' })
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
    .example('$0 networks create lan -d macvlan --parent eth0 --subnet 192.168.1.0/24 --ip-range 192.168.1.200/29', 'containers as hosts on the LAN')
    .example('$0 networks create web --scope cluster --subnet 10.240.0.0/16 --ip-range 10.240.0.0/17 --etcd http://10.0.0.1:2379', 'one network on every host of a cluster') as unknown as Argv<CreateArgs>,
  handler: async (argv) => {
    if (argv.scope === 'cluster') {
      await createCluster(argv);
      return;
    }
    for (const [flag, given] of [['--block-size', argv.blockSize], ['--backend', argv.backend]] as const) {
      if (given !== undefined) throw new InvalidInputError(flag, String(given), 'only a cluster network has blocks and a backend', 'add --scope cluster, or leave it out');
    }
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

/** A cluster network: checked here and on this host, then created in etcd in one transaction. */
async function createCluster(argv: CreateArgs): Promise<void> {
  const notForCluster: [string, boolean][] = [['--driver', argv.driver !== 'bridge'], ['--gateway', argv.gateway.length > 0], ['--parent', argv.parent !== undefined], ['--internal', argv.internal], ['--ipam', argv.ipam !== 'host-local'], ['--label', argv.label.length > 0]];
  const refused = notForCluster.find(([, given]) => given);
  if (refused !== undefined) throw new InvalidInputError(refused[0], '', 'does not apply to a cluster network (a bridge on every host, addresses from its hosts\' blocks)', `leave ${refused[0]} out`);
  if (argv.subnet.length !== 1) throw new InvalidInputError('--subnet', argv.subnet.join(','), 'a cluster network needs exactly one IPv4 subnet', 'write e.g. --subnet 10.240.0.0/16');
  const subnet = argv.subnet[0] ?? '';
  const { clusterNetworkFor, contains } = await import('../../cluster/model.js');
  const request = { name: argv.network, subnet, ipRange: argv.ipRange, blockSize: argv.blockSize, backend: argv.backend, mtu: argv.mtu };
  // Every value checked before etcd is asked (the VNI is picked there).
  clusterNetworkFor(request, 0);
  const listing = loadConfDir(pathsFrom(argv).confDir);
  if (listing.networks.some((n) => n.name === argv.network)) throw new DockcniError('already-exists', `network ${argv.network} already exists on this host`, { fix: 'pick another name' });
  // This host's own part of other cluster networks (their conflists, bridges, routes) is etcd's to compare, with their names.
  const ofClusters = usableNetworks(listing).flatMap((n) => clusterConf(n)?.subnet ?? []);
  const taken = (await takenSubnets(usableNetworks(listing), await dockerClient(argv.dockerHost))).filter((x) => !ofClusters.some((c) => x.subnet.includes('.') && contains(c, x.subnet)));
  const clash = taken.find((x) => overlap(x.subnet, subnet));
  if (clash) throw new InvalidInputError('--subnet', subnet, `overlaps ${clash.subnet} of ${clash.by} on this host`, 'pick a subnet no host of the cluster uses');
  const { etcdFor } = await import('./cluster.js');
  const { createClusterNetwork } = await import('../../networks/cluster.js');
  const etcd = await etcdFor(argv);
  try {
    const created = await createClusterNetwork(etcd, request);
    if (argv.output === 'json') process.stdout.write(`${JSON.stringify({ ...created, scope: 'cluster' }, null, 2)}\n`);
    else process.stdout.write(`${created.name}: cluster ${created.subnet}, blocks of /${created.blockSize} from ${created.ipRange}, ${created.backend} (VNI ${created.vni}); every host's dockcni daemon sets it up\n`);
  } finally {
    etcd.close();
  }
}

interface RmArgs extends DockerFlags, EtcdFlags {
  readonly networks: string[];
  readonly force: boolean;
}

const rm: CommandModule<object, RmArgs> = {
  command: COMMANDS.networks.subcommands.rm.usage,
  describe: COMMANDS.networks.subcommands.rm.describe,
  builder: (y) => withEtcdFlags(withDockerFlags(y))
    .positional('networks', { type: 'string', array: true, demandOption: true })
    .option('force', { alias: 'f', type: 'boolean', default: false, describe: 'detach the containers on it first (all their networks), and remove files dockcni did not write' })
    .example('$0 networks rm front', '') as unknown as Argv<RmArgs>,
  handler: async (argv) => {
    const paths = pathsFrom(argv);
    const deps = {
      confDir: paths.confDir, store: new AttachmentStore(paths.stateDir), commands: new ChildProcessCommands(),
      wirer: async () => (await (await import('../context.js')).contextFrom(argv)).wirer,
    };
    const listing = loadConfDir(paths.confDir);
    for (const name of argv.networks) {
      const local = listing.networks.find((n) => n.name === name);
      if ((local !== undefined && clusterConf(local) !== undefined) || (local === undefined && etcdFrom(argv) !== undefined)) {
        if (argv.force) throw new InvalidInputError('--force', name, 'a cluster network is not removed under containers', 'stop its containers on every host first');
        const { etcdFor } = await import('./cluster.js');
        const { removeClusterNetwork } = await import('../../networks/cluster.js');
        const etcd = await etcdFor(argv);
        try {
          await removeClusterNetwork(etcd, name, await deps.store.list());
        } finally {
          etcd.close();
        }
        process.stdout.write(`removed cluster network ${name} from etcd: every host's dockcni daemon removes its conflist, links and rules\n`);
        continue;
      }
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
