import type { Writable } from 'node:stream';
import { CniPluginError } from '../cni/plugin-error.js';
import type { TraceRecord, TraceSink } from '../cni/invoke.js';
import { DockcniError, fixOf } from '../errors.js';

/** The CLI's terminal side: trace blocks, error reports, tables and the TTY-only spinner. */

function indent(text: string): string {
  return text.trimEnd().split('\n').map((l) => `    ${l}`).join('\n');
}

function pretty(text: string): string {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

export function formatTrace(record: TraceRecord): string {
  const env = Object.entries(record.env).map(([k, v]) => `${k}=${v}`).join('\n');
  const status = record.signal !== undefined ? `killed by ${record.signal}` : `exit ${record.exitCode ?? '?'}`;
  const lines = [
    `── ${record.command} ${record.plugin} (${record.file}) ──`,
    '  env:', indent(env),
    '  stdin:', indent(pretty(record.stdin)),
    '  stdout:', indent(record.stdout === '' ? '(empty)' : pretty(record.stdout)),
  ];
  if (record.stderr.trim() !== '') lines.push('  stderr:', indent(record.stderr));
  lines.push(`  ${status} in ${record.durationMs.toFixed(1)} ms`, '');
  return lines.join('\n');
}

export function traceTo(stream: Writable): TraceSink {
  return (record) => stream.write(`${formatTrace(record)}\n`);
}

/** The user-facing report of any error: message, plugin details, the fix. */
export function formatError(error: unknown): string {
  if (!(error instanceof Error)) return `dockcni: ${String(error)}`;
  const denied = deniedPath(error);
  if (denied !== undefined && process.getuid?.() !== 0) {
    return `dockcni: permission denied: ${denied}\n  fix: run dockcni as root (sudo dockcni …): it manages network namespaces, iptables and CNI state under /var/lib and /run`;
  }
  const lines = [`dockcni: ${error.message}`];
  if (error instanceof CniPluginError && error.stderr && error.kind !== 'no-output') {
    lines.push(`  plugin stderr: ${error.stderr.trim().split('\n').slice(0, 5).join('\n    ')}`);
  }
  if (error instanceof DockcniError) {
    for (const r of error.rollbackErrors) lines.push(`  cleanup after the failure also failed: ${r.message}`);
  }
  const fix = fixOf(error);
  if (fix !== undefined) lines.push(`  fix: ${fix}`);
  else if (!(error instanceof DockcniError) && error.cause instanceof Error) lines.push(`  cause: ${error.cause.message}`);
  return lines.join('\n');
}

/** The path of an EACCES/EPERM anywhere in the cause chain. */
function deniedPath(error: Error): string | undefined {
  for (let e: unknown = error; e instanceof Error; e = e.cause) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM') return (e as NodeJS.ErrnoException).path ?? e.message;
  }
  return undefined;
}

/** Aligned columns for human tables. */
export function table(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => { widths[i] = Math.max(widths[i] ?? 0, cell.length); });
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  ')).join('\n');
}

export interface Progress {
  step(text: string): void;
  done(): void;
  fail(): void;
}

/**
 * An ora spinner on a TTY, nothing otherwise (pipes, CI, --quiet). ora loads only when shown. A TTY that
 * reports no width (e.g. under script(1)) gets none either: ora's line arithmetic never ends there.
 */
export async function progress(stream: NodeJS.WriteStream, quiet: boolean): Promise<Progress> {
  if (quiet || !stream.isTTY || !(stream.columns > 0) || process.env['CI']) return { step: () => undefined, done: () => undefined, fail: () => undefined };
  const { default: ora } = await import('ora');
  const spinner = ora({ stream, discardStdin: false });
  return {
    step: (text) => { spinner.start(text); },
    done: () => { spinner.stop(); },
    fail: () => { spinner.stop(); },
  };
}
