import { ConfigError } from '../errors.js';
import type { NetworkConfigList, PluginConf } from './types.js';
import { isSupportedVersion, pickVersion, SUPPORTED_VERSIONS } from './version.js';

/** libcni's network-name rule; the name becomes part of cache file names, so nothing else may pass. */
const NAME_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
/** A plugin type is a bare executable name: it must never walk out of the plugin path. */
const TYPE_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9_.+-]*$/;

export const MAX_CONF_BYTES = 1024 * 1024;

export function isValidNetworkName(name: string): boolean {
  return NAME_PATTERN.test(name) && name.length <= 128 && !name.includes('..');
}

export function isValidPluginType(type: string): boolean {
  return TYPE_PATTERN.test(type) && type.length <= 128 && !type.includes('..');
}

type Json = Record<string, unknown>;

function parseObject(bytes: Buffer, source: string): Json {
  if (bytes.length > MAX_CONF_BYTES) {
    throw new ConfigError(source, `file is ${bytes.length} bytes, over the ${MAX_CONF_BYTES}-byte limit for a CNI config`);
  }
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch (error) {
    throw new ConfigError(source, `not valid JSON (${(error as Error).message})`, { cause: error });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ConfigError(source, 'expected a JSON object at the top level');
  }
  return value as Json;
}

function checkName(raw: Json, source: string): string {
  const name = raw['name'];
  if (typeof name !== 'string' || name === '') throw new ConfigError(source, 'missing "name" (a non-empty string)');
  if (!isValidNetworkName(name)) {
    throw new ConfigError(source, `network name ${JSON.stringify(name)} is invalid: use letters, digits, "_", "." and "-", starting with a letter or digit`);
  }
  return name;
}

function checkVersion(raw: Json, source: string): string {
  const list = raw['cniVersions'];
  if (list !== undefined) {
    if (!Array.isArray(list) || !list.every((v): v is string => typeof v === 'string')) {
      throw new ConfigError(source, '"cniVersions" must be an array of version strings');
    }
    const picked = pickVersion(list);
    if (picked !== undefined) return picked;
    throw new ConfigError(source, `none of "cniVersions" ${JSON.stringify(list)} is supported (supported: ${SUPPORTED_VERSIONS.join(', ')})`);
  }
  const version = raw['cniVersion'];
  if (typeof version !== 'string') throw new ConfigError(source, 'missing "cniVersion" (a string such as "1.0.0")');
  if (!isSupportedVersion(version)) {
    throw new ConfigError(source, `unsupported cniVersion ${JSON.stringify(version)} (supported: ${SUPPORTED_VERSIONS.join(', ')})`);
  }
  return version;
}

function checkPlugin(raw: unknown, index: number, source: string): PluginConf {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new ConfigError(source, `plugins[${index}] must be an object`);
  }
  const plugin = raw as Json;
  const type = plugin['type'];
  if (typeof type !== 'string' || type === '') throw new ConfigError(source, `plugins[${index}] has no "type" (the plugin's executable name)`);
  if (!isValidPluginType(type)) {
    throw new ConfigError(source, `plugins[${index}].type ${JSON.stringify(type)} must be a bare executable name (no "/", no "..")`);
  }
  const caps = plugin['capabilities'];
  if (caps !== undefined && (typeof caps !== 'object' || caps === null || Array.isArray(caps)
    || !Object.values(caps).every((v) => typeof v === 'boolean'))) {
    throw new ConfigError(source, `plugins[${index}].capabilities must map capability names to true/false`);
  }
  return plugin as PluginConf;
}

function checkFlag(raw: Json, key: string, source: string): boolean {
  const value = raw[key];
  if (value === undefined) return false;
  if (typeof value !== 'boolean') throw new ConfigError(source, `"${key}" must be true or false, not ${JSON.stringify(value)}`);
  return value;
}

/** Parses and validates a `.conflist` (libcni ConfListFromBytes, with stricter checks). */
export function parseConfList(bytes: Buffer, source: string): NetworkConfigList {
  const raw = parseObject(bytes, source);
  const name = checkName(raw, source);
  const cniVersion = checkVersion(raw, source);
  const plugins = raw['plugins'];
  if (!Array.isArray(plugins) || plugins.length === 0) throw new ConfigError(source, '"plugins" must be a non-empty array');
  return {
    name,
    cniVersion,
    disableCheck: checkFlag(raw, 'disableCheck', source),
    disableGC: checkFlag(raw, 'disableGC', source),
    plugins: plugins.map((p, i) => checkPlugin(p, i, source)),
    bytes,
    source,
  };
}

/** Up-converts a single-plugin `.conf`/`.json` to a one-plugin list, as libcni ConfListFromConf does. */
export function parseSingleConf(bytes: Buffer, source: string): NetworkConfigList {
  const raw = parseObject(bytes, source);
  if (Array.isArray(raw['plugins'])) {
    throw new ConfigError(source, 'holds a "plugins" list: rename it to .conflist');
  }
  const name = checkName(raw, source);
  const cniVersion = checkVersion(raw, source);
  const plugin = checkPlugin(raw, 0, source);
  const listBytes = Buffer.from(JSON.stringify({ cniVersion, name, plugins: [raw] }));
  return { name, cniVersion, disableCheck: false, disableGC: false, plugins: [plugin], bytes: listBytes, source };
}
