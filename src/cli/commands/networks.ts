import type { Argv, CommandModule } from 'yargs';
import { CATALOG } from './catalog.js';
import { loadConfDir, pickNetwork } from '../../cni/conf-dir.js';
import { DEFAULT_NETWORK_NAME, defaultNetwork } from '../../cni/default-network.js';
import type { NetworkConfigList } from '../../cni/types.js';
import { validateConfDir, validateNetwork } from '../../cni/validate.js';
import { DockcniError } from '../../errors.js';
import { pathsFrom, withCniFlags, type CniFlags } from '../flags.js';
import { table } from '../output.js';

interface Args extends CniFlags {
  readonly output: 'json' | 'text';
  readonly network?: string;
}

const withOutput = <T>(y: Argv<T>) => withCniFlags(y).option('output', { alias: 'o', choices: ['json', 'text'] as const, default: 'text' as const, describe: 'output format' });

function summary(list: NetworkConfigList) {
  return { name: list.name, cniVersion: list.cniVersion, plugins: list.plugins.map((p) => p.type), source: list.source };
}

const ls: CommandModule<object, Args> = {
  command: 'ls',
  describe: 'list the networks of the conf dir (and the embedded default when not overridden)',
  builder: (y) => withOutput(y).example('$0 networks ls -o json', '') as unknown as Argv<Args>,
  handler: async (argv) => {
    const listing = loadConfDir(pathsFrom(argv).confDir);
    const networks = [...listing.networks];
    if (!networks.some((n) => n.name === DEFAULT_NETWORK_NAME)) networks.push(defaultNetwork());
    if (argv.output === 'json') {
      process.stdout.write(`${JSON.stringify({ networks: networks.map(summary), problems: listing.problems.map((p) => ({ file: p.file, reason: p.reason })) }, null, 2)}\n`);
      return;
    }
    process.stdout.write(`${table([['NAME', 'VERSION', 'PLUGINS', 'SOURCE'], ...networks.map((n) => [n.name, n.cniVersion, n.plugins.map((p) => p.type).join(','), n.source])])}\n`);
    for (const p of listing.problems) process.stderr.write(`warning: ${p.message} (ignored)\n`);
  },
};

const inspect: CommandModule<object, Args> = {
  command: 'inspect <network>',
  describe: 'print a network\'s conflist as dockcni will use it',
  builder: (y) => withOutput(y).positional('network', { type: 'string', demandOption: true }).example('$0 networks inspect dockcni -o json', '') as unknown as Argv<Args>,
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
  builder: (y) => withOutput(y).positional('network', { type: 'string' }).example('$0 networks validate', 'every file, every plugin') as unknown as Argv<Args>,
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

export const networksCommand: CommandModule = {
  command: CATALOG.networks.usage,
  describe: CATALOG.networks.describe,
  builder: (y) => y.command([ls, inspect, validate] as CommandModule[]).demandCommand(1, 'name a networks command: ls, inspect or validate').example('$0 networks ls', ''),
  handler: () => undefined,
};
