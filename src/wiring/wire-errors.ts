import type { PortMapping } from '../cni/types.js';
import { DockcniError, describeError } from '../errors.js';

/** A wiring failure: names the container and network; `cause` is the engine's error. */
export class WireError extends DockcniError {
  override readonly name = 'WireError';
  constructor(readonly containerName: string, readonly network: string | undefined, cause: unknown) {
    super('wire-failed', `container ${containerName}${network ? `, network ${network}` : ''}: ${describeError(cause)}`, { cause });
  }
}

/** A container that shares a netns with the host or another container: dockcni must not touch it. */
export class NetworkModeError extends DockcniError {
  override readonly name = 'NetworkModeError';
  constructor(readonly containerName: string, readonly mode: string) {
    super('network-mode', `container ${containerName} uses network mode "${mode}", not "none": refusing to wire it`, {
      fix: 'start it with --network none; in any other mode its netns belongs to Docker, the host or another container',
    });
  }
}

/** A host port another container or a host process already has. */
export class PortInUseError extends DockcniError {
  override readonly name = 'PortInUseError';
  constructor(readonly mapping: PortMapping, readonly holder: string) {
    super('port-in-use', `host port ${mapping.hostIP ? `${mapping.hostIP}:` : ''}${mapping.hostPort}/${mapping.protocol} is already taken by ${holder}`, {
      fix: 'map another host port, or stop what holds it',
    });
  }
}
