/**
 * Every top-level command: its usage and description (what `--help` lists), and how to load it. Only
 * the command being run is loaded: each module brings its own dependencies (the engine and execa,
 * dockerode), and a command should not pay for the others'.
 */
export interface CatalogEntry {
  readonly usage: string;
  readonly describe: string;
  /** A group's commands, for pointing a usage error at the right --help. */
  readonly subcommands?: readonly string[];
  /** The command's yargs module (typed per command, so held here as unknown). */
  readonly load: () => Promise<unknown>;
}

export type CommandName = 'cni' | 'networks' | 'daemon' | 'ls' | 'inspect' | 'gc' | 'attach' | 'detach' | 'reload' | 'runtime' | 'doctor' | 'version';

export const CATALOG: Readonly<Record<CommandName, CatalogEntry>> = {
  cni: { usage: 'cni <command>', subcommands: ['add', 'check', 'del', 'gc', 'status', 'version'], describe: 'run CNI operations by hand (the cnitool contract, and more)', load: async () => (await import('./cni.js')).cniCommand },
  networks: { usage: 'networks <command>', subcommands: ['ls', 'inspect', 'validate', 'create', 'rm'], describe: 'list, inspect, validate, create and remove CNI networks', load: async () => (await import('./networks.js')).networksCommand },
  daemon: { usage: 'daemon', describe: 'wire every container labelled dockcni.networks=… from Docker events (ADD on start, DEL on death)', load: async () => (await import('./daemon.js')).daemonCommand },
  ls: { usage: 'ls', describe: 'containers dockcni wired: networks, interfaces, addresses, state (from the state on disk)', load: async () => (await import('./state.js')).lsCommand },
  inspect: { usage: 'inspect <container>', describe: 'a container\'s attachment record and cached CNI results (id, id prefix or name)', load: async () => (await import('./state.js')).inspectCommand },
  gc: { usage: 'gc', describe: 'remove what no live container needs: stale attachments (DEL from the cache), run sandboxes, pins; then CNI GC', load: async () => (await import('./state.js')).gcCommand },
  attach: { usage: 'attach <container>', describe: 'wire a running --network=none container by hand (no sandbox); undo with `dockcni detach`', load: async () => (await import('./attach.js')).attachCommand },
  detach: { usage: 'detach <container>', describe: 'DEL every network dockcni wired on a container', load: async () => (await import('./attach.js')).detachCommand },
  reload: { usage: 'reload [containers..]', describe: 'check that every attachment is whole (rules, links, addresses) and rebuild the broken ones, keeping their addresses', load: async () => (await import('./reload.js')).reloadCommand },
  runtime: { usage: 'runtime <command>', subcommands: ['install', 'uninstall', 'status'], describe: 'dockcni as a Docker OCI runtime: every labelled container wired before its first instruction', load: async () => (await import('./runtime.js')).runtimeCommand },
  version: { usage: 'version', describe: 'versions that matter: dockcni, Node, Docker (and its API), every CNI plugin on the plugin path', load: async () => (await import('./version.js')).versionCommand },
  doctor: { usage: 'doctor', describe: 'check this node for CNI: Docker, configs, plugins, forwarding, iptables, MACs, ports, leftovers', load: async () => (await import('./doctor.js')).doctorCommand },
};
