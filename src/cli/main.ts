import { setFlagsFromString } from 'node:v8';
import type { CommandModule } from 'yargs';
import { formatError } from './output.js';

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
    // optimised code saves it no measurable CPU (bench: same daemon CPU over a burst of 50) and costs
    // ~10 MB of RSS. It only stops optimisation from here on, so it is safe to set at run time.
    setFlagsFromString('--no-opt');
  }
  // Loaded past the `run` check: `run` starts its sandbox sooner without yargs and the other commands.
  const [{ default: yargs }, { attachCommand, detachCommand }, { cniCommand }, { daemonCommand }, { doctorCommand }, { networksCommand }, { gcCommand, inspectCommand, lsCommand }] = await Promise.all([
    import('yargs'), import('./commands/attach.js'), import('./commands/cni.js'), import('./commands/daemon.js'), import('./commands/doctor.js'),
    import('./commands/networks.js'), import('./commands/state.js'),
  ]);
  try {
    await yargs(argv)
      .scriptName('dockcni')
      .command([cniCommand, networksCommand, daemonCommand, lsCommand, inspectCommand, gcCommand, attachCommand, detachCommand, doctorCommand] as CommandModule[])
      .demandCommand(1, 'name a command; see `dockcni --help`')
      .strictCommands()
      .strictOptions()
      .fail((message, error) => {
        if (error) process.stderr.write(`${formatError(error)}\n`);
        else process.stderr.write(`dockcni: ${message}\nrun \`dockcni --help\` for usage\n`);
        process.exitCode = error ? 1 : 2;
        throw new ReportedError(message ?? error?.message);
      })
      .help()
      .version()
      .wrap(Math.min(110, process.stdout.columns ?? 100))
      .parseAsync();
  } catch (error) {
    // Errors of async handlers in nested commands arrive here rather than in .fail().
    if (error instanceof ReportedError) return;
    process.stderr.write(`${formatError(error)}\n`);
    process.exitCode = 1;
  }
}
