import type { Argv, CommandModule } from 'yargs';
import { COMMANDS } from '../command-list.js';
import { ResultCache } from '../../cni/result-cache.js';
import { describeForeign, describeHostLeftover, describeLeftover } from '../describe.js';
import { DockcniError } from '../../errors.js';
import type { CleanupError } from '../../gc/collector.js';
import { AttachmentStore } from '../../state/attachment-store.js';
import { describeFailure } from '../../state/attachment.js';
import { pathsFrom, withDockerFlags, withOutput, withPathFlags, type DockerFlags } from '../flags.js';
import type { PathFlags } from '../../paths.js';
import { table } from '../output.js';

interface LsArgs extends PathFlags {
  readonly output: 'json' | 'text';
  readonly quiet: boolean;
  readonly container?: string;
}


/** `ls` reads the state on disk only: it works while the daemon (or Docker) is down. */
export const lsCommand: CommandModule<object, LsArgs> = {
  command: COMMANDS.ls.usage,
  describe: COMMANDS.ls.describe,
  builder: (y) => withOutput(withPathFlags(y)).option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'container ids only, one per line (as docker ps -q)' })
    .example('$0 ls', '').example('$0 ls -q | xargs -r -n1 dockcni detach', 'detach everything dockcni wired').example('$0 ls -o json', '') as unknown as Argv<LsArgs>,
  handler: async (argv) => {
    const records = await new AttachmentStore(pathsFrom(argv).stateDir).list();
    if (argv.quiet) {
      process.stdout.write(records.map((r) => `${r.containerId}\n`).join(''));
      return;
    }
    if (argv.output === 'json') {
      process.stdout.write(`${JSON.stringify(records, null, 2)}\n`);
      return;
    }
    const rows = records.flatMap((r) => r.networks.map((n) => [
      r.containerId.slice(0, 12), r.name, n.network, n.ifName, n.addresses.join(',') || '-', n.state === 'failed' ? `failed: ${n.failure === undefined ? '' : describeFailure(n.failure)}` : `${n.state}${n.repairs ? ` (repaired ${n.repairs}×, last ${n.lastRepair ?? '?'})` : ''}`,
    ]));
    process.stdout.write(`${table([['CONTAINER', 'NAME', 'NETWORK', 'IFACE', 'ADDRESSES', 'STATE'], ...rows])}\n`);
  },
};

export const inspectCommand: CommandModule<object, LsArgs> = {
  command: COMMANDS.inspect.usage,
  describe: COMMANDS.inspect.describe,
  // JSON by default, as `docker inspect`.
  builder: (y) => withOutput(withPathFlags(y), 'json')
    .positional('container', { type: 'string', demandOption: true }).example('$0 inspect web', '').example('$0 inspect web -o text', '') as unknown as Argv<LsArgs>,
  handler: async (argv) => {
    const paths = pathsFrom(argv);
    const wanted = argv.container ?? '';
    const records = (await new AttachmentStore(paths.stateDir).list()).filter((r) => r.name === wanted || (wanted.length >= 4 && r.containerId.startsWith(wanted)));
    if (records.length !== 1) {
      throw new DockcniError('not-found', records.length === 0 ? `no container ${JSON.stringify(wanted)} is wired by dockcni` : `${JSON.stringify(wanted)} matches ${records.length} containers`, { fix: 'see `dockcni ls`' });
    }
    const record = records[0]!;
    const cache = new ResultCache(paths.cacheDir);
    const results = await Promise.all(record.networks.map(async (n) => ({ network: n.network, ifName: n.ifName, cached: await cache.read(n.network, record.containerId, n.ifName) })));
    if (argv.output === 'text') {
      const rows = record.networks.map((n) => [n.network, n.ifName, n.addresses.join(',') || '-', n.mac ?? '-', n.state]);
      process.stdout.write(`${record.name} (${record.containerId}), wired by ${record.origin}, netns ${record.netns || '-'}\n${table([['NETWORK', 'IFACE', 'ADDRESSES', 'MAC', 'STATE'], ...rows])}\n`);
      return;
    }
    process.stdout.write(`${JSON.stringify({ ...record, results: results.map((r) => ({ network: r.network, ifName: r.ifName, result: r.cached?.result ?? null })) }, null, 2)}\n`);
  },
};

interface GcArgs extends DockerFlags {
  readonly dryRun: boolean;
  readonly output: 'json' | 'text';
}


export const gcCommand: CommandModule<object, GcArgs> = {
  command: COMMANDS.gc.usage,
  describe: COMMANDS.gc.describe,
  builder: (y) => withOutput(withDockerFlags(y)).option('dry-run', { type: 'boolean', default: false, describe: 'only list what would be removed' })
    .example('$0 gc --dry-run', 'what would go, and why') as unknown as Argv<GcArgs>,
  handler: async (argv) => {
    // Docker, the engine and the collector load only here: `ls` and `inspect` read files.
    const ctx = await (await import('../context.js')).contextFrom(argv);
    const inventory = await ctx.collector.scan();
    // Container leftovers first: their DEL releases reservations and chains the plugins' own way.
    const errors = argv.dryRun ? [] : await ctx.collector.remove(inventory.leftovers);
    const gc = argv.dryRun ? { deleted: [], errors: [] } : await ctx.collector.cniGc();
    errors.push(...gc.errors);
    // After the container leftovers are gone, so that only what their DELs did not release remains.
    const host = await ctx.collector.hostLeftovers();
    if (!argv.dryRun) errors.push(...(await ctx.collector.removeHost(host)));
    // By code, not by class: `ls` loads this module too, and should not load the collector with it.
    const failed = new Set<unknown>(errors.filter((e): e is CleanupError => e instanceof DockcniError && e.code === 'cleanup-failed' && 'item' in e).map((e) => e.item));
    const verb = (item: unknown) => (argv.dryRun ? 'would remove' : failed.has(item) ? 'could not remove' : 'removed');
    const lines = [
      ...inventory.leftovers.map((l) => `${verb(l)} ${describeLeftover(l)}`),
      ...gc.deleted.map((e) => `${verb(e)} attachment ${e.networkName}/${e.containerId}/${e.ifName} (CNI GC: no record holds it)`),
      ...host.map((h) => `${verb(h)} ${describeHostLeftover(h)}`),
    ];
    if (argv.output === 'json') {
      process.stdout.write(`${JSON.stringify({
        dryRun: argv.dryRun, leftovers: inventory.leftovers, gcDeleted: gc.deleted.map((e) => ({ network: e.networkName, containerId: e.containerId, ifName: e.ifName })), host,
        leftAlone: inventory.skippedCache, otherRuntimes: inventory.foreignCache.length, errors: errors.map((e) => e.message),
      }, null, 2)}\n`);
    } else {
      for (const line of lines) process.stdout.write(`${line}\n`);
      for (const s of inventory.skippedCache) process.stdout.write(`left alone ${s.path}: ${s.reason}\n`);
      if (inventory.foreignCache.length > 0) process.stdout.write(`left alone ${describeForeign(inventory.foreignCache)}\n`);
      if (lines.length === 0) process.stdout.write('nothing to remove\n');
    }
    if (errors.length > 0) throw new DockcniError('gc-failed', `${errors.length} item(s) could not be removed: ${errors.map((e) => e.message).join('; ')}`);
  },
};
