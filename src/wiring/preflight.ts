import type { Cni } from '../cni/cni.js';
import { pickNetwork, type ConfDirListing } from '../cni/conf-dir.js';
import { CniPluginError } from '../cni/plugin-error.js';
import type { NetworkConfigList } from '../cni/types.js';
import { DockcniError, describeError } from '../errors.js';
import { publishedNames } from './host-names.js';
import type { WireTarget } from './intent.js';
import type { WireRequest } from './labels.js';
import { WireError } from './wire-errors.js';

/** How long an ADD waits for a network whose plugins say (CNI STATUS) they cannot take ADDs now [default]. */
const DEFAULT_READY_WAIT_MS = 120_000;

export interface PreflightOptions {
  readonly engine: Pick<Cni, 'status'>;
  /** Said once per held ADD, and for names that are not published. */
  readonly onWarning: (message: string) => void;
  readonly readyWaitMs?: number | undefined;
}

/**
 * Everything checked before anything changes: every network found, every capability asked for declared
 * by a plugin, every name publishable, and each network ready for ADDs (CNI 1.1 STATUS).
 */
export class Preflight {
  constructor(private readonly o: PreflightOptions) {}

  /** The network lists of the request, in its order; a WireError naming the container otherwise. */
  async plan(target: WireTarget, request: WireRequest, listing: ConfDirListing): Promise<NetworkConfigList[]> {
    try {
      const lists = request.networks.map((n) => pickNetwork(listing, n.network));
      request.networks.forEach((n, i) => checkCapabilities(lists[i]!, n.capabilityArgs));
      // Names are checked where they enter: a hostname or alias that cannot be published fails here.
      const skipped = new Set(request.networks.flatMap((n) => publishedNames(target.name, target.hostname, n.aliases).skipped));
      if (skipped.size > 0) this.o.onWarning(`container ${target.name}: not published to its peers: ${[...skipped].join('; ')}`);
      for (const list of lists) await this.ready(target, list);
      return lists;
    } catch (error) {
      throw new WireError(target.name, undefined, error);
    }
  }

  /**
   * CNI 1.1 STATUS: a network whose plugins say they cannot take ADDs now (codes 50 and 51) holds the
   * ADD instead of failing the container — said once — and it proceeds as soon as they can, or fails
   * once the wait has passed. Networks before 1.1.0 have no STATUS: they pass.
   */
  private async ready(target: WireTarget, list: NetworkConfigList): Promise<void> {
    const deadline = Date.now() + (this.o.readyWaitMs ?? DEFAULT_READY_WAIT_MS);
    for (let delay = 250, said = false; ; delay = Math.min(delay * 2, 5000)) {
      try {
        await this.o.engine.status(list);
        return;
      } catch (error) {
        const notReady = error instanceof CniPluginError && (error.cniCode === 50 || error.cniCode === 51);
        if (!notReady || Date.now() + delay > deadline) throw error;
        if (!said) this.o.onWarning(`network ${list.name} is not ready (${describeError(error)}): holding the ADD of container ${target.name} until it is`);
        said = true;
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }
}

/** An address, MAC or port asked for must reach a plugin that applies it, never be dropped silently. */
export function checkCapabilities(list: NetworkConfigList, capabilityArgs: Readonly<Record<string, unknown>>): void {
  for (const key of Object.keys(capabilityArgs)) {
    if (!list.plugins.some((p) => p.capabilities?.[key] === true)) {
      throw new DockcniError('capability-missing', `network "${list.name}" has no plugin that declares the "${key}" capability, so the requested ${key} cannot be applied`, {
        fix: `add "capabilities": {"${key}": true} to the plugin that handles it in ${list.source}, or drop the option`,
      });
    }
  }
}
