import { unsupportedEngine } from '../docker/engine-support.js';
import { localInfo, localSocket } from '../docker/local-api.js';
import { DockcniError } from '../errors.js';
import { resolvePaths, type PathFlags } from '../paths.js';
import { parseInvocation } from '../runtime/invocation.js';

const INFO_TIMEOUT_MS = 5_000;

export interface RuntimeChoice {
  /** Forced onto the sandbox path (`--sandbox`). */
  readonly sandbox: boolean;
  /** The runtime's name in Docker; explicit when the user named it (`--dockcni-runtime`). */
  readonly name: string;
  readonly explicit: boolean;
  /** The run's own settings: the runtime is used only if it was installed with the same. */
  readonly flags: PathFlags & { readonly timeout: number; readonly podNamespace: string };
  readonly dockerHost?: string | undefined;
}

/**
 * Which runtime `dockcni run` starts its app with, or undefined for the sandbox path: the runtime when
 * dockerd lists it and it was installed with the locations this run names (otherwise its records and
 * networks would not be the ones the user asked for). Only a local dockerd can run it.
 */
export async function runtimeFor(choice: RuntimeChoice): Promise<string | undefined> {
  let socket: string;
  try {
    socket = localSocket(choice.dockerHost);
  } catch (error) {
    if (choice.explicit) throw error;
    return undefined;
  }
  // One /info for both: an engine dockcni cannot wire beside (rootless, Desktop) is refused on either path.
  const info = await localInfo(socket, INFO_TIMEOUT_MS);
  const refused = unsupportedEngine(info.engine);
  if (refused !== undefined) throw refused;
  if (choice.sandbox) return undefined;
  const entry = info.runtimes[choice.name];
  if (entry === undefined) {
    if (!choice.explicit) return undefined;
    throw new DockcniError('not-found', `dockerd has no runtime named ${choice.name}`, { fix: `install it (dockcni runtime install --name ${choice.name}), or leave --dockcni-runtime out to use the sandbox` });
  }
  const installed = parseInvocation(entry.runtimeArgs ?? []).options;
  const theirs = { ...resolvePaths(installed, {}), timeout: Number(installed.timeout ?? 120), podNamespace: installed.podNamespace ?? 'default' };
  const ours = { ...resolvePaths(choice.flags), timeout: choice.flags.timeout, podNamespace: choice.flags.podNamespace };
  const same = JSON.stringify({ ...theirs, cniPath: theirs.cniPath.join(':') }) === JSON.stringify({ ...ours, cniPath: ours.cniPath.join(':') });
  if (same) return choice.name;
  if (choice.explicit) {
    throw new DockcniError('invalid-input', `runtime ${choice.name} was installed with other locations or settings than this run names`, { fix: `install it with the same flags (dockcni runtime install --name ${choice.name} …), or pass --sandbox` });
  }
  return undefined;
}
