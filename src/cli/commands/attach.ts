import type { Argv, CommandModule } from 'yargs';
import { COMMANDS } from '../command-list.js';
import { DockcniError, InvalidInputError } from '../../errors.js';
import { COMPOSE_PROJECT_LABEL, COMPOSE_SERVICE_LABEL } from '../../wiring/label-keys.js';
import { parseAliases, parseIps, parseMac, parseNetworkList, parsePorts } from '../../wiring/labels.js';
import { contextFrom } from '../context.js';
import { checkEngine } from '../../docker/engine-support.js';
import { holdsNetns } from '../../state/attachment.js';
import { withDockerFlags, type DockerFlags } from '../flags.js';

interface Args extends DockerFlags {
  readonly container: string;
  readonly network: string[];
  readonly ifname?: string | undefined;
  readonly ip: string[];
  readonly ip6: string[];
  readonly macAddress?: string | undefined;
  readonly publish: string[];
  readonly alias: string[];
}

/** `-p 80:80 -p 443:443` and `-p 80:80,443:443` alike, as docker users write them. */
const joined = (values: readonly string[]) => values.join(',');

export const attachCommand: CommandModule<object, Args> = {
  command: COMMANDS.attach.usage,
  describe: COMMANDS.attach.describe,
  builder: (y) => withDockerFlags(y)
    .example('$0 attach web --network front -p 8080:80', 'give the --network none container "web" eth0 on front, port 8080 mapped')
    .positional('container', { type: 'string', demandOption: true })
    .option('network', { alias: 'net', type: 'string', array: true, default: ['dockcni'], describe: 'CNI network, repeatable (eth0, eth1, …)' })
    .option('ifname', { type: 'string', describe: 'interface name, with a single --network [default eth0]' })
    .option('ip', { type: 'string', array: true, default: [], describe: 'static IPv4 address on the first network, repeatable (ips capability)' })
    .option('ip6', { type: 'string', array: true, default: [], describe: 'static IPv6 address on the first network, repeatable (ips capability)' })
    .option('mac-address', { alias: 'mac', type: 'string', describe: 'MAC of the first interface (mac capability)' })
    .option('publish', { alias: 'p', type: 'string', array: true, default: [], describe: '[IP:]HOSTPORT:CONTAINERPORT[/PROTO] on the first network, repeatable or comma-separated' })
    .option('alias', { type: 'string', array: true, default: [], describe: 'another name peers on these networks resolve it by, repeatable (docker network connect --alias)' }) as unknown as Argv<Args>,
  handler: async (argv) => {
    const ctx = await contextFrom(argv);
    await checkEngine(ctx.docker);
    const container = await ctx.docker.inspect(argv.container);
    if (!container?.running) throw new DockcniError('not-running', `container ${argv.container} is not running`, { fix: 'start it first; attach wires a live netns' });
    if (container.networkMode !== 'none') {
      throw new DockcniError('network-mode', `container ${container.name} uses network mode "${container.networkMode}"`, { fix: 'start it with --network none; CNI interfaces next to Docker\'s would fight over routes' });
    }
    const existing = await ctx.store.read(container.id);
    const wired = existing !== undefined && holdsNetns(existing);
    const names = parseNetworkList('--network', argv.network.join(','));
    if (argv.ifname !== undefined && names.length > 1) throw new InvalidInputError('--ifname', argv.ifname, 'goes with a single --network', 'attach one network at a time to name its interface');
    // On a wired container the new networks take the next free interfaces: eth1, eth2, …
    const used = new Set(existing?.networks.map((n) => n.ifName) ?? []);
    const free = Array.from({ length: 64 }, (_, i) => `eth${i}`).filter((n) => !wired || !used.has(n));
    const first: Record<string, unknown> = {};
    const ips = [...argv.ip, ...argv.ip6];
    if (ips.length > 0) first['ips'] = parseIps(argv.ip6.length > 0 ? '--ip/--ip6' : '--ip', joined(ips));
    if (argv.macAddress) first['mac'] = parseMac('--mac-address', argv.macAddress);
    if (argv.publish.length > 0) first['portMappings'] = parsePorts('--publish', joined(argv.publish));
    const service = container.labels[COMPOSE_SERVICE_LABEL];
    const aliases = [...new Set([...(service === undefined ? [] : parseAliases(COMPOSE_SERVICE_LABEL, service)), ...(argv.alias.length > 0 ? parseAliases('--alias', joined(argv.alias)) : [])])];
    const group = service === undefined ? undefined : `${container.labels[COMPOSE_PROJECT_LABEL] ?? ''}/${service}`;
    const request = { networks: names.map((network, i) => ({ network, ifName: i === 0 && argv.ifname ? argv.ifname : free[i] ?? `eth${i}`, capabilityArgs: i === 0 ? first : {}, extraArgs: [], aliases, ...(group === undefined ? {} : { group }) })) };
    const target = { ...container, containerId: container.id, origin: 'attach' as const };
    const record = wired ? await ctx.wirer.attachNetworks(target, request) : (await ctx.wirer.wire(target, request)).record;
    for (const n of record.networks) process.stdout.write(`${container.name} ${n.ifName} ${n.network} ${n.addresses.join(',')}\n`);
  },
};

export const detachCommand: CommandModule<object, Args> = {
  command: COMMANDS.detach.usage,
  describe: COMMANDS.detach.describe,
  builder: (y) => withDockerFlags(y).positional('container', { type: 'string', demandOption: true })
    .option('network', { alias: 'net', type: 'string', array: true, default: [], describe: 'DEL only this network, repeatable (the others stay) [default: all]' })
    .example('$0 detach web', 'DEL every network dockcni wired on web')
    .example('$0 detach web --network back', 'drop back only; front stays') as unknown as Argv<Args>,
  handler: async (argv) => {
    const ctx = await contextFrom(argv);
    const id = (await ctx.docker.inspect(argv.container))?.id ?? argv.container;
    if (argv.network.length === 0) {
      if ((await ctx.wirer.unwire(id)) !== 'unwired') throw new DockcniError('not-wired', `container ${argv.container} is not wired by dockcni`, { fix: 'see `dockcni ls`' });
      return;
    }
    for (const network of argv.network) {
      if (!(await ctx.wirer.detachNetwork(id, network))) throw new DockcniError('not-wired', `container ${argv.container} has no network ${network} from dockcni`, { fix: 'see `dockcni ls`' });
    }
  },
};
