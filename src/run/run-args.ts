import { InvalidInputError } from '../errors.js';

/**
 * Splits `dockcni run` arguments into dockcni's own flags, the networking flags dockcni applies through
 * CNI or the sandbox (Docker refuses them with --network container:…), and everything else, which goes
 * to `docker run` untouched. Everything from the image on is the app's command.
 */
export interface RunArgs {
  readonly networks: string[];
  readonly publish: string[];
  readonly ips: string[];
  readonly mac?: string | undefined;
  readonly dns: string[];
  readonly dnsSearch: string[];
  readonly dnsOptions: string[];
  readonly addHosts: string[];
  /** --network-alias: more names peers resolve the app by, on each of its networks. */
  readonly networkAliases: string[];
  readonly hostname?: string | undefined;
  readonly name?: string | undefined;
  /** The user's --cidfile: dockcni reads the app's id from it. */
  readonly cidfile?: string | undefined;
  readonly detach: boolean;
  /** --restart: passed to docker; only the runtime path can honour it (a restarted app would find its sandbox gone). */
  readonly restart?: string | undefined;
  readonly dockcni: Record<string, string | boolean>;
  /** docker run flags, in order, before the image. */
  readonly passthrough: string[];
  readonly image: string;
  readonly command: string[];
}

/** docker run's flags that take no value; every other flag takes one. */
const BOOLEAN_FLAGS = new Set([
  '-d', '--detach', '-i', '--interactive', '-t', '--tty', '--rm', '--init', '--privileged', '--read-only',
  '--no-healthcheck', '--oom-kill-disable', '-q', '--quiet', '--disable-content-trust', '--sig-proxy', '--help',
]);
const DOCKCNI_VALUE = new Set(['--conf-dir', '--cni-path', '--cache-dir', '--state-dir', '--run-dir', '--sandbox-image', '--timeout', '--docker-host', '--pod-namespace', '--dockcni-runtime']);
const DOCKCNI_BOOL = new Set(['--trace', '--dockcni-quiet', '--sandbox']);
const REFUSED: Record<string, string> = {
  '-P': 'CNI has no "exposed ports"; publish each port with -p HOSTPORT:CONTAINERPORT',
  '--publish-all': 'CNI has no "exposed ports"; publish each port with -p HOSTPORT:CONTAINERPORT',
  '--link': 'links are a Docker network feature; use --add-host',
  '--expose': 'publish with -p HOSTPORT:CONTAINERPORT',
};

/**
 * A sysctl of one interface (`net.ipv4.conf.eth0.…`): Docker applies sysctls when it creates the
 * container, before dockcni's interfaces exist, and Docker 28 (API 1.48) refuses interface sysctls
 * outright. The tuning plugin sets them on the interface once it is there.
 */
function checkSysctl(value: string): void {
  const iface = /^net\.ipv[46]\.(?:conf|neigh)\.([^.=]+)\./.exec(value)?.[1];
  if (iface !== undefined && !['all', 'default', 'lo'].includes(iface)) {
    throw new InvalidInputError('--sysctl', value, `sets ${iface}, an interface CNI creates after Docker applies sysctls (and Docker 28 refuses interface sysctls)`,
      `put it in the network's chain: {"type": "tuning", "sysctl": {"${value.split('=')[0] ?? ''}": "${value.split('=').slice(1).join('=')}"}} after the main plugin`);
  }
}

export function parseRunArgs(argv: readonly string[]): RunArgs {
  const out: Omit<RunArgs, 'image' | 'command'> = {
    networks: [], publish: [], ips: [], dns: [], dnsSearch: [], dnsOptions: [], addHosts: [], networkAliases: [], detach: false, dockcni: {}, passthrough: [],
  };
  const mutable = out as { -readonly [K in keyof typeof out]: (typeof out)[K] };
  let i = 0;
  for (; i < argv.length; i++) {
    const token = argv[i] ?? '';
    if (token === '--') { i++; break; }
    if (!token.startsWith('-') || token === '-') break;
    const eq = token.startsWith('--') ? token.indexOf('=') : -1;
    const flag = eq > 0 ? token.slice(0, eq) : token;
    const inline = eq > 0 ? token.slice(eq + 1) : undefined;
    if (REFUSED[flag]) throw new InvalidInputError('flag', flag, 'not supported by dockcni run', REFUSED[flag]);
    if (DOCKCNI_BOOL.has(flag)) { mutable.dockcni[flag.slice(2)] = inline === undefined ? true : inline !== 'false'; continue; }
    // Short boolean clusters such as -it, -dit.
    if (/^-[a-zA-Z]{2,}$/.test(token) && [...token.slice(1)].every((c) => BOOLEAN_FLAGS.has(`-${c}`))) {
      if (token.includes('d')) mutable.detach = true;
      out.passthrough.push(token);
      continue;
    }
    if (BOOLEAN_FLAGS.has(flag)) {
      if (flag === '-d' || flag === '--detach') mutable.detach = inline === undefined || inline !== 'false';
      out.passthrough.push(token);
      continue;
    }
    const value = inline ?? argv[++i];
    if (value === undefined) throw new InvalidInputError('flag', flag, 'needs a value', `write ${flag} VALUE`);
    if (DOCKCNI_VALUE.has(flag)) { mutable.dockcni[flag.slice(2)] = value; continue; }
    switch (flag) {
      case '--network': case '--net': out.networks.push(value); break;
      case '-p': case '--publish': out.publish.push(value); break;
      case '--ip': case '--ip6': out.ips.push(value); break;
      case '--mac-address': mutable.mac = value; break;
      case '--dns': out.dns.push(value); break;
      case '--dns-search': out.dnsSearch.push(value); break;
      case '--dns-option': case '--dns-opt': out.dnsOptions.push(value); break;
      case '--add-host': out.addHosts.push(value); break;
      case '--network-alias': case '--net-alias': out.networkAliases.push(value); break;
      case '-h': case '--hostname': mutable.hostname = value; break;
      case '--name': mutable.name = value; out.passthrough.push('--name', value); break;
      case '--cidfile': mutable.cidfile = value; break;
      case '--restart': mutable.restart = value; out.passthrough.push(`--restart=${value}`); break;
      case '--sysctl': checkSysctl(value); out.passthrough.push(flag, value); break;
      default: out.passthrough.push(flag, value);
    }
  }
  const image = argv[i];
  if (image === undefined) throw new InvalidInputError('arguments', argv.join(' '), 'no image given', 'write dockcni run [FLAGS] IMAGE [COMMAND…]');
  if (out.networks.some((n) => ['none', 'host', 'bridge'].includes(n) || n.startsWith('container:'))) {
    throw new InvalidInputError('--network', out.networks.join(','), 'dockcni run wires CNI networks; Docker network modes do not apply', 'name CNI networks (see `dockcni networks ls`), or use plain docker run');
  }
  return { ...out, image, command: argv.slice(i + 1) };
}
