import path from 'node:path';
import { DEFAULT_CACHE_DIR } from './cni/result-cache.js';
import { DEFAULT_CNI_PATH, splitPath } from './cni/plugin-path.js';

/** Every default location in one place; who writes what there is in src/README.md ("State on disk"). */
export interface Paths {
  readonly confDir: string;
  readonly cniPath: readonly string[];
  readonly cacheDir: string;
  /** Attachment records. */
  readonly stateDir: string;
  /** Pinned netns and lock files: runtime state that must not survive a reboot. */
  readonly runDir: string;
}

export interface PathFlags {
  readonly confDir?: string | undefined;
  readonly cniPath?: string | undefined;
  readonly cacheDir?: string | undefined;
  readonly stateDir?: string | undefined;
  readonly runDir?: string | undefined;
}

export const DEFAULT_CONF_DIR = '/etc/cni/net.d';
export const DEFAULT_STATE_DIR = '/var/lib/dockcni';
export const DEFAULT_RUN_DIR = '/run/dockcni';

/** Flag, then environment (NETCONFPATH, CNI_PATH, as cnitool), then default. */
export function resolvePaths(flags: PathFlags, env: NodeJS.ProcessEnv = process.env): Paths {
  return {
    confDir: path.resolve(flags.confDir ?? env['NETCONFPATH'] ?? DEFAULT_CONF_DIR),
    cniPath: flags.cniPath !== undefined ? splitPath(flags.cniPath) : env['CNI_PATH'] ? splitPath(env['CNI_PATH']) : DEFAULT_CNI_PATH,
    cacheDir: path.resolve(flags.cacheDir ?? DEFAULT_CACHE_DIR),
    stateDir: path.resolve(flags.stateDir ?? DEFAULT_STATE_DIR),
    runDir: path.resolve(flags.runDir ?? DEFAULT_RUN_DIR),
  };
}

export const locksDir = (p: Paths) => path.join(p.runDir, 'locks');
export const pinsDir = (p: Paths) => path.join(p.runDir, 'netns');
