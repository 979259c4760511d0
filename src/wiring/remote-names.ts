import path from 'node:path';
import { readTextIfExistsSync } from '../fs-atomic.js';
import type { RemoteName, RemoteNames } from './hosts-book.js';

/**
 * The containers of cluster networks on other hosts, as the daemon's cluster agent last saw them in
 * etcd: one file in the run dir that every process wiring on this host reads (the runtime and the CLI
 * have no etcd client), written by the agent alone. Absent: no cluster, no remote names.
 */
export const remoteNamesFile = (runDir: string) => path.join(runDir, 'cluster', 'names.json');

export function remoteNamesReader(runDir: string): RemoteNames {
  const file = remoteNamesFile(runDir);
  return (network) => {
    const text = readTextIfExistsSync(file);
    if (text === undefined) return [];
    const all = JSON.parse(text) as Record<string, RemoteName[] | undefined>;
    return all[network] ?? [];
  };
}
