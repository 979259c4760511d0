import { InvalidInputError } from '../errors.js';

export type CniArgs = readonly (readonly [string, string])[];

const KEY_PATTERN = /^[A-Za-z0-9_.-]+$/;
/** Plugins split CNI_ARGS on ";" and each pair on "=": neither may appear inside a key or value. */
const VALUE_FORBIDDEN = /[;=\n\r\0]/;
export const MAX_ARG_LENGTH = 1024;

export function validateArg(key: string, value: string, field = 'CNI_ARGS'): void {
  if (!KEY_PATTERN.test(key) || key.length > 128) {
    throw new InvalidInputError(field, key, 'a key may hold only letters, digits, "_", "." and "-"', 'write pairs as KEY=VALUE;KEY2=VALUE2');
  }
  if (value === '' || VALUE_FORBIDDEN.test(value) || value.length > MAX_ARG_LENGTH) {
    throw new InvalidInputError(field, `${key}=${value}`,
      `a value must be 1-${MAX_ARG_LENGTH} characters without ";", "=", newline or NUL`, 'remove the separator characters from the value');
  }
}

/** Parses `K=V;K2=V2` strictly, as cnitool does: every pair needs a key and a value. */
export function parseCniArgs(text: string, field = 'CNI_ARGS'): CniArgs {
  if (text.trim() === '') return [];
  return text.split(';').map((pair) => {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new InvalidInputError(field, pair, 'expected KEY=VALUE', 'write pairs as KEY=VALUE;KEY2=VALUE2');
    const key = pair.slice(0, eq);
    const value = pair.slice(eq + 1);
    validateArg(key, value, field);
    return [key, value] as const;
  });
}

export function formatCniArgs(args: CniArgs): string {
  return args.map(([k, v]) => `${k}=${v}`).join(';');
}
