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

test('run flags become the same labels the daemon reads', (t) => {
  const labels = sandboxLabels(parseRunArgs(['--network', 'a', '--network', 'b', '--ip', '10.0.0.5', '-p', '80:8080', 'img']));
  t.deepEqual(labels, { 'dockcni.networks': 'a,b', 'dockcni.ip': '10.0.0.5', 'dockcni.ports': '80:8080' });
  t.is(sandboxLabels(parseRunArgs(['img']))['dockcni.networks'], 'dockcni');
});

for (const [argv, message] of [
  [['-P', 'img'], /-P.*not supported/],
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
