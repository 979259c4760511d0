import type { Argv } from 'yargs';
import { InvalidInputError } from '../errors.js';
import type { EtcdOptions } from '../cluster/etcd.js';
import { resolvePaths, type PathFlags, type Paths } from '../paths.js';

/**
 * A numeric flag checked when it is parsed, naming what the user typed: `--timeout abc` or `--timeout 0`
 * must not reach a plugin call as NaN or as "no timeout".
 */
export function numeric(flag: string, { min, integer = false, unit, example }: { min: number; integer?: boolean; unit: string; example: number }): (value: unknown) => number {
  return (value) => {
    const text = String(value);
    const n = Number(text);
    if (text.trim() === '' || !Number.isFinite(n) || n < min || (integer && !Number.isInteger(n))) {
      rejected = new InvalidInputError(flag, text, `must be ${integer ? 'a whole number' : 'a number'} of ${unit}, at least ${min}`, `write e.g. ${flag} ${example}`);
      throw rejected;
    }
    return n;
  };
}

/** yargs hands a coerce error on as a plain YError; the CLI takes the original back, with its fix. */
let rejected: InvalidInputError | undefined;
export function rejectedFlag(message: string | undefined): InvalidInputError | undefined {
  return rejected !== undefined && rejected.message === message ? rejected : undefined;
}

/** Flags every command that touches CNI shares. */
export interface CniFlags extends PathFlags {
  readonly timeout: number;
  readonly trace: boolean;
}

/** Shown apart from each command's own flags in --help: where dockcni finds and keeps things. */
const PATHS_GROUP = 'Paths (shared by every command):';

/** The locations, for commands that only read state (`ls`, `inspect`). */
export function withPathFlags<T>(yargs: Argv<T>) {
  return yargs
    .option('conf-dir', { type: 'string', describe: 'CNI network configs [env NETCONFPATH; default /etc/cni/net.d]' })
    .option('cni-path', { type: 'string', describe: 'plugin directories, ":"-separated [env CNI_PATH; default /opt/cni/bin:/usr/libexec/cni:/usr/lib/cni]' })
    .option('cache-dir', { type: 'string', describe: 'libcni result cache [default /var/lib/cni]' })
    .option('state-dir', { type: 'string', describe: 'attachment records [default /var/lib/dockcni]' })
    .option('run-dir', { type: 'string', describe: 'pinned netns and locks [default /run/dockcni]' })
    .group(['conf-dir', 'cni-path', 'cache-dir', 'state-dir', 'run-dir'], PATHS_GROUP);
}

/** The locations, and how plugins are run: for every command that runs plugins. */
export function withCniFlags<T>(yargs: Argv<T>) {
  return withPathFlags(yargs)
    .option('timeout', { type: 'string', default: '120', coerce: numeric('--timeout', { min: 0.1, unit: 'seconds', example: 120 }), describe: 'seconds a plugin call may take before it is killed' })
    .option('trace', { type: 'boolean', default: false, describe: 'print every plugin call (env, stdin, stdout, exit, time) on stderr' });
}

export function pathsFrom(flags: PathFlags): Paths {
  return resolvePaths(flags);
}

export interface DockerFlags extends CniFlags {
  readonly dockerHost?: string | undefined;
  readonly podNamespace: string;
  readonly sandboxGrace: number;
}

export function withDockerFlags<T>(yargs: Argv<T>) {
  return withCniFlags(yargs)
    .option('docker-host', { type: 'string', describe: 'Docker endpoint [env DOCKER_HOST; default unix:///var/run/docker.sock]' })
    .option('pod-namespace', { type: 'string', default: 'default', describe: 'K8S_POD_NAMESPACE passed to plugins for every container' })
    .option('sandbox-grace', { type: 'string', default: '30', coerce: numeric('--sandbox-grace', { min: 0, unit: 'seconds', example: 30 }), describe: 'seconds a `run` sandbox may wait for its app before it counts as leftover' });
}

/** `-o json|text`: the same flag, with the same words, on every command that lists or inspects. */
export function withOutput<T>(yargs: Argv<T>, defaultFormat: 'json' | 'text' = 'text') {
  return yargs.option('output', { alias: 'o', choices: ['json', 'text'] as const, default: defaultFormat, describe: 'output format' });
}

/** etcd as etcdctl names its flags: for the daemon of a cluster host and the cluster commands. */
export interface EtcdFlags {
  readonly etcd?: string | undefined;
  readonly etcdCacert?: string | undefined;
  readonly etcdCert?: string | undefined;
  readonly etcdKey?: string | undefined;
}

const ETCD_GROUP = 'Cluster (etcd):';

export function withEtcdFlags<T>(yargs: Argv<T>) {
  return yargs
    .option('etcd', { type: 'string', describe: 'etcd client URLs, comma-separated: the cluster this host is part of [env DOCKCNI_ETCD_ENDPOINTS]' })
    .option('etcd-cacert', { type: 'string', describe: 'CA certificate of etcd\'s TLS (as etcdctl --cacert)' })
    .option('etcd-cert', { type: 'string', describe: 'client certificate for etcd (as etcdctl --cert)' })
    .option('etcd-key', { type: 'string', describe: 'client key for etcd (as etcdctl --key)' })
    .group(['etcd', 'etcd-cacert', 'etcd-cert', 'etcd-key'], ETCD_GROUP);
}

/** The endpoints from --etcd, else DOCKCNI_ETCD_ENDPOINTS; undefined when neither names any. */
export function etcdFrom(flags: EtcdFlags, env: NodeJS.ProcessEnv = process.env): EtcdOptions | undefined {
  const list = flags.etcd ?? env['DOCKCNI_ETCD_ENDPOINTS'];
  if (list === undefined || list.trim() === '') return undefined;
  return { endpoints: list.split(',').map((e) => e.trim()).filter((e) => e !== ''), cacert: flags.etcdCacert, cert: flags.etcdCert, key: flags.etcdKey };
}
