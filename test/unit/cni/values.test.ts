import test from 'ava';
import { formatCniArgs, parseCniArgs } from '../../../src/cni/args.js';
import { convertResult, validateResult } from '../../../src/cni/result.js';
import { InvalidInputError } from '../../../src/errors.js';

test('CNI_ARGS parse and format round-trip', (t) => {
  const args = parseCniArgs('IgnoreUnknown=1;K8S_POD_NAME=web');
  t.deepEqual(args, [['IgnoreUnknown', '1'], ['K8S_POD_NAME', 'web']]);
  t.is(formatCniArgs(args), 'IgnoreUnknown=1;K8S_POD_NAME=web');
  t.deepEqual(parseCniArgs(''), []);
});

for (const bad of ['K', '=v', 'K=', 'K=a=b', 'K=a\nB=c', 'K=a\0', 'K K=v', `K=${'x'.repeat(1025)}`]) {
  test(`CNI_ARGS rejects ${JSON.stringify(bad).slice(0, 30)}`, (t) => {
    t.throws(() => parseCniArgs(bad), { instanceOf: InvalidInputError, message: /invalid CNI_ARGS/ });
  });
}


test('results convert between 0.4.0 and 1.0.0 shapes', (t) => {
  const old = validateResult({ cniVersion: '0.4.0', ips: [{ version: '4', address: '10.0.0.2/24' }] });
  t.deepEqual(convertResult(old, '1.0.0').ips, [{ address: '10.0.0.2/24' }]);
  const modern = validateResult({ cniVersion: '1.0.0', ips: [{ address: 'fd00::2/64' }] });
  t.deepEqual(convertResult(modern, '0.3.1'), { cniVersion: '0.3.1', ips: [{ address: 'fd00::2/64', version: '6' }] });
});

test('result validation names the bad field', (t) => {
  t.throws(() => validateResult({ cniVersion: '1.0.0', ips: [{ address: '10.0.0.2/24', interface: 3 }], interfaces: [] }), { message: /ips\[0\]\.interface 3 does not index "interfaces"/ });
  t.throws(() => validateResult({ cniVersion: '1.0.0', routes: [{ dst: 'default' }] }), { message: /routes\[0\]\.dst "default"/ });
  t.throws(() => validateResult({ ips: [] }), { message: /no "cniVersion"/ });
});
