import type { Argv, CommandModule } from 'yargs';
import { COMMANDS, oneOf, subcommandsOf } from '../command-list.js';
import { DockcniError } from '../../errors.js';
import { etcdFrom, withEtcdFlags, withOutput, type EtcdFlags } from '../flags.js';
import { table } from '../output.js';
import type { EtcdCluster } from '../../cluster/etcd.js';

interface Args extends EtcdFlags {
  readonly output: 'json' | 'text';
  readonly host?: string;
}

/** etcd for a cluster command: its flags, else DOCKCNI_ETCD_ENDPOINTS; its client loads only here. */
export async function etcdFor(flags: EtcdFlags): Promise<EtcdCluster> {
  const options = etcdFrom(flags);
  if (options === undefined) throw new DockcniError('invalid-input', 'no etcd to ask: a cluster lives in etcd', { fix: 'give --etcd http://HOST:2379[,…] or set DOCKCNI_ETCD_ENDPOINTS' });
  const { EtcdCluster: Etcd } = await import('../../cluster/etcd.js');
  return new Etcd(options);
}

const status: CommandModule<object, Args> = {
  command: COMMANDS.cluster.subcommands.status.usage,
  describe: COMMANDS.cluster.subcommands.status.describe,
  builder: (y) => withOutput(withEtcdFlags(y)).example('$0 cluster status --etcd http://10.0.0.1:2379', '') as unknown as Argv<Args>,
  handler: async (argv) => {
    const etcd = await etcdFor(argv);
    try {
      const s = await etcd.snapshot();
      const hostNames = [...new Set([...s.hosts.keys(), ...s.seen.keys(), ...[...s.blocks.values()].flatMap((m) => [...m.values()].map((b) => b.host))])].sort();
      const hosts = hostNames.map((name) => {
        const alive = s.hosts.get(name);
        const blocks = [...s.blocks].flatMap(([net, m]) => [...m].filter(([, b]) => b.host === name).map(([block]) => `${net}:${block}`));
        const statics = [...s.statics].flatMap(([net, m]) => [...m].filter(([, c]) => c.host === name).map(([ip, c]) => `${net}:${ip} (${c.container})`));
        const containers = [...s.names.values()].reduce((n, m) => n + [...m.values()].filter((x) => x.host === name).length, 0);
        return { name, state: alive ? 'alive' : 'lost', address: alive?.address ?? s.seen.get(name)?.address ?? '', lastSeen: alive ? 'now' : s.seen.get(name)?.lastSeen ?? 'unknown', blocks, statics, containers };
      });
      const networks = [...s.networks.values()];
      if (argv.output === 'json') {
        process.stdout.write(`${JSON.stringify({ hosts, networks }, null, 2)}\n`);
        return;
      }
      process.stdout.write(`${table([['HOST', 'STATE', 'ADDRESS', 'LAST SEEN', 'CONTAINERS', 'BLOCKS', 'STATIC'], ...hosts.map((h) => [h.name, h.state, h.address, h.lastSeen, String(h.containers), h.blocks.join(',') || '-', h.statics.join(',') || '-'])])}\n\n`);
      process.stdout.write(`${table([['NETWORK', 'SUBNET', 'DYNAMIC RANGE', 'BLOCKS OF', 'BACKEND', 'VNI', 'MTU'], ...networks.map((n) => [n.name, n.subnet, n.ipRange, `/${n.blockSize}`, n.backend, String(n.vni), n.mtu === undefined ? 'underlay' : String(n.mtu)])])}\n`);
    } finally {
      etcd.close();
    }
  },
};

const forget: CommandModule<object, Args> = {
  command: COMMANDS.cluster.subcommands.forget.usage,
  describe: COMMANDS.cluster.subcommands.forget.describe,
  builder: (y) => withOutput(withEtcdFlags(y)).positional('host', { type: 'string', demandOption: true }).example('$0 cluster forget node-3', 'its blocks go back to the network\'s range') as unknown as Argv<Args>,
  handler: async (argv) => {
    const host = argv.host ?? '';
    const etcd = await etcdFor(argv);
    try {
      const s = await etcd.snapshot();
      if (s.hosts.has(host)) throw new DockcniError('already-exists', `host ${host} is alive (its presence lease holds): nothing forgotten`, { fix: 'forget only a lost host (dockcni cluster status says lost); stop its dockcni first' });
      const known = s.seen.has(host) || [...s.blocks.values()].some((m) => [...m.values()].some((b) => b.host === host));
      if (!known) throw new DockcniError('not-found', `no host ${host} in the cluster`, { fix: 'see `dockcni cluster status`' });
      const released = await etcd.forgetHost(host, s);
      process.stdout.write(argv.output === 'json' ? `${JSON.stringify({ host, released }, null, 2)}\n` : `forgot ${host}: ${released} key(s) released (blocks, static addresses, names)\n`);
    } finally {
      etcd.close();
    }
  },
};

export const clusterCommand: CommandModule = {
  command: COMMANDS.cluster.usage,
  describe: COMMANDS.cluster.describe,
  builder: (y) => y.command([status, forget] as CommandModule[]).demandCommand(1, `name a cluster command: ${oneOf(subcommandsOf('cluster') ?? [])}`).example('$0 cluster status', ''),
  handler: () => undefined,
};
