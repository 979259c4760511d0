import type { Argv, CommandModule } from 'yargs';
import { COMMANDS } from '../command-list.js';
import { describeError, DockcniError } from '../../errors.js';
import { contextFrom } from '../context.js';
import { withDockerFlags, withOutput, type DockerFlags } from '../flags.js';

interface Args extends DockerFlags {
  readonly containers: string[];
  readonly dryRun: boolean;
  readonly output: 'json' | 'text';
}

export const reloadCommand: CommandModule<object, Args> = {
  command: COMMANDS.reload.usage,
  describe: COMMANDS.reload.describe,
  builder: (y) => withOutput(withDockerFlags(y))
    .positional('containers', { type: 'string', array: true, describe: 'containers (id, id prefix or name) [default: every container dockcni wired]' })
    .option('dry-run', { type: 'boolean', default: false, describe: 'report what is broken; repair nothing' })
    .example('$0 reload', 'after a firewall reload: every broken attachment rebuilt, addresses kept')
    .example('$0 reload web --dry-run', '') as unknown as Argv<Args>,
  handler: async (argv) => {
    const ctx = await contextFrom(argv);
    const healer = (await import('../../heal/healer.js')).createHealer(ctx);
    let only: Set<string> | undefined;
    if (argv.containers.length > 0) {
      only = new Set();
      for (const name of argv.containers) {
        const id = (await ctx.docker.inspect(name))?.id;
        if (id === undefined) throw new DockcniError('not-found', `no container ${name}`, { fix: 'name a running container (docker ps)' });
        only.add(id);
      }
    }
    const broken = await healer.findBroken(only);
    const outcomes = [];
    for (const b of broken) {
      if (argv.dryRun) {
        outcomes.push({ ...b, outcome: 'broken' as const });
        continue;
      }
      const started = performance.now();
      try {
        const repaired = await healer.repair(b);
        outcomes.push({ ...b, outcome: repaired ? 'repaired' as const : 'whole again' as const, tookMs: Math.round(performance.now() - started) });
      } catch (error) {
        outcomes.push({ ...b, outcome: 'failed' as const, error: describeError(error) });
      }
    }
    if (argv.output === 'json') process.stdout.write(`${JSON.stringify(outcomes, null, 2)}\n`);
    else if (outcomes.length === 0) process.stdout.write('every attachment is whole\n');
    else {
      for (const o of outcomes) {
        const how = o.outcome === 'failed' ? `failed: ${o.error}` : o.outcome === 'broken' ? 'broken' : `${o.outcome}${o.tookMs === undefined ? '' : ` in ${o.tookMs} ms`}`;
        process.stdout.write(`${o.name} ${o.network} ${o.ifName}: ${how} (missing: ${o.missing.join('; ')})\n`);
      }
    }
    if (outcomes.some((o) => o.outcome === 'failed' || o.outcome === 'broken')) process.exitCode = 1;
  },
};
