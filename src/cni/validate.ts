import type { ConfDirListing } from './conf-dir.js';
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

/** Every plugin of the list found and answering VERSION with the list's version. */
export async function validateNetwork(list: NetworkConfigList, engine: CniEngine, pluginPath: readonly string[]): Promise<Finding[]> {
  const findings: Finding[] = [];
  for (const plugin of list.plugins) {
    try {
      findPlugin(plugin.type, pluginPath);
      const info = await engine.version(plugin.type, list.cniVersion);
      if (!info.supportedVersions.includes(list.cniVersion)) {
        findings.push({ level: 'error', source: list.source, network: list.name,
          message: `plugin "${plugin.type}" does not support cniVersion ${list.cniVersion} (it supports ${info.supportedVersions.join(', ')})` });
      }
    } catch (error) {
      findings.push({ level: 'error', source: list.source, network: list.name, message: (error as Error).message });
    }
  }
  return findings;
}

/** Every problem in every file, not just the first (libcni stops at the first). */
export async function validateConfDir(listing: ConfDirListing, engine: CniEngine, pluginPath: readonly string[]): Promise<Finding[]> {
  const findings: Finding[] = listing.problems.map((p) => ({ level: 'error' as const, source: p.file, message: p.reason }));
  for (const s of listing.shadowed) {
    findings.push({ level: 'warning', source: s.file, network: s.name, message: `network "${s.name}" is also defined in ${s.by}, which wins; this file is ignored` });
  }
  for (const list of listing.networks) findings.push(...(await validateNetwork(list, engine, pluginPath)));
  return findings;
}
