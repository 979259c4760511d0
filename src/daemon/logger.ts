import type { Writable } from 'node:stream';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFields = Readonly<Record<string, string | number | boolean | undefined>>;

export interface Logger {
  log(level: LogLevel, message: string, fields?: LogFields): void;
}

/** Timestamped lines: human by default, JSON lines with --log-format json. */
export class StreamLogger implements Logger {
  constructor(private readonly stream: Writable, private readonly format: 'text' | 'json', private readonly debug = false) {}

  log(level: LogLevel, message: string, fields: LogFields = {}): void {
    if (level === 'debug' && !this.debug) return;
    const time = new Date().toISOString();
    const defined = Object.entries(fields).filter(([, v]) => v !== undefined);
    if (this.format === 'json') {
      this.stream.write(`${JSON.stringify({ time, level, msg: message, ...Object.fromEntries(defined) })}\n`);
      return;
    }
    const extra = defined.map(([k, v]) => `${k}=${typeof v === 'string' && /[\s"]/.test(v) ? JSON.stringify(v) : String(v)}`).join(' ');
    this.stream.write(`${time} ${level.padEnd(5)} ${message}${extra ? ` ${extra}` : ''}\n`);
  }
}
