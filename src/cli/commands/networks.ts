import type { Argv, CommandModule } from 'yargs';
import { CATALOG } from './catalog.js';
import { loadConfDir, pickNetwork } from '../../cni/conf-dir.js';
import { DEFAULT_NETWORK_NAME, defaultNetwork } from '../../cni/default-network.js';
import type { NetworkConfigList } from '../../cni/types.js';
import { validateConfDir, validateNetwork } from '../../cni/validate.js';
import { DockcniError, InvalidInputError } from '../../errors.js';
import { existsSync, readdirSync, rmSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import { bridgeName, bridgesOf, CREATED_BY, conflistFor, overlap, pickSubnet, SUBNET_POOL, subnetsOf, type NetworkSpec } from '../../cni/network-spec.js';
import { writeFileAtomic } from '../../fs-atomic.js';
import { hostLocalDir } from '../../cni/host-local.js';
import { AttachmentStore } from '../../state/attachment-store.js';
import { holdsNetns } from '../../state/attachment.js';
import { hostRoutes } from '../../wiring/host-routes.js';
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
  command: 'ls',
  describe: 'list the networks of the conf dir (and the embedded default when not overridden)',
  builder: (y) => withCniOutput(y).example('$0 networks ls -o json', '') as unknown as Argv<Args>,
  handler: async (argv) => {
    const listing = loadConfDir(pathsFrom(argv).confDir);
    const networks = [...listing.networks];
    if (!networks.some((n) => n.name === DEFAULT_NETWORK_NAME)) networks.push(defaultNetwork());
    if (argv.output === 'json') {
      process.stdout.write(`${JSON.stringify({ networks: networks.map(summary), problems: listing.problems.map((p) => ({ file: p.file, reason: p.reason })) }, null, 2)}\n`);
      return;
    }
    const records = await new AttachmentStore(pathsFrom(argv).stateDir).list();
    const attached = (name: string) => records.filter((r) => holdsNetns(r) && r.networks.some((n) => n.network === name)).length;
    process.stdout.write(`${table([['NAME', 'DRIVER', 'SUBNETS', 'ATTACHED', 'VERSION', 'PLUGINS', 'SOURCE'], ...networks.map((n) => [
      n.name, n.plugins[0]?.type ?? '-', subnetsOf(n).join(',') || '-', String(attached(n.name)), n.cniVersion, n.plugins.map((p) => p.type).join(','), n.source,
    ])])}\n`);
    for (const p of listing.problems) process.stderr.write(`warning: ${p.message} (ignored)\n`);
  },
};

const inspect: CommandModule<object, Args> = {
  command: 'inspect <network>',
  describe: 'print a network\'s conflist as dockcni will use it',
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
  command: 'validate [network]',
  describe: 'check every file and plugin (found, answering VERSION with the network\'s version); reports every problem',
  builder: (y) => withCniOutput(y).positional('network', { type: 'string' }).example('$0 networks validate', 'every file, every plugin') as unknown as Argv<Args>,
  handler: async (argv) => {
    const paths = pathsFrom(argv);
    // The engine (and execa) load only for validate, which runs plugins.
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
      const checked = argv.network ? [argv.network] : [...listing.networks.map((n) => n.name), ...(listing.networks.some((n) => n.name === DEFAULT_NETWORK_NAME) ? [] : [DEFAULT_NETWORK_NAME])];
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

/** Every subnet already in use, named: other CNI networks, Docker's networks, the host's routes. */
async function takenSubnets(argv: CreateArgs, networks: readonly NetworkConfigList[]): Promise<{ subnet: string; by: string }[]> {
  const { DockerodeClient } = await import('../../docker/dockerode-client.js');
  const { resolveDockerEndpoint } = await import('../../docker/endpoint.js');
  const docker = new DockerodeClient(resolveDockerEndpoint(argv.dockerHost));
  return [
    ...networks.flatMap((n) => subnetsOf(n).map((subnet) => ({ subnet, by: `CNI network ${n.name} (${n.source})` }))),
    ...(await docker.networkSubnets()).map((d) => ({ subnet: d.subnet, by: `Docker network ${d.network}` })),
    ...hostRoutes().map((r) => ({ subnet: r.subnet, by: `a route of the host via ${r.dev}` })),
  ];
}

const create: CommandModule<object, CreateArgs> = {
  command: 'create <network>',
  describe: 'write a conflist for a new network into the conf dir: the chain a Docker host needs',
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
    const paths = pathsFrom(argv);
    const listing = loadConfDir(paths.confDir);
    const existing = listing.networks.find((n) => n.name === argv.network);
    if (existing || argv.network === DEFAULT_NETWORK_NAME) {
      throw new DockcniError('already-exists', `network ${argv.network} already exists (${existing?.source ?? 'embedded'})`, { fix: 'pick another name, or remove it first (dockcni networks rm)' });
    }
    const labels = Object.fromEntries(argv.label.map((l) => {
      const eq = l.indexOf('=');
      if (eq <= 0) throw new InvalidInputError('--label', l, 'not KEY=VALUE', 'write e.g. --label tier=web');
      return [l.slice(0, eq), l.slice(eq + 1)];
    }));
    const networks = listing.networks.some((n) => n.name === DEFAULT_NETWORK_NAME) ? listing.networks : [...listing.networks, defaultNetwork()];
    const taken = await takenSubnets(argv, networks);
    const subnets = argv.subnet.length > 0 || argv.ipam === 'dhcp' ? argv.subnet : [pickSubnet(taken.map((x) => x.subnet)) ?? ''];
    if (subnets.includes('')) throw new DockcniError('already-exists', `no free /24 left in ${SUBNET_POOL}`, { fix: 'give --subnet' });
    // A bridge of its own: no link of the host and no other network's bridge has its name.
    const bridge = argv.driver === 'bridge' ? bridgeName(argv.network, new Set([...readdirSync('/sys/class/net'), ...networks.flatMap(bridgesOf)])) : undefined;
    const spec: NetworkSpec = {
      name: argv.network, driver: argv.driver, subnets, gateways: argv.gateway, ipRange: argv.ipRange, parent: argv.parent, mtu: argv.mtu,
      internal: argv.internal, ipam: argv.ipam, labels, bridge,
    };
    const conf = conflistFor(spec);
    for (const subnet of subnets) {
      const clash = taken.find((x) => overlap(x.subnet, subnet));
      if (clash) throw new InvalidInputError('--subnet', subnet, `overlaps ${clash.subnet} of ${clash.by}`, 'pick a subnet nothing on this host uses, or leave --subnet out');
    }
    if (argv.parent !== undefined && !existsSync(`/sys/class/net/${argv.parent}`)) {
      throw new InvalidInputError('--parent', argv.parent, 'no such link on this host', 'name a link `ip link` lists, e.g. eth0');
    }
    const file = path.join(paths.confDir, `50-${argv.network}.conflist`);
    if (existsSync(file)) throw new DockcniError('already-exists', `${file} already exists`, { fix: 'remove it, or pick another name' });
    // Config files are read by every CNI runtime of the host: world-readable, like the examples.
    await writeFileAtomic(file, `${JSON.stringify(conf, null, 2)}\n`, { file: 0o644, dir: 0o755 });
    if (argv.output === 'json') process.stdout.write(`${JSON.stringify({ name: argv.network, driver: argv.driver, subnets, file, ...(bridge === undefined ? {} : { bridge }) }, null, 2)}\n`);
    else process.stdout.write(`${argv.network}: ${argv.driver} ${subnets.join(', ') || '(dhcp)'}${bridge === undefined ? '' : ` on bridge ${bridge}`} → ${file}\n`);
  },
};

interface RmArgs extends DockerFlags {
  readonly networks: string[];
  readonly force: boolean;
}

const rm: CommandModule<object, RmArgs> = {
  command: 'rm <networks..>',
  describe: 'remove networks networks create wrote; refuses while containers are attached unless --force',
  builder: (y) => withDockerFlags(y)
    .positional('networks', { type: 'string', array: true, demandOption: true })
    .option('force', { alias: 'f', type: 'boolean', default: false, describe: 'detach the containers on it first (all their networks), and remove files dockcni did not write' })
    .example('$0 networks rm front', '') as unknown as Argv<RmArgs>,
  handler: async (argv) => {
    const paths = pathsFrom(argv);
    const listing = loadConfDir(paths.confDir);
    const records = await new AttachmentStore(paths.stateDir).list();
    for (const name of argv.networks) {
      const list = listing.networks.find((n) => n.name === name);
      if (list === undefined) throw new DockcniError('not-found', `no network ${name} in ${paths.confDir}`, { fix: 'see `dockcni networks ls`' });
      const raw = JSON.parse(list.bytes.toString('utf8')) as { dockcni?: { createdBy?: string } };
      if (raw.dockcni?.createdBy !== CREATED_BY && !argv.force) {
        throw new DockcniError('not-found', `${list.source} was not written by dockcni networks create: left alone`, { fix: 'remove it by hand, or pass --force' });
      }
      const attached = records.filter((r) => holdsNetns(r) && r.networks.some((n) => n.network === name));
      if (attached.length > 0 && !argv.force) {
        throw new DockcniError('already-wired', `network ${name} has ${attached.length} container(s) attached: ${attached.map((r) => r.name).join(', ')}`, { fix: 'stop them first, or pass --force to detach them' });
      }
      if (attached.length > 0) {
        const { contextFrom } = await import('../context.js');
        const ctx = await contextFrom(argv);
        for (const r of attached) await ctx.wirer.unwire(r.containerId);
      }
      unlinkSync(list.source);
      // The bridge the plugin made for this network goes with it (the plugin never deletes it), unless
      // another network names it too or an interface is still on it (a container, or what someone else put there).
      const kept: string[] = [];
      for (const bridge of raw.dockcni?.createdBy === CREATED_BY ? bridgesOf(list) : []) {
        if (!existsSync(`/sys/class/net/${bridge}`)) continue;
        const sharers = listing.networks.filter((n) => n.name !== name && bridgesOf(n).includes(bridge)).map((n) => `network ${n.name}`);
        const ports = readdirSync(`/sys/class/net/${bridge}/brif`).map((p) => `interface ${p}`);
        if (sharers.length + ports.length > 0) kept.push(`kept bridge ${bridge}: used by ${[...sharers, ...ports].join(', ')}`);
        else {
          const { execa } = await import('execa');
          await execa('ip', ['link', 'del', bridge]);
        }
      }
      // host-local's bookkeeping for the network (its lock and last-reserved files) goes too; a
      // reservation still in it is someone's address, and keeps the directory.
      const ipamDir = raw.dockcni?.createdBy === CREATED_BY ? hostLocalDir(list) : undefined;
      if (ipamDir !== undefined && existsSync(ipamDir)) {
        const held = readdirSync(ipamDir).filter((f) => f !== 'lock' && !f.startsWith('last_reserved_ip'));
        if (held.length === 0) rmSync(ipamDir, { recursive: true });
        else kept.push(`kept ${ipamDir}: it still reserves ${held.join(', ')}`);
      }
      process.stdout.write(`removed ${name} (${list.source})${attached.length > 0 ? `, detached ${attached.map((r) => r.name).join(', ')}` : ''}${kept.map((k) => `; ${k}`).join('')}\n`);
    }
  },
};

export const networksCommand: CommandModule = {
  command: CATALOG.networks.usage,
  describe: CATALOG.networks.describe,
  builder: (y) => y.command([ls, inspect, validate, create, rm] as CommandModule[]).demandCommand(1, 'name a networks command: ls, inspect, validate, create or rm').example('$0 networks ls', ''),
  handler: () => undefined,
};
