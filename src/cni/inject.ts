import type { CniResult, GcAttachment, NetworkConfigList, PluginConf } from './types.js';

export interface InjectOptions {
  readonly prevResult?: CniResult | undefined;
  readonly capabilityArgs?: Readonly<Record<string, unknown>>;
  readonly validAttachments?: readonly GcAttachment[];
}

/**
 * One plugin's stdin (libcni buildOneConfig + injectRuntimeConfig): its own config with the list's name
 * and cniVersion, prevResult, and a runtimeConfig holding only the capabilities it declares `true`.
 * When none matches, the file's own runtimeConfig passes through untouched, as in libcni.
 */
export function pluginStdin(list: NetworkConfigList, plugin: PluginConf, options: InjectOptions = {}): string {
  const conf: Record<string, unknown> = { ...plugin, name: list.name, cniVersion: list.cniVersion };
  if (options.prevResult !== undefined) conf['prevResult'] = options.prevResult;
  const runtimeConfig: Record<string, unknown> = {};
  for (const [capability, wanted] of Object.entries(plugin.capabilities ?? {})) {
    const value = options.capabilityArgs?.[capability];
    if (wanted && value !== undefined) runtimeConfig[capability] = value;
  }
  if (Object.keys(runtimeConfig).length > 0) conf['runtimeConfig'] = runtimeConfig;
  if (options.validAttachments !== undefined) conf['cni.dev/valid-attachments'] = options.validAttachments;
  return JSON.stringify(conf);
}
