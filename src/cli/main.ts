import { setFlagsFromString } from 'node:v8';
import type { CommandModule } from 'yargs';
import { CATALOG, type CatalogEntry, type CommandName } from './commands/catalog.js';
import { rejectedFlag } from './flags.js';
import { formatError } from './output.js';

/** The --help that covers what the user was typing: `dockcni cni add --help`, not the top level. */
function helpFor(argv: readonly string[], chosen: CommandName | undefined): string {
  if (chosen === undefined) return 'dockcni --help';
  const sub = argv.slice(1).find((a) => !a.startsWith('-'));
  const known = CATALOG[chosen].subcommands;
  return `dockcni ${chosen}${known && sub && known.includes(sub) ? ` ${sub}` : ''} --help`;
}

/** For `dockcni cni foo` or a bare `dockcni networks`: say which commands the group has. */
function groupProblem(argv: readonly string[], chosen: CommandName | undefined): string | undefined {
  const known = chosen === undefined ? undefined : CATALOG[chosen].subcommands;
  if (chosen === undefined || known === undefined) return undefined;
  const sub = argv.slice(1).find((a) => !a.startsWith('-'));
  if (sub === undefined) return `name a ${chosen} command: ${known.join(', ')}`;
  return known.includes(sub) ? undefined : `unknown ${chosen} command "${sub}": use one of ${known.join(', ')}`;
}

/** Thrown from `.fail` after the report is written, so nothing reports it twice. */
class ReportedError extends Error {}

/** Builds the CLI; every failure reaches `.fail` once and becomes one report and an exit status. */
export async function main(argv: string[] = process.argv.slice(2)): Promise<void> {
  if (argv[0] === 'run') {
    const { runCommand } = await import('./commands/run.js');
    process.exitCode = await runCommand(argv.slice(1));
    return;
  }
  if (argv[0] === 'daemon') {
    // Set before the CLI loads: the daemon spends its life waiting on Docker and plugin processes, so
    // optimised code saves it no measurable CPU and costs resident memory (both in `npm run bench`). It
    // only stops optimisation from here on, so it is safe to set at run time.
    setFlagsFromString('--no-opt');
  }
  // Loaded past the `run` check: `run` starts its sandbox sooner without yargs and the other commands.
  // Only the command being run is loaded; the others are listed by name for --help.
  const name = argv[0];
  const chosen = name !== undefined && Object.hasOwn(CATALOG, name) ? name as CommandName : undefined;
  const [{ default: yargs }, loaded] = await Promise.all([import('yargs'), chosen ? CATALOG[chosen].load() : undefined]);
  const commands = (Object.entries(CATALOG) as [CommandName, CatalogEntry][]).map(([key, entry]) => (key === chosen && loaded ? loaded as CommandModule : { command: entry.usage, describe: entry.describe }));
  // yargs may hand one failure to .fail() more than once (nested commands, async handlers): one report.
  let reported = false;
  const report = (text: string, code: number) => {
    if (reported) return;
    reported = true;
    process.stderr.write(`${text}\n`);
    process.exitCode = code;
  };
  try {
    await yargs(argv)
      .scriptName('dockcni')
      // Shown in the help only: `run` is parsed by hand above, before yargs loads.
      .command('run [docker run flags] IMAGE [COMMAND…]', 'docker run with CNI networking in place before the app starts (see `dockcni run --help`)')
      .command(commands as CommandModule[])
      .completion('completion', 'print a bash completion script (dockcni completion >> ~/.bashrc)')
      .demandCommand(1, 'name a command; see `dockcni --help`')
      .strictCommands()
      .strictOptions()
      .example('$0 run --rm -p 8080:80 IMAGE', 'docker run, wired on the embedded dockcni network')
      .example('$0 doctor', 'is this host ready for CNI?')
      .fail((message, error) => {
        if (error) report(formatError(rejectedFlag(error.message) ?? error), 1);
        else report(`dockcni: ${groupProblem(argv, chosen) ?? message}\nrun \`${helpFor(argv, chosen)}\` for usage`, 2);
        throw new ReportedError(message ?? error?.message);
      })
      .help()
      .version()
      .wrap(Math.min(110, process.stdout.columns ?? 100))
      .parseAsync();
  } catch (error) {
    // Errors of async handlers in nested commands arrive here rather than in .fail().
    if (!(error instanceof ReportedError)) report(formatError(error), 1);
  }
}
