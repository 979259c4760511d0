import { createHash } from 'node:crypto';
import { COMMANDS, oneOf, subcommandsOf } from '../command-list.js';
import path from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { parseCniArgs } from '../../cni/args.js';
import { loadConfDir, pickNetwork } from '../../cni/conf-dir.js';
import type { GcAttachment, NetworkConfigList, RuntimeConf } from '../../cni/types.js';
import { InvalidInputError, NetworkNotFoundError } from '../../errors.js';
import { engineFrom } from '../engine.js';
import { pathsFrom, withCniFlags, withOutput, type CniFlags } from '../flags.js';

interface CniCommandArgs extends CniFlags {
  readonly network: string;
  readonly netns?: string;
  readonly containerId?: string | undefined;
  readonly ifname: string;
  readonly args?: string | undefined;
  readonly capArgs?: string | undefined;
  readonly output: 'json' | 'text';
}

/** cnitool's container id: `cnitool-` + the first 20 hex digits of sha512(absolute netns path). */
export function cnitoolContainerId(netnsPath: string): string {
  return `cnitool-${createHash('sha512').update(netnsPath).digest('hex').slice(0, 20)}`;
}

/** A bare name means an `ip netns` namespace; anything else is a path. */
export function resolveNetns(value: string): string {
  return value.includes('/') ? path.resolve(value) : path.join('/var/run/netns', value);
}

function parseCapArgs(text: string | undefined): Record<string, unknown> {
  if (text === undefined || text.trim() === '') return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new InvalidInputError('--cap-args', text, `not JSON (${(error as Error).message})`, 'pass an object such as \'{"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"tcp"}]}\'');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidInputError('--cap-args', text, 'must be a JSON object keyed by capability name');
  }
  return value as Record<string, unknown>;
}

function parseValidAttachments(text: string | undefined): GcAttachment[] {
  if (text === undefined) return [];
  const example = 'pass e.g. \'[{"containerID":"abc","ifname":"eth0"}]\'';
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new InvalidInputError('--valid-attachments', text, `not JSON (${(error as Error).message})`, example);
  }
  const ok = Array.isArray(value) && value.every((v) => typeof v === 'object' && v !== null && typeof (v as GcAttachment).containerID === 'string' && typeof (v as GcAttachment).ifname === 'string');
  if (!ok) throw new InvalidInputError('--valid-attachments', text, 'must be a list of {"containerID","ifname"} objects', example);
  return value as GcAttachment[];
}

function runtimeConf(argv: CniCommandArgs): RuntimeConf {
  const netns = resolveNetns(argv.netns ?? '');
  return {
    containerId: argv.containerId ?? cnitoolContainerId(netns),
    netns,
    ifName: argv.ifname,
    args: parseCniArgs(argv.args ?? process.env['CNI_ARGS'] ?? '', '--args'),
    capabilityArgs: parseCapArgs(argv.capArgs ?? process.env['CAP_ARGS']),
  };
}

function attachmentOptions<T>(yargs: Argv<T>) {
  return withOutput(withCniFlags(yargs), 'json')
    .positional('network', { type: 'string', demandOption: true, describe: 'network name (from the conf dir, or the embedded "dockcni")' })
    .positional('netns', { type: 'string', demandOption: true, describe: 'netns path, or the name of an `ip netns` namespace' })
    .option('container-id', { type: 'string', describe: 'CNI_CONTAINERID [default: cnitool-<sha512(netns)>]' })
    .option('ifname', { type: 'string', default: process.env['CNI_IFNAME'] ?? 'eth0', describe: 'CNI_IFNAME [env CNI_IFNAME]' })
    .option('args', { type: 'string', describe: 'CNI_ARGS as "K=V;K2=V2" [env CNI_ARGS]' })
    .option('cap-args', { type: 'string', describe: 'capability args as JSON [env CAP_ARGS]' });
}

function network(argv: CniFlags & { readonly network: string }): NetworkConfigList {
  return pickNetwork(loadConfDir(pathsFrom(argv).confDir), argv.network);
}

const add: CommandModule<object, CniCommandArgs> = {
  command: COMMANDS.cni.subcommands.add.usage,
  describe: COMMANDS.cni.subcommands.add.describe,
  builder: (y) => attachmentOptions(y).example('$0 cni add dockcni /var/run/netns/demo', '') as unknown as Argv<CniCommandArgs>,
  handler: async (argv) => {
    const result = await engineFrom(argv).add(network(argv), runtimeConf(argv));
    if (argv.output === 'json') process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    else for (const ip of result.ips ?? []) process.stdout.write(`${argv.ifname} ${ip.address}${ip.gateway ? ` via ${ip.gateway}` : ''}\n`);
  },
};

const check: CommandModule<object, CniCommandArgs> = {
  command: COMMANDS.cni.subcommands.check.usage,
  describe: COMMANDS.cni.subcommands.check.describe,
  builder: (y) => attachmentOptions(y).example('$0 cni check dockcni /var/run/netns/demo', '') as unknown as Argv<CniCommandArgs>,
  handler: async (argv) => {
    await engineFrom(argv).check(network(argv), runtimeConf(argv));
    if (argv.output === 'text') process.stdout.write('ok\n');
  },
};

const del: CommandModule<object, CniCommandArgs> = {
  command: COMMANDS.cni.subcommands.del.usage,
  describe: COMMANDS.cni.subcommands.del.describe,
  builder: (y) => attachmentOptions(y).example('$0 cni del dockcni /var/run/netns/demo', '') as unknown as Argv<CniCommandArgs>,
  handler: async (argv) => {
    // A network no longer configured is still DELeted from its cached config.
    let current: NetworkConfigList | undefined;
    try {
      current = network(argv);
    } catch (error) {
      if (!(error instanceof NetworkNotFoundError)) throw error;
    }
    const rt = runtimeConf(argv);
    await engineFrom(argv).del(argv.network, rt, current);
    if (argv.output === 'json') process.stdout.write(`${JSON.stringify({ deleted: { network: argv.network, containerId: rt.containerId, ifName: rt.ifName } })}\n`);
    else process.stdout.write(`deleted ${argv.network}/${rt.containerId}/${rt.ifName}\n`);
  },
};

interface NetworkOnlyArgs extends CniFlags {
  readonly network: string;
  readonly output: 'json' | 'text';
  readonly validAttachments?: string | undefined;
}

function networkOnlyOptions<T>(yargs: Argv<T>) {
  return withOutput(withCniFlags(yargs))
    .positional('network', { type: 'string', demandOption: true });
}

const gc: CommandModule<object, NetworkOnlyArgs> = {
  command: COMMANDS.cni.subcommands.gc.usage,
  describe: COMMANDS.cni.subcommands.gc.describe,
  builder: (y) => networkOnlyOptions(y)
    .option('valid-attachments', { type: 'string', describe: 'JSON [{"containerID":"…","ifname":"eth0"}] to keep [default: none]' }).example('$0 cni gc mynet --valid-attachments \'[{"containerID":"abc","ifname":"eth0"}]\'', '') as unknown as Argv<NetworkOnlyArgs>,
  handler: async (argv) => {
    const list = network(argv);
    const valid = parseValidAttachments(argv.validAttachments);
    const outcome = await engineFrom(argv).gc(list, async () => valid);
    const report = { deleted: outcome.deleted.map((e) => ({ containerId: e.containerId, ifName: e.ifName })), errors: outcome.errors.map((e) => e.message) };
    process.stdout.write(argv.output === 'json' ? `${JSON.stringify(report)}\n`
      : report.deleted.map((d) => `deleted ${argv.network}/${d.containerId}/${d.ifName}\n`).join(''));
    if (outcome.errors.length > 0) throw outcome.errors[0];
  },
};

const status: CommandModule<object, NetworkOnlyArgs> = {
  command: COMMANDS.cni.subcommands.status.usage,
  describe: COMMANDS.cni.subcommands.status.describe,
  builder: (y) => networkOnlyOptions(y).example('$0 cni status mynet', '') as unknown as Argv<NetworkOnlyArgs>,
  handler: async (argv) => {
    const list = network(argv);
    const { supported } = await engineFrom(argv).status(list);
    const text = supported ? 'ready' : `not supported: network is cniVersion ${list.cniVersion}; STATUS needs 1.1.0`;
    process.stdout.write(argv.output === 'json' ? `${JSON.stringify({ network: list.name, supported, ready: supported })}\n` : `${text}\n`);
  },
};

const version: CommandModule<object, NetworkOnlyArgs> = {
  command: COMMANDS.cni.subcommands.version.usage,
  describe: COMMANDS.cni.subcommands.version.describe,
  builder: (y) => networkOnlyOptions(y).example('$0 cni version dockcni', '') as unknown as Argv<NetworkOnlyArgs>,
  handler: async (argv) => {
    const list = network(argv);
    const engine = engineFrom(argv);
    const rows = [];
    for (const plugin of list.plugins) rows.push({ plugin: plugin.type, ...(await engine.version(plugin.type, list.cniVersion)) });
    process.stdout.write(argv.output === 'json' ? `${JSON.stringify(rows)}\n`
      : rows.map((r) => `${r.plugin}: ${r.supportedVersions.join(', ')}\n`).join(''));
  },
};

export const cniCommand: CommandModule = {
  command: COMMANDS.cni.usage,
  describe: COMMANDS.cni.describe,
  builder: (y) => y.command([add, check, del, gc, status, version] as CommandModule[]).demandCommand(1, `name a cni command: ${oneOf(subcommandsOf('cni') ?? [])}`)
    .example('$0 cni add dockcni /var/run/netns/demo --trace', 'ADD the embedded network to an ip netns, showing every plugin call'),
  handler: () => undefined,
};
