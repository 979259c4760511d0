import path from 'node:path';
import { isValidNetworkName } from '../cni/conf.js';
import { InvalidInputError } from '../errors.js';
import type { PathFlags } from '../paths.js';
import { commaSet } from '../wiring/labels.js';

/**
 * One call of the runtime, as Docker's shim makes it: dockcni's own options (daemon.json's
 * `runtimeArgs`, as --dockcni-NAME=VALUE), then runc's global flags, the command, its flags and the
 * container id. Only what dockcni acts on is kept; runc gets the command line as it came.
 */
export interface Invocation {
  readonly options: RuntimeOptions;
  /** runc's command line without dockcni's options, for the calls dockcni makes itself (delete --force). */
  readonly runcGlobal: readonly string[];
  readonly command: string;
  readonly containerId: string;
  /** runc's --log file: where runc, and so dockcni, reports what Docker shows the user. */
  readonly logFile?: string | undefined;
  readonly logFormat: 'json' | 'text';
  /** create only. */
  readonly bundle?: string | undefined;
  readonly pidFile?: string | undefined;
  /** --dockcni-… words that are not options: reported through runc's log, where Docker shows them. */
  readonly unknownOptions: readonly string[];
}

/** What `dockcni runtime install` writes into runtimeArgs; each maps to the CLI flag of the same name. */
export interface RuntimeOptions extends PathFlags {
  readonly dockerHost?: string | undefined;
  /** Docker's data root: bin/dockcni-runtime reads containers/<id>/config.v2.json there. */
  readonly dockerRoot?: string | undefined;
  readonly timeout?: string | undefined;
  readonly podNamespace?: string | undefined;
  readonly allowNetworks?: string | undefined;
  readonly allowArgs?: string | undefined;
  /** A file that gets one JSON line per wiring and teardown: its time since the process started, and the plugins' share. */
  readonly timingFile?: string | undefined;
  /** Read by bin/dockcni-runtime only. */
  readonly node?: string | undefined;
  readonly runc?: string | undefined;
}

export const OPTION_NAMES = {
  'conf-dir': 'confDir', 'cni-path': 'cniPath', 'cache-dir': 'cacheDir', 'state-dir': 'stateDir', 'run-dir': 'runDir', 'docker-host': 'dockerHost', 'docker-root': 'dockerRoot',
  timeout: 'timeout', 'pod-namespace': 'podNamespace', 'allow-networks': 'allowNetworks', 'allow-args': 'allowArgs', 'timing-file': 'timingFile', node: 'node', runc: 'runc',
} as const satisfies Record<string, keyof RuntimeOptions>;

const PREFIX = '--dockcni-';
/** runc's global flags that take a value in the next word (runc 1.1 `runc --help`). */
export const GLOBAL_WITH_VALUE = new Set(['--root', '--log', '--log-format', '--criu', '--rootless']);
/** `runc create` flags that take a value in the next word. */
const CREATE_WITH_VALUE = new Set(['--bundle', '-b', '--console-socket', '--pid-file', '--preserve-fds']);

/** The unknown --dockcni-… words, as the error that fails the runtime's work. */
export function optionsProblem(invocation: Invocation): InvalidInputError | undefined {
  if (invocation.unknownOptions.length === 0) return undefined;
  return new InvalidInputError('runtime option', invocation.unknownOptions.join(' '), `not one of ${Object.keys(OPTION_NAMES).map((f) => `${PREFIX}${f}=…`).join(', ')}`, 'correct runtimeArgs in daemon.json, or run `dockcni runtime install` again');
}

/**
 * dockerd writes a shell wrapper for a runtime with runtimeArgs and pastes them into it unquoted: a
 * space splits an option, and a shell character runs as root on every container start. No quoting
 * survives that, so a value holds none of them.
 */
const SCRIPT_SAFE = /^[A-Za-z0-9_./:,=@%+-]*$/;
const PATH_OPTIONS = new Set<keyof RuntimeOptions>(['confDir', 'cacheDir', 'stateDir', 'runDir', 'dockerRoot', 'timingFile', 'node', 'runc']);

/** One option's value as runtimeArgs may carry it, checked against what the flag accepts. */
function checkedValue(flag: string, key: keyof RuntimeOptions, raw: string): string {
  const bad = (reason: string, fix: string): never => { throw new InvalidInputError(`--${flag}`, raw, reason, fix); };
  const value = key === 'allowNetworks' || key === 'allowArgs' ? [...commaSet(raw)].join(',') : raw;
  if (!SCRIPT_SAFE.test(value)) bad('dockerd puts runtime options into a shell script unquoted: white space or shell characters would split it or run as root', 'use only letters, digits and _ . / : , = @ % + - (a path without spaces)');
  if (PATH_OPTIONS.has(key) && !path.isAbsolute(value)) bad('not an absolute path', 'give the full path: the runtime runs from dockerd\'s working directory');
  if (key === 'cniPath' && value.split(':').some((d) => !path.isAbsolute(d))) bad('not a list of absolute directories', 'write e.g. /opt/cni/bin:/usr/lib/cni');
  if (key === 'allowNetworks') for (const n of commaSet(value)) if (!isValidNetworkName(n)) bad(`${JSON.stringify(n)} is not a network name`, 'list names as `dockcni networks ls` shows them, comma-separated');
  if (key === 'allowArgs') for (const k of commaSet(value)) if (!/^[A-Za-z0-9_-]+$/.test(k)) bad(`${JSON.stringify(k)} is not a CNI_ARGS key`, 'list keys such as FOO,BAR, comma-separated');
  return value;
}

/** `runtimeArgs` for the options given: the inverse of the parsing below, each value checked. */
export function runtimeArgs(options: RuntimeOptions): string[] {
  return Object.entries(OPTION_NAMES).flatMap(([flag, key]) => {
    const value = options[key];
    return value === undefined ? [] : [`${PREFIX}${flag}=${checkedValue(flag, key, value)}`];
  });
}

export function parseInvocation(argv: readonly string[]): Invocation {
  const options: Record<string, string> = {};
  const unknownOptions: string[] = [];
  let i = 0;
  for (; i < argv.length && argv[i]!.startsWith(PREFIX); i++) {
    const word = argv[i]!;
    const eq = word.indexOf('=');
    const flag = word.slice(PREFIX.length, eq < 0 ? undefined : eq);
    const key = (OPTION_NAMES as Record<string, string>)[flag];
    if (key === undefined || eq < 0) unknownOptions.push(word);
    else options[key] = word.slice(eq + 1);
  }
  const runc = argv.slice(i);
  const global: string[] = [];
  let j = 0;
  let logFile: string | undefined;
  let logFormat: 'json' | 'text' = 'text';
  for (; j < runc.length && runc[j]!.startsWith('-'); j++) {
    const flag = runc[j]!;
    const [name, inline] = flag.includes('=') ? [flag.slice(0, flag.indexOf('=')), flag.slice(flag.indexOf('=') + 1)] : [flag, undefined];
    global.push(flag);
    const value = inline ?? (GLOBAL_WITH_VALUE.has(name) ? runc[++j] : undefined);
    if (inline === undefined && GLOBAL_WITH_VALUE.has(name) && value !== undefined) global.push(value);
    if (name === '--log') logFile = value;
    if (name === '--log-format' && value === 'json') logFormat = 'json';
  }
  const command = runc[j] ?? '';
  const rest = runc.slice(j + 1);
  let bundle: string | undefined;
  let pidFile: string | undefined;
  const operands: string[] = [];
  for (let k = 0; k < rest.length; k++) {
    const word = rest[k]!;
    if (!word.startsWith('-')) {
      operands.push(word);
      continue;
    }
    const [name, inline] = word.includes('=') ? [word.slice(0, word.indexOf('=')), word.slice(word.indexOf('=') + 1)] : [word, undefined];
    const value = inline ?? (command === 'create' && CREATE_WITH_VALUE.has(name) ? rest[++k] : undefined);
    if (name === '--bundle' || name === '-b') bundle = value;
    if (name === '--pid-file') pidFile = value;
  }
  return { options, runcGlobal: global, command, containerId: operands.at(-1) ?? '', logFile, logFormat, bundle, pidFile, unknownOptions };
}
