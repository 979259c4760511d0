import type { CommandOptions, CommandRun, HostCommands } from '../../src/host-commands.js';

/**
 * The routes, neighbours and FDB entries a cluster data path sets, kept as the kernel would and shown
 * back by `ip -j`/`bridge -j`: for simulated hosts, and for what a second `apply` changes. Counts the
 * commands that change something; everything else answers as an empty, healthy host.
 */
export class FakeKernel implements HostCommands {
  readonly routes = new Map<string, string>();
  readonly neighs = new Map<string, string>();
  readonly fdbs = new Map<string, string>();
  /** Commands that changed a table, in order. */
  readonly changes: string[] = [];

  async run(file: string, args: readonly string[], _options?: CommandOptions): Promise<CommandRun> {
    const ok = (stdout = '') => ({ exitCode: 0, stdout, stderr: '' });
    const line = [file, ...args].join(' ');
    if (file === 'sysctl' && args[0] === '-n') return ok('1\n');
    if (file === 'ip' && args[0] === '-j') {
      if (args[1] === 'route' && args[2] === 'show') return ok(JSON.stringify([...this.routes].map(([dst, gateway]) => ({ dst, gateway }))));
      if (args[1] === 'neigh' && args[2] === 'show') return ok(JSON.stringify([...this.neighs].map(([dst, lladdr]) => ({ dst, lladdr, state: ['PERMANENT'] }))));
      return ok('[]');
    }
    if (file === 'bridge' && args[0] === '-j') return ok(JSON.stringify([...this.fdbs].map(([mac, dst]) => ({ mac, dst }))));
    const [what, verb, key] = file === 'bridge' ? [args[0], args[1], args[2]] : [args[0], args[1], args[2]];
    const value = (flag: string) => args[args.indexOf(flag) + 1] ?? '';
    const table = what === 'route' ? this.routes : what === 'neigh' ? this.neighs : what === 'fdb' ? this.fdbs : undefined;
    if (table !== undefined && key !== undefined && (verb === 'replace' || verb === 'del')) {
      const k = what === 'route' ? key.replace(/\/32$/, '') : key;
      if (verb === 'del') table.delete(k);
      else table.set(k, value(what === 'route' ? 'via' : what === 'neigh' ? 'lladdr' : 'dst'));
      this.changes.push(line);
    }
    return ok();
  }
}
