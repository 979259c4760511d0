import { usableNetworks, type ConfDirListing } from './conf-dir.js';
import type { CniEngine } from './engine.js';
import { findPlugin } from './plugin-path.js';
import type { NetworkConfigList } from './types.js';

export interface Finding {
  readonly level: 'error' | 'warning';
  /** The file, or `<embedded>`. */
  readonly source: string;
  readonly network?: string | undefined;
  readonly message: string;
}

/** The plugins a list runs: each of its own, and the IPAM plugin each delegates to (`ipam.type`). */
function executables(list: NetworkConfigList): { type: string; role: string }[] {
  return list.plugins.flatMap((p) => {
    const ipam = (p['ipam'] as { type?: unknown } | undefined)?.type;
    return [{ type: p.type, role: 'plugin' }, ...(typeof ipam === 'string' ? [{ type: ipam, role: `IPAM plugin of ${p.type}` }] : [])];
  });
}

/** Every plugin of the list, IPAM ones included, found and answering VERSION with the list's version. */
export async function validateNetwork(list: NetworkConfigList, engine: Pick<CniEngine, 'version'>, pluginPath: readonly string[]): Promise<Finding[]> {
  const findings: Finding[] = [];
  for (const { type, role } of executables(list)) {
    try {
      findPlugin(type, pluginPath);
      const info = await engine.version(type, list.cniVersion);
      if (!info.supportedVersions.includes(list.cniVersion)) {
        findings.push({ level: 'error', source: list.source, network: list.name,
          message: `${role} "${type}" does not support cniVersion ${list.cniVersion} (it supports ${info.supportedVersions.join(', ')})` });
      }
    } catch (error) {
      findings.push({ level: 'error', source: list.source, network: list.name, message: role === 'plugin' ? (error as Error).message : `${role}: ${(error as Error).message}` });
    }
  }
  return findings;
}

/**
 * Every problem in every file, not just the first (libcni stops at the first), and the embedded network
 * when no file overrides it: it is one of the networks containers may ask for.
 */
export async function validateConfDir(listing: ConfDirListing, engine: Pick<CniEngine, 'version'>, pluginPath: readonly string[]): Promise<Finding[]> {
  const findings: Finding[] = listing.problems.map((p) => ({ level: 'error' as const, source: p.file, message: p.reason }));
  for (const s of listing.shadowed) {
    findings.push({ level: 'warning', source: s.file, network: s.name, message: `network "${s.name}" is also defined in ${s.by}, which wins; this file is ignored` });
  }
  const networks = usableNetworks(listing);
  for (const list of networks) findings.push(...(await validateNetwork(list, engine, pluginPath)));
  return findings;
}
