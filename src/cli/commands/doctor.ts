import type { Argv, CommandModule } from 'yargs';
import { COMMANDS } from '../command-list.js';
import { runChecks, type CheckStatus } from '../../doctor/checks.js';
import { contextFrom } from '../context.js';
import { withDockerFlags, withOutput, type DockerFlags } from '../flags.js';
import { table } from '../output.js';
import { describeForeign, describeHostLeftover, describeLeftover } from '../describe.js';

interface Args extends DockerFlags {
  readonly output: 'json' | 'text';
}

const MARK: Record<CheckStatus, string> = { ok: '✓', warn: '!', fail: '✗' };

export const doctorCommand: CommandModule<object, Args> = {
  command: COMMANDS.doctor.usage,
  describe: COMMANDS.doctor.describe,
  builder: (y) => withOutput(withDockerFlags(y))
    .example('$0 doctor', 'every check, with the fix for each that fails') as unknown as Argv<Args>,
  handler: async (argv) => {
    const results = await runChecks({ ...await contextFrom(argv), describe: { leftover: describeLeftover, host: describeHostLeftover, foreign: describeForeign } });
    const failed = results.some((r) => r.status === 'fail');
    if (argv.output === 'json') process.stdout.write(`${JSON.stringify({ ok: !failed, checks: results }, null, 2)}\n`);
    else {
      process.stdout.write(`${table(results.map((r) => [MARK[r.status], r.check, r.found]))}\n`);
      const fixes = results.filter((r) => r.status !== 'ok' && r.fix);
      if (fixes.length > 0) process.stdout.write(`\nfixes:\n${fixes.map((r) => `  ${r.check}: ${r.fix}`).join('\n')}\n`);
    }
    if (failed) process.exitCode = 1;
  },
};
