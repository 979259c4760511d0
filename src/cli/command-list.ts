/**
 * Every command and subcommand of the CLI, as data: what `--help` lists, what usage errors point to,
 * what shell completion offers, and what each command module declares. Nothing here is loaded code:
 * main.ts loads only the module of the command being run (`cli/commands/`), and that module reads its
 * usage and description from here.
 */
export interface CommandInfo {
  /** yargs usage: the name and its positionals. */
  readonly usage: string;
  readonly describe: string;
}

export interface GroupInfo extends CommandInfo {
  readonly subcommands: Readonly<Record<string, CommandInfo>>;
}

export const COMMANDS = {
  cni: {
    usage: 'cni <command>', describe: 'run CNI operations by hand (the cnitool contract, and more)',
    subcommands: {
      add: { usage: 'add <network> <netns>', describe: 'ADD the network\'s plugin chain to a netns; prints the result' },
      check: { usage: 'check <network> <netns>', describe: 'CHECK an attachment against its cached result' },
      del: { usage: 'del <network> <netns>', describe: 'DEL an attachment (with the config cached at ADD time when there is one)' },
      gc: { usage: 'gc <network>', describe: 'DEL cached attachments not listed as valid, then send CNI GC (1.1.0 lists)' },
      status: { usage: 'status <network>', describe: 'CNI STATUS of every plugin of a 1.1.0 network' },
      version: { usage: 'version <network>', describe: 'VERSION of every plugin of a network' },
    },
  },
  networks: {
    usage: 'networks <command>', describe: 'list, inspect, validate, create and remove CNI networks',
    subcommands: {
      ls: { usage: 'ls', describe: 'list the networks of the conf dir (and the embedded default when not overridden)' },
      inspect: { usage: 'inspect <network>', describe: 'print a network\'s conflist as dockcni will use it' },
      validate: { usage: 'validate [network]', describe: 'check every file and plugin (found, answering VERSION with the network\'s version); reports every problem' },
      create: { usage: 'create <network>', describe: 'a new network: a conflist in the conf dir with the chain a Docker host needs, or with --scope cluster one network across every host of the cluster' },
      rm: { usage: 'rm <networks..>', describe: 'remove networks networks create wrote; refuses while containers are attached unless --force' },
    },
  },
  daemon: { usage: 'daemon', describe: 'wire every container labelled dockcni.networks=… from Docker events (ADD on start, DEL on death)' },
  ls: { usage: 'ls', describe: 'containers dockcni wired: networks, interfaces, addresses, state (from the state on disk)' },
  inspect: { usage: 'inspect <container>', describe: 'a container\'s attachment record and cached CNI results (id, id prefix or name)' },
  gc: { usage: 'gc', describe: 'remove what no live container needs: stale attachments (DEL from the cache), run sandboxes, pins; then CNI GC' },
  attach: { usage: 'attach <container>', describe: 'wire a running --network=none container by hand (no sandbox); undo with `dockcni detach`' },
  detach: { usage: 'detach <container>', describe: 'DEL every network dockcni wired on a container' },
  reload: { usage: 'reload [containers..]', describe: 'check that every attachment is whole (rules, links, addresses) and rebuild the broken ones, keeping their addresses' },
  runtime: {
    usage: 'runtime <command>', describe: 'dockcni as a Docker OCI runtime: every labelled container wired before its first instruction',
    subcommands: {
      install: { usage: 'install', describe: 'register dockcni as an OCI runtime in daemon.json (every other key kept, a backup written) and reload dockerd' },
      uninstall: { usage: 'uninstall', describe: 'remove the runtime from daemon.json (and default-runtime if it was it), keeping everything else, and reload dockerd' },
      status: { usage: 'status', describe: 'whether the runtime is in daemon.json, listed by dockerd, and answering; exit 1 when not all three' },
    },
  },
  cluster: {
    usage: 'cluster <command>', describe: 'the hosts, blocks and networks of the cluster in etcd (cluster networks span Docker hosts)',
    subcommands: {
      status: { usage: 'status', describe: 'hosts (alive or lost, address, last seen), their blocks and static addresses, the cluster networks' },
      forget: { usage: 'forget <host>', describe: 'release a lost host\'s blocks, static addresses and names (refused while it is alive)' },
    },
  },
  version: { usage: 'version', describe: 'versions that matter: dockcni, Node, Docker (and its API), every CNI plugin on the plugin path' },
  doctor: { usage: 'doctor', describe: 'check this node for CNI: Docker, configs, plugins, forwarding, iptables, MACs, ports, leftovers' },
} as const satisfies Readonly<Record<string, CommandInfo | GroupInfo>>;

export type CommandName = keyof typeof COMMANDS;

/** Parsed by hand before yargs loads (cli/commands/run.ts); listed in the help like the others. */
export const RUN_COMMAND: CommandInfo = { usage: 'run [docker run flags] IMAGE [COMMAND…]', describe: 'docker run with CNI networking in place before the app starts (see `dockcni run --help`)' };

export const isCommand = (name: string | undefined): name is CommandName => name !== undefined && Object.hasOwn(COMMANDS, name);

/** A group's subcommand names; undefined for a command without. */
export function subcommandsOf(name: CommandName): readonly string[] | undefined {
  const info: CommandInfo | GroupInfo = COMMANDS[name];
  return 'subcommands' in info ? Object.keys(info.subcommands) : undefined;
}

/** "a, b or c": how a usage error lists a group's commands. */
export function oneOf(names: readonly string[]): string {
  return names.length <= 1 ? names.join('') : `${names.slice(0, -1).join(', ')} or ${names.at(-1) ?? ''}`;
}

/**
 * What the shell may complete after the words typed so far: commands, then a group's subcommands.
 * Flags are left to the shell's default completion (file names), as they depend on the command.
 */
export function completions(words: readonly string[]): string[] {
  const [first, second] = words;
  if (words.length <= 1) return ['run', ...Object.keys(COMMANDS), 'completion'].filter((c) => c.startsWith(first ?? ''));
  const subs = isCommand(first) ? subcommandsOf(first) : undefined;
  if (words.length === 2 && subs !== undefined) return subs.filter((s) => s.startsWith(second ?? ''));
  return [];
}
