import test from 'ava';
import { InvalidInputError } from '../../../src/errors.js';
import { parseRunArgs } from '../../../src/run/run-args.js';
import { sandboxLabels } from '../../../src/run/run.js';

test('networking flags are taken out; docker flags pass through; the command follows the image', (t) => {
  const args = parseRunArgs(['-it', '--rm', '--name', 'web', '-e', 'A=1', '--network', 'front', '--net=back', '-p', '8080:80',
    '--ip', '10.1.0.5', '--mac-address', '02:00:00:00:00:01', '--dns', '10.0.0.53', '--add-host', 'db:10.0.0.9', '-h', 'box',
    '--conf-dir', '/tmp/n', '--trace', '-v', '/a:/b', 'busybox', 'sh', '-c', 'echo -p 1:2 --network x']);
  t.deepEqual(args.networks, ['front', 'back']);
  t.deepEqual(args.publish, ['8080:80']);
  t.deepEqual(args.ips, ['10.1.0.5']);
  t.is(args.mac, '02:00:00:00:00:01');
  t.deepEqual(args.dns, ['10.0.0.53']);
  t.deepEqual(args.addHosts, ['db:10.0.0.9']);
  t.is(args.hostname, 'box');
  t.is(args.name, 'web');
  t.false(args.detach);
  t.deepEqual(args.dockcni, { 'conf-dir': '/tmp/n', trace: true });
  t.deepEqual(args.passthrough, ['-it', '--rm', '--name', 'web', '-e', 'A=1', '-v', '/a:/b']);
  t.is(args.image, 'busybox');
  t.deepEqual(args.command, ['sh', '-c', 'echo -p 1:2 --network x']);
});

test('-d and clusters such as -dit detach', (t) => {
  t.true(parseRunArgs(['-d', 'img']).detach);
  t.true(parseRunArgs(['-dit', 'img']).detach);
  t.false(parseRunArgs(['-it', 'img']).detach);
});

test('sysctls of no one interface go to docker run as given', (t) => {
  for (const sysctl of ['net.ipv4.conf.all.rp_filter=2', 'net.ipv6.conf.default.disable_ipv6=0', 'net.core.somaxconn=1024', 'net.ipv4.ip_unprivileged_port_start=0']) {
    t.deepEqual(parseRunArgs(['--sysctl', sysctl, 'img']).passthrough, ['--sysctl', sysctl], sysctl);
  }
});

test('run flags become the same labels the daemon reads', (t) => {
  const labels = sandboxLabels(parseRunArgs(['--network', 'a', '--network', 'b', '--ip', '10.0.0.5', '-p', '80:8080', 'img']));
  t.deepEqual(labels, { 'dockcni.networks': 'a,b', 'dockcni.ip': '10.0.0.5', 'dockcni.ports': '80:8080' });
  t.is(sandboxLabels(parseRunArgs(['img']))['dockcni.networks'], 'dockcni');
});

for (const [argv, message] of [
  [['-P', 'img'], /-P.*not supported.*CNI has no "exposed ports"; publish each port with -p HOSTPORT:CONTAINERPORT/],
  [['--sysctl', 'net.ipv4.conf.eth0.rp_filter=2', 'img'], /invalid --sysctl "net\.ipv4\.conf\.eth0\.rp_filter=2": sets eth0, an interface CNI creates after Docker applies sysctls.*\{"type": "tuning", "sysctl": \{"net\.ipv4\.conf\.eth0\.rp_filter": "2"\}\}/],
  [['--sysctl=net.ipv6.neigh.eth1.retrans_time_ms=500', 'img'], /sets eth1/],
  [['--link', 'db', 'img'], /--link.*not supported.*use --add-host/],
  [['--expose', '80', 'img'], /--expose.*not supported.*publish with -p/],
  [['--network', 'host', 'img'], /Docker network modes do not apply/],
  [['--network', 'container:x', 'img'], /Docker network modes do not apply/],
  [['--rm'], /no image given/],
  [['-e'], /-e.*needs a value/],
] as const) {
  test(`refuses ${argv.join(' ')}`, (t) => {
    const error = t.throws(() => parseRunArgs(argv), { instanceOf: InvalidInputError });
    t.regex(`${error?.message} — ${error?.fix}`, message);
  });
}
