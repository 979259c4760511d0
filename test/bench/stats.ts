// What every bench section shares: how figures are summarised and reported.
export const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
export const pct = (xs: readonly number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))] ?? NaN;
export const ms = (n: number) => `${n.toFixed(1)} ms`;
export const verdict = (ok: boolean) => (ok ? 'met' : 'NOT met');
/** Every line of this run, for the README's block (BENCH_README=1). */
export const reported: string[] = [];
export const report = (line: string) => {
  reported.push(line);
  process.stdout.write(`${line}\n`);
};
export const now = () => performance.now();
export async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = now();
  await fn();
  return now() - t0;
}
