import { DockcniError } from '../errors.js';
import type { CniCommand } from './types.js';

/** The spec's well-known error codes (SPEC.md, "Error"). */
export const CNI_ERROR_CODES: Readonly<Record<number, string>> = {
  1: 'incompatible CNI version',
  2: 'unsupported field in network configuration',
  3: 'container unknown or does not exist',
  4: 'invalid necessary environment variables',
  5: 'I/O failure',
  6: 'failed to decode content',
  7: 'invalid network configuration',
  11: 'try again later',
  50: 'plugin not available',
  51: 'plugin not available, existing containers may have limited connectivity',
};

/** How a plugin call went wrong, beyond the spec's own error JSON (`error-result`). */
export type PluginFailureKind =
  | 'error-result' | 'no-output' | 'bad-output' | 'no-result' | 'invalid-result'
  | 'signal' | 'timeout' | 'output-too-large' | 'spawn';

export interface CniPluginErrorFields {
  readonly plugin: string;
  readonly command: CniCommand;
  readonly kind: PluginFailureKind;
  readonly cniCode?: number | undefined;
  readonly msg: string;
  readonly details?: string | undefined;
  readonly stderr?: string | undefined;
  readonly exitCode?: number | undefined;
  readonly signal?: string | undefined;
  readonly cause?: unknown;
}

const CODE_FIXES: Partial<Record<number, string>> = {
  1: 'set the network\'s cniVersion to one the plugin lists in `dockcni networks validate`',
  2: 'remove the field the plugin names from the network config',
  3: 'the container or its network namespace is gone; start the container again',
  4: 'the plugin rejected its CNI_* environment; check the dockcni.args label and look with --trace',
  5: 'the plugin could not read or write its files; check disk space and its data dir',
  6: 'the plugin could not decode its input; `dockcni networks validate` checks the config',
  7: 'correct the network config; `dockcni networks validate` reports each problem',
  11: 'the plugin asked to be retried later',
  50: 'the plugin reports it is not ready; check its daemon or backing service',
  51: 'the plugin reports it is not ready; check its daemon or backing service',
};

const BROKEN_PROTOCOL = 'the plugin broke the CNI protocol; run with --trace to see its output, and report it to its author';
const KIND_FIXES: Record<Exclude<PluginFailureKind, 'error-result'>, string> = {
  'no-output': BROKEN_PROTOCOL,
  'bad-output': BROKEN_PROTOCOL,
  'no-result': BROKEN_PROTOCOL,
  'invalid-result': BROKEN_PROTOCOL,
  'output-too-large': BROKEN_PROTOCOL,
  signal: 'the plugin crashed; its stderr and --trace show where',
  timeout: 'the plugin hung past --timeout; check what it waits for, or raise --timeout',
  spawn: 'check that the plugin file is an executable built for this machine',
};

function fixFor(fields: CniPluginErrorFields): string | undefined {
  if (fields.cniCode !== undefined) return CODE_FIXES[fields.cniCode];
  return fields.kind === 'error-result' ? undefined : KIND_FIXES[fields.kind];
}

/** One typed error for every way a plugin call fails, carrying the spec's {code, msg, details}. */
export class CniPluginError extends DockcniError {
  override readonly name = 'CniPluginError';
  readonly plugin: string;
  readonly command: CniCommand;
  readonly kind: PluginFailureKind;
  readonly cniCode: number | undefined;
  readonly msg: string;
  readonly details: string | undefined;
  readonly stderr: string | undefined;
  readonly exitCode: number | undefined;
  readonly signal: string | undefined;

  constructor(fields: CniPluginErrorFields) {
    const code = fields.cniCode === undefined ? '' : ` [CNI code ${fields.cniCode}${CNI_ERROR_CODES[fields.cniCode] ? `: ${CNI_ERROR_CODES[fields.cniCode]}` : ''}]`;
    const details = fields.details ? ` (${fields.details})` : '';
    const fix = fixFor(fields);
    super('plugin-failed', `plugin "${fields.plugin}" failed (${fields.command})${code}: ${fields.msg}${details}`,
      { cause: fields.cause, ...(fix === undefined ? {} : { fix }) });
    this.plugin = fields.plugin;
    this.command = fields.command;
    this.kind = fields.kind;
    this.cniCode = fields.cniCode;
    this.msg = fields.msg;
    this.details = fields.details;
    this.stderr = fields.stderr;
    this.exitCode = fields.exitCode;
    this.signal = fields.signal;
  }

  /** Spec code 11 ("try again later"), or a plugin that hung or crashed: a later attempt may pass. */
  get retryable(): boolean {
    return this.cniCode === 11 || this.kind === 'timeout' || this.kind === 'signal';
  }
}
