/** The CNI versions dockcni speaks, and the rules that depend on them. */
export const SUPPORTED_VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const;

export function isSupportedVersion(version: string): boolean {
  return (SUPPORTED_VERSIONS as readonly string[]).includes(version);
}

/** Numeric comparison of dotted versions: negative, zero or positive. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

export const atLeast = (version: string, floor: string): boolean => compareVersions(version, floor) >= 0;

/** CHECK and DEL-with-prevResult arrived in 0.4.0. */
export const supportsCheck = (version: string): boolean => atLeast(version, '0.4.0');
/** GC and STATUS arrived in 1.1.0. */
export const supportsGc = (version: string): boolean => atLeast(version, '1.1.0');

/** Spec 1.1.0: with `cniVersions`, the runtime uses the highest version it supports. */
export function pickVersion(versions: readonly string[]): string | undefined {
  return versions.filter(isSupportedVersion).sort(compareVersions).at(-1);
}
