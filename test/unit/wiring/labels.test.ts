import test from 'ava';
import { InvalidInputError } from '../../../src/errors.js';
import { parseLabels } from '../../../src/wiring/labels.js';

test('no dockcni.networks: not opted in', (t) => {
  t.is(parseLabels({ 'dockcni.ip': '10.0.0.1', other: 'x' }), undefined);
});

test('networks become eth0, eth1…; bare options go to the first, suffixed ones to their network', (t) => {
  const request = parseLabels({
    'dockcni.networks': 'front,back',
    'dockcni.ip': '10.1.0.5,fd00::5',
    'dockcni.mac': '02:42:0A:01:00:05',
    'dockcni.ports': '8080:80/tcp,127.0.0.1:5353:53/udp,[::1]:8443:443',
    'dockcni.bandwidth': 'ingressRate=10M,egressRate=5k,egressBurst=64k',
    'dockcni.ip.back': '10.2.0.5/24',
    'dockcni.args.back': 'FOO=bar',
    'dockcni.aliases.back': 'db,primary',
    'com.docker.compose.service': 'api',
    'com.docker.compose.project': 'shop',
  });
  t.deepEqual(request, {
    networks: [
      { network: 'front', ifName: 'eth0', extraArgs: [], aliases: ['api'], group: 'shop/api', capabilityArgs: {
        ips: ['10.1.0.5', 'fd00::5'], mac: '02:42:0a:01:00:05',
        portMappings: [
          { hostPort: 8080, containerPort: 80, protocol: 'tcp' },
          { hostPort: 5353, containerPort: 53, protocol: 'udp', hostIP: '127.0.0.1' },
          { hostPort: 8443, containerPort: 443, protocol: 'tcp', hostIP: '::1' },
        ],
        bandwidth: { ingressRate: 10_000_000, ingressBurst: 2147483647, egressRate: 5000, egressBurst: 64000 },
      } },
      { network: 'back', ifName: 'eth1', extraArgs: [['FOO', 'bar']], aliases: ['api', 'db', 'primary'], group: 'shop/api', capabilityArgs: { ips: ['10.2.0.5/24'] } },
    ],
  });
});

const rejects = test.macro((t, labels: Record<string, string>, message: RegExp, fix: RegExp, allow?: string[]) => {
  const error = t.throws(() => parseLabels({ 'dockcni.networks': 'front', ...labels }, { allowNetworks: allow ? new Set(allow) : undefined }), { instanceOf: InvalidInputError });
  t.regex(error?.message ?? '', message);
  t.regex(error?.fix ?? '', fix, 'the fix for this mistake');
});

test('an invalid address', rejects, { 'dockcni.ip': '10.0.0.256' }, /invalid label dockcni\.ip "10\.0\.0\.256": "10\.0\.0\.256" is not an IP address/, /write addresses as 10\.1\.0\.5/);
test('port 0', rejects, { 'dockcni.ports': '0:80' }, /port 0 is outside 1-65535/, /use ports from 1 to 65535/);
test('port 65536', rejects, { 'dockcni.ports': '65536:80' }, /port 65536 is outside 1-65535/, /use ports from 1 to 65535/);
test('port a:b', rejects, { 'dockcni.ports': 'a:b' }, /port "a" is not a number/, /HOSTPORT:CONTAINERPORT/);
test('a port range', rejects, { 'dockcni.ports': '8000-8010:80' }, /ranges are not supported/, /HOSTPORT:CONTAINERPORT/);
test('an unknown protocol', rejects, { 'dockcni.ports': '80:80/icmp' }, /unknown protocol "icmp"/, /use tcp, udp or sctp/);
test('a bad host IP', rejects, { 'dockcni.ports': '300.1.1.1:80:80' }, /host IP "300\.1\.1\.1"/, /write 127\.0\.0\.1:8080:80/);
test('a multicast MAC', rejects, { 'dockcni.mac': '01:00:5e:00:00:01' }, /multicast MAC/, /use an even first octet/);
test('a malformed MAC', rejects, { 'dockcni.mac': '02:42:0a' }, /not a MAC address/, /six hex pairs/);
test('CNI_ARGS injection with ;', rejects, { 'dockcni.args': 'A=1;K8S_POD_NAMESPACE=kube-system' }, /K8S_POD_NAMESPACE is set by dockcni/, /remove K8S_POD_NAMESPACE from the label/);
test('CNI_ARGS injection with =', rejects, { 'dockcni.args': 'A=b=c' }, /without ";", "=", newline or NUL/, /remove the separator characters/);
test('CNI_ARGS injection with a newline', rejects, { 'dockcni.args': 'A=b\nB=c' }, /without ";", "=", newline or NUL/, /remove the separator characters/);
test('CNI_ARGS injection with NUL', rejects, { 'dockcni.args': 'A=b\0' }, /without ";", "=", newline or NUL/, /remove the separator characters/);
test('overriding the identity', rejects, { 'dockcni.args': 'K8S_POD_INFRA_CONTAINER_ID=abc' }, /cannot be overridden/, /remove K8S_POD_INFRA_CONTAINER_ID from the label/);
test('IgnoreUnknown', rejects, { 'dockcni.args': 'IgnoreUnknown=0' }, /cannot be overridden/, /remove IgnoreUnknown from the label/);
test('a network name with a slash', rejects, { 'dockcni.networks': '../../etc/passwd' }, /network name "\.\.\/\.\.\/etc\/passwd" is invalid/, /dockcni networks ls/);
test('a network name with ..', rejects, { 'dockcni.networks': 'a..b' }, /is invalid/, /dockcni networks ls/);
test('a network outside --allow-networks', rejects, { 'dockcni.networks': 'front,admin' }, /network admin is not allowed on this host/, /ask for one of: front/, ['front']);
test('a suffix naming no requested network', rejects, { 'dockcni.ip.back': '10.0.0.1' }, /network "back" is not in dockcni\.networks/, /add it to dockcni\.networks or fix the suffix/);
test('an unknown dockcni label', rejects, { 'dockcni.ipp': '10.0.0.1' }, /unknown dockcni label/, /use dockcni\.networks or dockcni\.\{ip,mac,ports,bandwidth,args,aliases\}/);
test('an alias that could start another hosts entry', rejects, { 'dockcni.aliases': 'db 10.0.0.1 evil' }, /"db 10\.0\.0\.1 evil" holds white space/, /comma-separated/);
test('an alias with a newline', rejects, { 'dockcni.aliases': 'db\nevil' }, /holds white space or "#"/, /letters, digits/);
test('an alias that names a host outside the network', rejects, { 'dockcni.aliases': 'api.github.com' }, /has dots: peers resolve only single-label names/, /single names/);
test('an alias that reads as an address', rejects, { 'dockcni.aliases': '0x7f000001' }, /reads as an IP address/, /single names/);
test('the alias localhost', rejects, { 'dockcni.aliases': 'localhost' }, /is reserved/, /single names/);
test('an ip6- alias', rejects, { 'dockcni.aliases': 'ip6-allnodes' }, /is reserved/, /single names/);
test('an alias longer than a DNS label', rejects, { 'dockcni.aliases': 'a'.repeat(64) }, /is not a DNS label/, /single names/);
test('more aliases than a network takes', rejects, { 'dockcni.aliases': 'a1,a2,a3,a4,a5,a6,a7,a8,a9' }, /more than 8 aliases/, /at most 8 per network/);
test('more aliases than a network takes, over two labels', rejects, { 'dockcni.aliases': 'a1,a2,a3,a4,a5', 'dockcni.aliases.front': 'b1,b2,b3,b4' }, /more than 8 aliases/, /at most 8 per network/);
test('an oversize value', rejects, { 'dockcni.ip': '1'.repeat(5000) }, /longer than 4096 characters/, /shorten it/);
test('a network listed twice', rejects, { 'dockcni.networks': 'a,a' }, /listed twice/, /list each network once/);
test('a bandwidth burst without a rate', rejects, { 'dockcni.bandwidth': 'ingressBurst=10k' }, /ingressBurst without ingressRate/, /add ingressRate/);
test('the identity compared without case', rejects, { 'dockcni.args': 'k8s_pod_name=admin' }, /k8s_pod_name is set by dockcni/, /remove k8s_pod_name from the label/);
test('an address through CNI_ARGS', rejects, { 'dockcni.args': 'IP=10.199.0.9' }, /IP would give the container an address or MAC without dockcni's checks/, /use the dockcni\.ip label/);
test('a gateway through CNI_ARGS', rejects, { 'dockcni.args': 'GATEWAY=10.199.0.1' }, /without dockcni's checks/, /use the dockcni\.ip label/);
test('a MAC through CNI_ARGS, lower case', rejects, { 'dockcni.args': 'mac=02:00:00:00:00:09' }, /mac would give the container an address or MAC/, /use the dockcni\.mac label/);

test('--allow-args: only the listed CNI_ARGS keys; none when the list is empty', (t) => {
  const parse = (allow: string[], args: string) => parseLabels({ 'dockcni.networks': 'front', 'dockcni.args': args }, { allowArgs: new Set(allow) });
  t.deepEqual(parse(['TIER'], 'TIER=web')?.networks[0]?.extraArgs, [['TIER', 'web']]);
  t.throws(() => parse(['TIER'], 'TIER=web;ZONE=a'), { message: /CNI_ARGS key ZONE is not allowed on this host/ });
  const none = t.throws(() => parse([], 'TIER=web'), { instanceOf: InvalidInputError });
  t.regex(none?.fix ?? '', /allows no dockcni\.args keys \(dockcni daemon --allow-args\)/);
});
