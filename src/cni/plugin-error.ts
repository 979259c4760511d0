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

const FIXES: Partial<Record<number, string>> = {
  1: 'set the network\'s cniVersion to one the plugin lists in `dockcni networks validate`',
  7: 'correct the network config; `dockcni networks validate` reports each problem',
  11: 'the plugin asked to be retried later',
  50: 'the plugin reports it is not ready; check its daemon or backing service',
  51: 'the plugin reports it is not ready; check its daemon or backing service',
};

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
    const fix = fields.cniCode === undefined ? undefined : FIXES[fields.cniCode];
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

  /** Spec code 11: the caller may retry the operation later. */
  get retryable(): boolean {
    return this.cniCode === 11;
  }
}
