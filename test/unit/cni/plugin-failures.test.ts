import test, { type ExecutionContext } from 'ava';
import { CniPluginError, type PluginFailureKind } from '../../../src/cni/plugin-error.js';
import { PluginNotFoundError } from '../../../src/errors.js';
import { sandbox } from '../../helpers/fixtures.js';

/** Each way a plugin can fail ADD becomes one CniPluginError; the list is rolled back; nothing is cached. */
const failsAs = test.macro(async (t: ExecutionContext, fixture: Record<string, unknown>, kind: PluginFailureKind, message: RegExp) => {
  const s = await sandbox(t);
  const engine = s.engine(1500);
  const error = await t.throwsAsync(engine.add(s.list([{ id: 'ok' }, { id: 'bad', fixture: { ...fixture, failOn: ['ADD'] } }]), s.rt()), { instanceOf: CniPluginError });
  t.is(error?.kind, kind);
  t.is(error?.plugin, 'fixture');
  t.regex(error?.message ?? '', message);
  t.deepEqual((await engine.cachedAttachments()).entries, []);
  const dels = (await s.calls()).filter((c) => c.command === 'DEL').map((c) => c.stdin['id']);
  t.deepEqual(dels, ['bad', 'ok']);
});

test('a CNI error object', failsAs, { fail: { code: 11, msg: 'busy' } }, 'error-result', /\[CNI code 11: try again later\]: busy/);
test('exit non-zero silently', failsAs, { exit: 1 }, 'no-output', /failed \(ADD\): exited with status 1 and printed nothing/);
test('stderr only', failsAs, { exit: 2, stderr: 'could not open /dev/net\nmore' }, 'no-output', /failed \(ADD\): could not open \/dev\/net$/);
test('garbage on stdout with an error status', failsAs, { stdout: 'oops <html>', exit: 1 }, 'bad-output', /its output is not JSON: "oops <html>"/);
test('garbage on stdout with status 0', failsAs, { stdout: 'not json' }, 'invalid-result', /invalid result: result is not JSON/);
test('exit 0 with no result', failsAs, { stdout: '' }, 'no-result', /exited 0 but printed no result/);
test('a result with a bad address', failsAs, { result: { cniVersion: '1.0.0', ips: [{ address: '10.0.0.300/24' }] } }, 'invalid-result', /ips\[0\]\.address "10\.0\.0\.300\/24" is not an address/);
test('a crash', failsAs, { signal: 'SIGSEGV' }, 'signal', /killed by SIGSEGV/);
test('a hang past the timeout', failsAs, { sleepMs: 60_000 }, 'timeout', /did not finish within [0-9.]+ s and was killed/);
test('huge output', failsAs, { stdout: 'x'.repeat(1024), repeat: 6 * 1024 }, 'output-too-large', /more output than any result needs/);

test('a missing plugin names where dockcni looked', async (t) => {
  const s = await sandbox(t);
  const list = s.list([{ type: 'nope' }]);
  const error = await t.throwsAsync(s.engine().add(list, s.rt()), { instanceOf: PluginNotFoundError });
  t.regex(error?.message ?? '', /CNI plugin "nope" not found in .*no-such-dir:.*test\/fixtures\/plugins/);
  t.regex(error?.fix ?? '', /--cni-path/);
});
