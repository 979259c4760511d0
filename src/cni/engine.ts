import { DockcniError, InvalidInputError, PluginNotFoundError } from '../errors.js';
import { formatCniArgs } from './args.js';
import { parseConfList } from './conf.js';
import { reservedResult } from './host-local.js';
import { invokePlugin, type InvokeContext, type TraceSink } from './invoke.js';
import type { Locks } from './lock.js';
import { CniPluginError } from './plugin-error.js';
import type { PluginExec } from './plugin-exec.js';
import { convertResult, InvalidResultError, parseResult } from './result.js';
import { ResultCache, type CacheEntry } from './result-cache.js';
import type { CachedAttachments, Cni, GcOutcome, GcValid } from './cni.js';
import { staleTempFiles } from '../fs-atomic.js';
import type { CniCommand, CniResult, NetworkConfigList, PluginConf, RuntimeConf, VersionInfo } from './types.js';
import { pluginStdin } from './inject.js';
import { validateContainerId, validateIfName } from './identifiers.js';
import type { NetnsGuard } from './netns-guard.js';
import { isValidNetworkName } from './conf.js';
import { supportsCheck, supportsGc } from './version.js';

export interface EngineOptions {
  readonly exec: PluginExec;
  readonly locks: Locks;
  readonly pluginPath: readonly string[];
  readonly cacheDir: string;
  /** Per plugin call; the plugin is killed past it. */
  readonly timeoutMs: number;
  readonly trace?: TraceSink | undefined;
  /** Refuses the host's own netns and an ADD onto a link that already exists. */
  readonly netns: NetnsGuard;
}

/** 2 minutes: generous, because the dhcp plugin may wait for a lease; a hung plugin still ends. */
export const DEFAULT_PLUGIN_TIMEOUT_MS = 120_000;

/** The runtime arguments an attachment was ADDed with, as its cache entry remembers them. */
export function runtimeConfFromCache(entry: CacheEntry): RuntimeConf {
  return { containerId: entry.containerId, netns: entry.netns ?? '', ifName: entry.ifName, args: entry.cniArgs, capabilityArgs: entry.capabilityArgs };
}

/** What becomes a lock or cache file name, and what plugins receive as identity, checked first. */
function validateTarget(network: string, rt: RuntimeConf): void {
  if (!isValidNetworkName(network)) throw new InvalidInputError('network name', network, 'use letters, digits, "_", "." and "-", starting with a letter or digit');
  validateContainerId(rt.containerId);
  validateIfName(rt.ifName);
}

/**
 * libcni's CNIConfig: runs network lists (ADD in order, CHECK/DEL from the cache, DEL in reverse), with
 * what the spec asks and libcni leaves out: DEL after a failed ADD, typed failures, timeouts, locks.
 */
export class CniEngine implements Cni {
  private readonly cache: ResultCache;
  private readonly invoke: InvokeContext;

  constructor(private readonly options: EngineOptions) {
    this.cache = new ResultCache(options.cacheDir);
    this.invoke = { exec: options.exec, pluginPath: options.pluginPath, timeoutMs: options.timeoutMs, trace: options.trace };
  }

  async cachedAttachment(network: string, containerId: string, ifName: string): Promise<CacheEntry | undefined> {
    return this.cache.read(network, containerId, ifName);
  }

  async cachedAttachments(): Promise<CachedAttachments> {
    const [{ entries, skipped }, orphanedTemps] = await Promise.all([this.cache.scan(), staleTempFiles(this.cache.resultsDir)]);
    return { entries, skipped, orphanedTemps };
  }

  /** ADD the list; on any failure, DEL what was done and rethrow the original failure. */
  async add(list: NetworkConfigList, rt: RuntimeConf): Promise<CniResult> {
    validateTarget(list.name, rt);
    const release = await this.options.locks.attachment(list.name, rt.containerId, rt.ifName);
    try {
      // Refused before any plugin runs: nothing to roll back, and a link that was there stays.
      await this.options.netns.check('ADD', rt);
      let result: CniResult | undefined;
      let ran = 0;
      try {
        for (const plugin of list.plugins) {
          ran += 1;
          const stdout = await this.call('ADD', list, plugin, rt, result);
          result = convertResult(this.parseAddResult(plugin, stdout), list.cniVersion);
        }
        if (result === undefined) throw new DockcniError('no-result', `network "${list.name}" produced no result`);
        await this.cache.write(list.name, list.bytes, rt, result);
        return result;
      } catch (error) {
        // Only the plugins that ran may have made state; the failed one may have made part of its own,
        // unless it never started (not found, not executable): its DEL could not start either, and would
        // end the rollback before the plugins that did run.
        const started = neverStarted(error) ? ran - 1 : ran;
        await this.rollback({ ...list, plugins: list.plugins.slice(0, started) }, rt, result, error);
        throw error;
      }
    } finally {
      await release();
    }
  }

  /** CHECK against the cached result and config; refused before 0.4.0 and without a prior ADD. */
  async check(list: NetworkConfigList, rt: RuntimeConf): Promise<void> {
    validateTarget(list.name, rt);
    const release = await this.options.locks.attachment(list.name, rt.containerId, rt.ifName);
    try {
      await this.options.netns.check('CHECK', rt);
      const cached = await this.cache.read(list.name, rt.containerId, rt.ifName);
      if (cached === undefined) {
        throw new DockcniError('not-attached', `no cached result for ${list.name}/${rt.containerId}/${rt.ifName}: CHECK needs a prior ADD`);
      }
      const used = this.cachedList(cached);
      if (!supportsCheck(used.cniVersion)) {
        throw new DockcniError('check-unsupported', `network "${used.name}" is cniVersion ${used.cniVersion}; CHECK needs 0.4.0 or later`);
      }
      if (used.disableCheck) return;
      for (const plugin of used.plugins) await this.call('CHECK', used, plugin, rt, cached.result);
    } finally {
      await release();
    }
  }

  /**
   * DEL in reverse order with the cached result as prevResult and the cached conflist, so a config
   * edited since ADD still tears down what was set up. Idempotent; the cache entry goes last.
   */
  async del(network: string, rt: RuntimeConf, current?: NetworkConfigList): Promise<void> {
    validateTarget(network, rt);
    const release = await this.options.locks.attachment(network, rt.containerId, rt.ifName);
    try {
      await this.delHeld(network, rt, current);
    } finally {
      await release();
    }
  }

  /** DEL with the attachment (or its whole network) already held by the caller. */
  private async delHeld(network: string, rt: RuntimeConf, current: NetworkConfigList | undefined): Promise<void> {
    await this.options.netns.check('DEL', rt);
    const cached = await this.cache.read(network, rt.containerId, rt.ifName);
    const list = cached ? this.cachedList(cached) : current;
    if (list === undefined) {
      throw new DockcniError('network-not-found', `cannot DEL ${network}/${rt.containerId}/${rt.ifName}: no cached attachment and no config for network "${network}"`);
    }
    // A caller that does not repeat the ADD's args (cnitool users, gc) still tears down what they set up:
    // portmap, for one, removes nothing without the portMappings it was given.
    const delRt = cached ? {
      ...rt,
      args: rt.args.length > 0 ? rt.args : cached.cniArgs,
      capabilityArgs: Object.keys(rt.capabilityArgs).length > 0 ? rt.capabilityArgs : cached.capabilityArgs,
    } : rt;
    // Nothing cached (an ADD cut short before its result was written): what host-local reserved for
    // the attachment stands in as prevResult, or the firewall plugin's rules for it would stay forever.
    await this.delChain(list, delRt, cached?.result ?? reservedResult(list, rt.containerId, rt.ifName), cached === undefined);
    await this.cache.remove(network, rt.containerId, rt.ifName);
  }

  /**
   * Spec GC: DEL every cached attachment of the list that `valid` does not keep, then (1.1.0, unless
   * disableGC) send GC to each plugin with the attachments kept. The whole of it holds the network
   * exclusively: an ADD in flight finishes first, and none starts until GC is done.
   */
  async gc(list: NetworkConfigList, valid: GcValid): Promise<GcOutcome> {
    const deleted: CacheEntry[] = [];
    const errors: Error[] = [];
    const release = await this.options.locks.network(list.name);
    try {
      const cached = (await this.cache.list()).filter((e) => e.networkName === list.name);
      const keep = await valid(cached);
      const isKept = (e: CacheEntry) => keep.some((v) => v.containerID === e.containerId && v.ifname === e.ifName);
      for (const entry of cached.filter((e) => !isKept(e))) {
        try {
          await this.delHeld(list.name, runtimeConfFromCache(entry), list);
          deleted.push(entry);
        } catch (error) {
          errors.push(error as Error);
        }
      }
      if (supportsGc(list.cniVersion) && !list.disableGC) {
        const left = cached.filter((e) => !deleted.includes(e)).map((e) => ({ containerID: e.containerId, ifname: e.ifName }));
        for (const plugin of list.plugins) {
          try {
            await invokePlugin(this.invoke, { plugin: plugin.type, command: 'GC', env: {}, stdin: pluginStdin(list, plugin, { validAttachments: [...keep, ...left] }) });
          } catch (error) {
            errors.push(error as Error);
          }
        }
      }
    } finally {
      await release();
    }
    return { deleted, errors };
  }

  /** Spec STATUS (1.1.0): throws the first plugin's error (codes 50/51 mean "not ready"). */
  async status(list: NetworkConfigList): Promise<{ readonly supported: boolean }> {
    if (!supportsGc(list.cniVersion)) return { supported: false };
    for (const plugin of list.plugins) {
      await invokePlugin(this.invoke, { plugin: plugin.type, command: 'STATUS', env: {}, stdin: pluginStdin(list, plugin) });
    }
    return { supported: true };
  }

  /** VERSION probe of one plugin; `cniVersion` is the version the runtime asks it with. */
  async version(pluginType: string, cniVersion = '1.0.0'): Promise<VersionInfo> {
    const stdout = await invokePlugin(this.invoke, { plugin: pluginType, command: 'VERSION', env: {}, stdin: JSON.stringify({ cniVersion }) });
    let info: unknown;
    try {
      info = JSON.parse(stdout);
    } catch (error) {
      throw new CniPluginError({ plugin: pluginType, command: 'VERSION', kind: 'bad-output', msg: 'VERSION output is not JSON', cause: error });
    }
    const versions = (info as { supportedVersions?: unknown }).supportedVersions;
    if (!Array.isArray(versions) || !versions.every((v) => typeof v === 'string')) {
      throw new CniPluginError({ plugin: pluginType, command: 'VERSION', kind: 'invalid-result', msg: 'VERSION output has no "supportedVersions" list' });
    }
    return { cniVersion: String((info as { cniVersion?: unknown }).cniVersion ?? ''), supportedVersions: versions };
  }

  /**
   * `uncached`: no ADD of this attachment completed. A plugin that cannot be started then is passed
   * over: an ADD that failed on it never ran it, and a DEL that stopped there would leave the plugins
   * before it undone and the attachment undeletable. After a completed ADD it stays an error (the
   * attachment is finished once the plugin is back).
   */
  private async delChain(list: NetworkConfigList, rt: RuntimeConf, prevResult: CniResult | undefined, uncached = false): Promise<void> {
    // Before 0.4.0, DEL had no prevResult (libcni sends none there either).
    const prev = supportsCheck(list.cniVersion) && prevResult ? convertResult(prevResult, list.cniVersion) : undefined;
    for (const plugin of [...list.plugins].reverse()) {
      try {
        await this.call('DEL', list, plugin, rt, prev);
      } catch (error) {
        if (!(uncached && neverStarted(error))) throw error;
      }
    }
  }

  /** SPEC.md: a failed ADD must be followed by a DEL; its own failure is kept on the ADD error. */
  private async rollback(list: NetworkConfigList, rt: RuntimeConf, partial: CniResult | undefined, addError: unknown): Promise<void> {
    try {
      await this.delChain(list, rt, partial);
    } catch (delError) {
      if (addError instanceof DockcniError) addError.rollbackErrors = [...addError.rollbackErrors, delError as Error];
      else throw new DockcniError('rollback-failed', `ADD failed and so did the DEL that undoes it: ${(delError as Error).message}`, { cause: addError });
    }
  }

  private call(command: CniCommand, list: NetworkConfigList, plugin: PluginConf, rt: RuntimeConf, prevResult: CniResult | undefined): Promise<string> {
    return invokePlugin(this.invoke, {
      plugin: plugin.type,
      command,
      env: { CNI_CONTAINERID: rt.containerId, CNI_NETNS: rt.netns, CNI_IFNAME: rt.ifName, CNI_ARGS: formatCniArgs(rt.args) },
      stdin: pluginStdin(list, plugin, { prevResult, capabilityArgs: rt.capabilityArgs }),
    });
  }

  private parseAddResult(plugin: PluginConf, stdout: string): CniResult {
    if (stdout.trim() === '') {
      throw new CniPluginError({ plugin: plugin.type, command: 'ADD', kind: 'no-result', msg: 'exited 0 but printed no result' });
    }
    try {
      return parseResult(stdout);
    } catch (error) {
      if (!(error instanceof InvalidResultError)) throw error;
      throw new CniPluginError({ plugin: plugin.type, command: 'ADD', kind: 'invalid-result', msg: `invalid result: ${error.message}`, cause: error });
    }
  }

  private cachedList(entry: CacheEntry): NetworkConfigList {
    return parseConfList(Buffer.from(entry.config, 'base64'), `<cache of ${entry.networkName}/${entry.containerId}/${entry.ifName}>`);
  }
}

/** A plugin that was not found, or whose process could not be started, ran no code. */
function neverStarted(error: unknown): boolean {
  return error instanceof PluginNotFoundError || (error instanceof CniPluginError && error.kind === 'spawn');
}
