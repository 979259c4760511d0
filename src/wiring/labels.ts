import ipaddr from 'ipaddr.js';
import { parseCniArgs, type CniArgs } from '../cni/args.js';
import { isValidNetworkName } from '../cni/conf.js';
import type { PortMapping } from '../cni/types.js';
import { InvalidInputError } from '../errors.js';
import { checkAlias, checkAliasCount } from './host-names.js';
import { COMPOSE_PROJECT_LABEL, COMPOSE_SERVICE_LABEL, LABEL_PREFIX, NETWORKS_LABEL, ROLE_LABEL, SANDBOX_LABEL } from './label-keys.js';

/**
 * The label interface. Anyone who can start a container sets labels, so every value is parsed into
 * plain data here, before any plugin runs, and nothing from a label reaches a path, a plugin name or
 * the identity CNI_ARGS dockcni sets.
 *
 *   dockcni.networks=front,back          opt in; interfaces eth0, eth1… in that order
 *   dockcni.ip=10.1.0.5[,fd00::5]        the first network's addresses (`ips` capability)
 *   dockcni.mac=02:42:0a:01:00:05        (`mac`)
 *   dockcni.ports=8080:80/tcp,127.0.0.1:5353:53/udp,[::1]:8443:443   (`portMappings`)
 *   dockcni.bandwidth=ingressRate=10M,egressRate=5M[,ingressBurst=…]  bits/s (`bandwidth`)
 *   dockcni.args=KEY=V;KEY2=V2            extra CNI_ARGS
 *   dockcni.aliases=db,primary            more names peers on the network resolve it by
 *   dockcni.<option>.<network>=…         the same for one named network (e.g. dockcni.ip.back=10.2.0.5)
 * An option without a network suffix applies to the first network only: an address or a host port
 * belongs to one network, never to all of them.
 */
const OPTIONS = ['ip', 'mac', 'ports', 'bandwidth', 'args', 'aliases'] as const;
type Option = (typeof OPTIONS)[number];
const INTERNAL = new Set([NETWORKS_LABEL, ROLE_LABEL, SANDBOX_LABEL]);
/**
 * CNI_ARGS keys only dockcni sets: policy plugins trust them as the container's identity. Compared
 * without case: a plugin written in another language may read them that way.
 */
export const RESERVED_ARGS = new Set(['ignoreunknown', 'k8s_pod_namespace', 'k8s_pod_name', 'k8s_pod_infra_container_id', 'k8s_pod_uid']);
/** The identity every plugin gets, in the Kubernetes conventions third-party plugins rely on. */
export function identityArgs(podNamespace: string, podName: string, containerId: string): CniArgs {
  return [['IgnoreUnknown', '1'], ['K8S_POD_NAMESPACE', podNamespace], ['K8S_POD_NAME', podName], ['K8S_POD_INFRA_CONTAINER_ID', containerId]];
}

/**
 * Keys the reference plugins read as an address or MAC (host-local and static: IP, GATEWAY; bridge,
 * macvlan and tuning: MAC). Through CNI_ARGS they would skip the checks dockcni.ip and dockcni.mac get
 * (range, held by another container, multicast), so labels may not set them.
 */
export const ADDRESS_ARGS = new Set(['ip', 'ips', 'gateway', 'mac']);
export const MAX_LABEL_VALUE = 4096;
export const MAX_NETWORKS = 16;

export interface NetworkRequest {
  readonly network: string;
  readonly ifName: string;
  readonly capabilityArgs: Readonly<Record<string, unknown>>;
  /** From dockcni.args; the identity args are added by the wirer. */
  readonly extraArgs: CniArgs;
  /** Names peers on this network resolve it by, beyond its container name (dockcni.aliases, the compose service). */
  readonly aliases: readonly string[];
  /** compose project/service: replicas of one service share the service name among their aliases. */
  readonly group?: string | undefined;
}

export interface WireRequest {
  readonly networks: readonly NetworkRequest[];
}

export interface LabelOptions {
  /** Networks labels may ask for; undefined = any. */
  readonly allowNetworks?: ReadonlySet<string> | undefined;
  /** CNI_ARGS keys dockcni.args may set; undefined = any key that is neither reserved nor an address. */
  readonly allowArgs?: ReadonlySet<string> | undefined;
}

/** `a, b,c` as a set of names, as the allow-lists are written (--allow-networks, --allow-args). */
export function commaSet(value: string): Set<string> {
  return new Set(value.split(',').map((n) => n.trim()).filter((n) => n !== ''));
}

const MAC = /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i;

function bad(label: string, value: string, reason: string, fix: string): never {
  throw new InvalidInputError(`label ${label}`, value, reason, fix);
}

export function parseIps(label: string, value: string): string[] {
  return value.split(',').map((raw) => {
    const ip = raw.trim();
    if (!ipaddr.isValid(ip) && !ipaddr.isValidCIDR(ip)) bad(label, value, `${JSON.stringify(ip)} is not an IP address`, 'write addresses as 10.1.0.5 or 10.1.0.5/24, comma-separated');
    return ip;
  });
}

export function parseMac(label: string, value: string): string {
  if (!MAC.test(value)) bad(label, value, 'not a MAC address', 'write it as six hex pairs: 02:42:0a:01:00:05');
  if ((parseInt(value.slice(0, 2), 16) & 1) === 1) bad(label, value, 'a multicast MAC cannot be an interface address', 'use an even first octet, e.g. 02:…');
  return value.toLowerCase();
}

function port(label: string, value: string, text: string): number {
  if (!/^\d{1,5}$/.test(text)) bad(label, value, `port ${JSON.stringify(text)} is not a number (ranges are not supported)`, 'write HOSTPORT:CONTAINERPORT[/tcp|udp|sctp]');
  const n = Number(text);
  if (n < 1 || n > 65535) bad(label, value, `port ${n} is outside 1-65535`, 'use ports from 1 to 65535');
  return n;
}

export function parsePorts(label: string, value: string): PortMapping[] {
  return value.split(',').map((raw) => {
    const spec = raw.trim();
    const m = /^(?:(\[[0-9a-fA-F:.]+\]|[0-9.]+):)?([^:/]+):([^:/]+)(?:\/([a-z]+))?$/.exec(spec);
    if (!m) bad(label, value, `${JSON.stringify(spec)} is not a port mapping`, 'write [HOSTIP:]HOSTPORT:CONTAINERPORT[/tcp|udp|sctp], comma-separated');
    const protocol = m[4] ?? 'tcp';
    if (protocol !== 'tcp' && protocol !== 'udp' && protocol !== 'sctp') bad(label, value, `unknown protocol ${JSON.stringify(protocol)}`, 'use tcp, udp or sctp');
    const mapping: PortMapping = { hostPort: port(label, value, m[2] ?? ''), containerPort: port(label, value, m[3] ?? ''), protocol };
    if (m[1] === undefined) return mapping;
    const hostIP = m[1].replace(/^\[|\]$/g, '');
    if (!ipaddr.isValid(hostIP)) bad(label, value, `host IP ${JSON.stringify(hostIP)} is not an IP address`, 'write 127.0.0.1:8080:80 or [::1]:8080:80');
    return { ...mapping, hostIP };
  });
}

const RATE_UNITS: Record<string, number> = { '': 1, k: 1e3, K: 1e3, m: 1e6, M: 1e6, g: 1e9, G: 1e9 };
const BANDWIDTH_KEYS = ['ingressRate', 'ingressBurst', 'egressRate', 'egressBurst'];
/** Kubernetes passes this burst when only a rate is given: "no burst limit". */
const UNLIMITED_BURST = 2147483647;

export function parseBandwidth(label: string, value: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const pair of value.split(',')) {
    const [key = '', text = ''] = pair.trim().split('=');
    if (!BANDWIDTH_KEYS.includes(key)) bad(label, value, `unknown key ${JSON.stringify(key)}`, `use ${BANDWIDTH_KEYS.join(', ')} (bits per second / bits)`);
    const m = /^(\d+)([kKmMgG]?)$/.exec(text);
    if (!m) bad(label, value, `${key} value ${JSON.stringify(text)} is not a number`, 'write e.g. ingressRate=10M (M = 10^6 bits/s)');
    const n = Number(m[1]) * (RATE_UNITS[m[2] ?? ''] ?? 1);
    if (n <= 0 || n > Number.MAX_SAFE_INTEGER) bad(label, value, `${key} must be positive`, 'write e.g. ingressRate=10M');
    out[key] = n;
  }
  for (const dir of ['ingress', 'egress']) {
    if (out[`${dir}Rate`] !== undefined && out[`${dir}Burst`] === undefined) out[`${dir}Burst`] = UNLIMITED_BURST;
    if (out[`${dir}Burst`] !== undefined && out[`${dir}Rate`] === undefined) bad(label, value, `${dir}Burst without ${dir}Rate`, `add ${dir}Rate`);
  }
  return out;
}

/** Names a hosts file can carry (see host-names.ts): single DNS labels, nothing that could start another entry. */
export function parseAliases(label: string, value: string): string[] {
  const names = value.split(',').map((raw) => checkAlias(`label ${label}`, raw.trim()));
  checkAliasCount(`label ${label}`, names);
  return names;
}

export function parseExtraArgs(label: string, value: string, options: LabelOptions = {}): CniArgs {
  const args = parseCniArgs(value, `label ${label}`);
  for (const [key] of args) {
    const lower = key.toLowerCase();
    if (RESERVED_ARGS.has(lower)) bad(label, value, `${key} is set by dockcni from the container's identity and cannot be overridden`, `remove ${key} from the label`);
    if (ADDRESS_ARGS.has(lower)) {
      bad(label, value, `${key} would give the container an address or MAC without dockcni's checks`, lower === 'mac' ? 'use the dockcni.mac label' : 'use the dockcni.ip label');
    }
    if (options.allowArgs && !options.allowArgs.has(key)) {
      bad(label, value, `CNI_ARGS key ${key} is not allowed on this host`, options.allowArgs.size === 0 ? 'this host allows no dockcni.args keys (dockcni daemon --allow-args)' : `use one of: ${[...options.allowArgs].join(', ')}`);
    }
  }
  return args;
}

function capability(option: Option, label: string, value: string): [string, unknown] | undefined {
  switch (option) {
    case 'ip': return ['ips', parseIps(label, value)];
    case 'mac': return ['mac', parseMac(label, value)];
    case 'ports': return ['portMappings', parsePorts(label, value)];
    case 'bandwidth': return ['bandwidth', parseBandwidth(label, value)];
    case 'args': case 'aliases': return undefined;
  }
}

export function parseNetworkList(label: string, value: string, options: LabelOptions = {}): string[] {
  const names = value.split(',').map((n) => n.trim());
  if (names.length > MAX_NETWORKS) bad(label, value, `more than ${MAX_NETWORKS} networks`, `ask for at most ${MAX_NETWORKS}`);
  names.forEach((name, i) => {
    if (!isValidNetworkName(name)) bad(label, value, `network name ${JSON.stringify(name)} is invalid`, 'use names as listed by `dockcni networks ls`');
    if (names.indexOf(name) !== i) bad(label, value, `network ${name} is listed twice`, 'list each network once');
    if (options.allowNetworks && !options.allowNetworks.has(name)) {
      bad(label, value, `network ${name} is not allowed on this host`, `ask for one of: ${[...options.allowNetworks].join(', ')}`);
    }
  });
  return names;
}

/** undefined when the container did not opt in; throws InvalidInputError naming the label otherwise. */
export function parseLabels(labels: Readonly<Record<string, string>>, options: LabelOptions = {}): WireRequest | undefined {
  const list = labels[NETWORKS_LABEL];
  if (list === undefined) return undefined;
  for (const [key, value] of Object.entries(labels)) {
    if (key.startsWith(LABEL_PREFIX) && value.length > MAX_LABEL_VALUE) bad(key, `${value.slice(0, 40)}…`, `longer than ${MAX_LABEL_VALUE} characters`, 'shorten it');
  }
  const names = parseNetworkList(NETWORKS_LABEL, list, options);
  const service = labels[COMPOSE_SERVICE_LABEL];
  const serviceAliases = service === undefined ? [] : parseAliases(COMPOSE_SERVICE_LABEL, service);
  const group = service === undefined ? undefined : `${labels[COMPOSE_PROJECT_LABEL] ?? ''}/${service}`;
  const perNetwork = names.map(() => ({ caps: {} as Record<string, unknown>, args: [] as CniArgs, aliases: [...serviceAliases] }));
  for (const [key, value] of Object.entries(labels)) {
    if (!key.startsWith(LABEL_PREFIX) || INTERNAL.has(key)) continue;
    const [option, ...rest] = key.slice(LABEL_PREFIX.length).split('.');
    if (!OPTIONS.includes(option as Option)) {
      bad(key, value, 'unknown dockcni label', `use dockcni.networks or dockcni.{${OPTIONS.join(',')}}[.<network>]`);
    }
    const target = rest.length === 0 ? 0 : names.indexOf(rest.join('.'));
    if (target < 0) bad(key, value, `network ${JSON.stringify(rest.join('.'))} is not in ${NETWORKS_LABEL}`, `add it to ${NETWORKS_LABEL} or fix the suffix`);
    const slot = perNetwork[target]!;
    if (option === 'args') slot.args = [...slot.args, ...parseExtraArgs(key, value, options)];
    else if (option === 'aliases') {
      slot.aliases = [...new Set([...slot.aliases, ...parseAliases(key, value)])];
      checkAliasCount(`label ${key}`, slot.aliases);
    }
    else {
      const cap = capability(option as Option, key, value);
      if (cap) slot.caps[cap[0]] = cap[1];
    }
  }
  return {
    networks: names.map((network, i) => ({ network, ifName: `eth${i}`, capabilityArgs: perNetwork[i]!.caps, extraArgs: perNetwork[i]!.args, aliases: perNetwork[i]!.aliases, ...(group === undefined ? {} : { group }) })),
  };
}
