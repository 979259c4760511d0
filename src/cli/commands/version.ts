import { readdirSync } from 'node:fs';
import path from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { COMMANDS } from '../command-list.js';
import { describeError } from '../../errors.js';
import { packageVersion } from '../../package-root.js';
import { withDockerFlags, withOutput, type DockerFlags } from '../flags.js';
import { table } from '../output.js';

interface Args extends DockerFlags {
  readonly output: 'json' | 'text';
}

interface PluginVersion {
  readonly plugin: string;
  readonly file: string;
  readonly versions?: readonly string[];
  readonly error?: string;
}

/** The first executable of each name along the plugin path, as lookups find them. */
function pluginFiles(dirs: readonly string[]): { plugin: string; file: string }[] {
  const seen = new Map<string, string>();
  for (const dir of dirs) {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw error;
    }
    for (const name of names.sort()) if (!seen.has(name)) seen.set(name, path.join(dir, name));
  }
  return [...seen].map(([plugin, file]) => ({ plugin, file }));
}

export const versionCommand: CommandModule<object, Args> = {
  command: COMMANDS.version.usage,
  describe: COMMANDS.version.describe,
  builder: (y) => withOutput(withDockerFlags(y))
    .example('$0 version', 'dockcni, Node, Docker and every plugin on the plugin path') as unknown as Argv<Args>,
  handler: async (argv) => {
    const { contextFrom } = await import('../context.js');
    const ctx = await contextFrom(argv);
    const docker = await ctx.docker.ping().then((v) => ({ version: v.version, api: v.apiVersion }), (error: unknown) => ({ error: describeError(error) }));
    const plugins: PluginVersion[] = [];
    for (const { plugin, file } of pluginFiles(ctx.paths.cniPath)) {
      try {
        plugins.push({ plugin, file, versions: (await ctx.engine.version(plugin, '1.0.0')).supportedVersions });
      } catch (error) {
        plugins.push({ plugin, file, error: describeError(error) });
      }
    }
    const version = packageVersion();
    const report = { dockcni: version, node: process.version, docker, cniPath: ctx.paths.cniPath, plugins };
    if (argv.output === 'json') {
      process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
      return;
    }
    const dockerText = 'error' in docker ? `unreachable: ${docker.error}` : `${docker.version} (API ${docker.api})`;
    process.stdout.write(`${table([['dockcni', version], ['node', process.version], ['docker', dockerText]])}\n\nplugins on ${ctx.paths.cniPath.join(':')}:\n`);
    process.stdout.write(`${table(plugins.map((p) => [p.plugin, p.versions ? p.versions.join(', ') : `error: ${p.error ?? ''}`, p.file]))}\n`);
  },
};
