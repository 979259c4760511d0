import { setFlagsFromString } from 'node:v8';
import type { CommandModule } from 'yargs';
import { COMMANDS, completions, isCommand, RUN_COMMAND, subcommandsOf, type CommandName } from './command-list.js';
import { rejectedFlag } from './flags.js';
import { formatError } from './output.js';

/**
 * How each command's module is loaded: only the one being run is, since each brings its own
 * dependencies (the engine, dockerode) and a command should not pay for the others'.
 */
const LOAD: Readonly<Record<CommandName, () => Promise<CommandModule>>> = {
  cni: async () => (await import('./commands/cni.js')).cniCommand,
  networks: async () => (await import('./commands/networks.js')).networksCommand,
  daemon: async () => (await import('./commands/daemon.js')).daemonCommand as CommandModule,
  ls: async () => (await import('./commands/state.js')).lsCommand as CommandModule,
  inspect: async () => (await import('./commands/state.js')).inspectCommand as CommandModule,
  gc: async () => (await import('./commands/state.js')).gcCommand as CommandModule,
  attach: async () => (await import('./commands/attach.js')).attachCommand as CommandModule,
  detach: async () => (await import('./commands/attach.js')).detachCommand as CommandModule,
  reload: async () => (await import('./commands/reload.js')).reloadCommand as CommandModule,
  runtime: async () => (await import('./commands/runtime.js')).runtimeCommand,
  cluster: async () => (await import('./commands/cluster.js')).clusterCommand,
  version: async () => (await import('./commands/version.js')).versionCommand as CommandModule,
  doctor: async () => (await import('./commands/doctor.js')).doctorCommand as CommandModule,
};

/** The --help that covers what the user was typing: `dockcni cni add --help`, not the top level. */
function helpFor(argv: readonly string[], chosen: CommandName | undefined): string {
  if (chosen === undefined) return 'dockcni --help';
  const sub = argv.slice(1).find((a) => !a.startsWith('-'));
  const known = subcommandsOf(chosen);
  return `dockcni ${chosen}${known && sub && known.includes(sub) ? ` ${sub}` : ''} --help`;
}

/** For `dockcni cni foo` or a bare `dockcni networks`: say which commands the group has. */
function groupProblem(argv: readonly string[], chosen: CommandName | undefined): string | undefined {
  const known = chosen === undefined ? undefined : subcommandsOf(chosen);
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
  // The shell asks on every <TAB>: answered from the command list, without loading yargs.
  if (argv[0] === '--get-yargs-completions') {
    const words = argv.slice(2);
    process.stdout.write(completions(words).map((w) => `${w}\n`).join(''));
    return;
  }
  if (argv[0] === 'daemon') {
    // Set before the CLI loads: the daemon spends its life waiting on Docker and plugin processes, so
    // optimised code saves it no measurable CPU and costs resident memory (both in `npm run bench`). It
    // only stops optimisation from here on, so it is safe to set at run time.
    setFlagsFromString('--no-opt');
  }
  // Only the command being run is loaded; the others are listed by name for --help.
  const name = argv[0];
  const chosen = isCommand(name) ? name : undefined;
  const [{ default: yargs }, loaded] = await Promise.all([import('yargs'), chosen ? LOAD[chosen]() : undefined]);
  const commands = (Object.keys(COMMANDS) as CommandName[]).map((key) => (key === chosen && loaded ? loaded : { command: COMMANDS[key].usage, describe: COMMANDS[key].describe }));
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
      .command(RUN_COMMAND.usage, RUN_COMMAND.describe)
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
