/**
 * dockcni as a library: the CNI engine (libcni's behaviour in TypeScript), config loading, and the
 * typed errors. Docker is not needed for any of it.
 */
export { CniEngine, DEFAULT_PLUGIN_TIMEOUT_MS, runtimeConfFromCache, type EngineOptions } from './cni/engine.js';
export type { Cni, CachedAttachments, GcOutcome, GcValid } from './cni/cni.js';
export { ProcNetnsGuard, type NetnsGuard } from './cni/netns-guard.js';
export { createEngine, type CreateEngineOptions } from './cni/create-engine.js';
export { loadConfDir, findNetwork, pickNetwork, type ConfDirListing } from './cni/conf-dir.js';
export { parseConfList, parseSingleConf } from './cni/conf.js';
export { defaultNetwork, DEFAULT_NETWORK_NAME } from './cni/default-network.js';
export { parseCniArgs, formatCniArgs } from './cni/args.js';
export { ResultCache, type CacheEntry, type SkippedCacheFile } from './cni/result-cache.js';
export { FileLocks, type Locks } from './cni/lock.js';
export { SpawnPluginExec } from './cni/spawn-plugin-exec.js';
export type { PluginExec, PluginExecRequest, PluginExecOutcome } from './cni/plugin-exec.js';
export type { TraceRecord, TraceSink } from './cni/invoke.js';
export { CniPluginError, CNI_ERROR_CODES, type PluginFailureKind } from './cni/plugin-error.js';
export { DEFAULT_CNI_PATH } from './cni/plugin-path.js';
export type { CniResult, NetworkConfigList, PluginConf, RuntimeConf, VersionInfo, GcAttachment } from './cni/types.js';
export { DockcniError, ConfigError, NetworkNotFoundError, PluginNotFoundError, InvalidInputError, DockerApiError } from './errors.js';
export { parseLabels, type WireRequest, type NetworkRequest } from './wiring/labels.js';
