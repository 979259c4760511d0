import { appendFileSync } from 'node:fs';
import type { Invocation } from './invocation.js';

/**
 * A line in runc's --log file, in runc's own format: on a failed create, containerd takes the last
 * error-level message there and Docker shows it ("OCI runtime create failed: …"). The runtime's stdout
 * and stderr are the container's, so this is the only place it reports to.
 */
export function report(invocation: Invocation, message: string): void {
  const time = new Date().toISOString();
  const line = invocation.logFormat === 'json' ? `${JSON.stringify({ level: 'error', msg: message, time })}\n` : `time="${time}" level=error msg=${JSON.stringify(message)}\n`;
  if (invocation.logFile !== undefined) appendFileSync(invocation.logFile, line);
}
