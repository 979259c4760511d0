import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import test, { type ExecutionContext } from 'ava';
import { ROOT, tempDir } from '../../helpers/fixtures.js';

const run = promisify(execFile);
const SCRIPT = path.join(ROOT, 'bin/dockcni-runtime');
const ID = 'e'.repeat(64);

/** A runc stand-in that writes its argv, one word a line, and exits with the status its file names. */
async function fakeRunc(t: ExecutionContext) {
  const dir = await tempDir(t);
  const calls = path.join(dir, 'calls');
  const node = path.join(dir, 'node-called');
  await writeFile(path.join(dir, 'runc'), `#!/bin/sh\nprintf '%s\\n' "$@" > ${calls}\nexit $(cat ${dir}/status 2>/dev/null || echo 0)\n`, { mode: 0o755 });
  // A "node" that only says it was started: which commands go to the Node half.
  await writeFile(path.join(dir, 'node'), `#!/bin/sh\necho "$@" >> ${node}\ncat >/dev/null\n`, { mode: 0o755 });
  const root = path.join(dir, 'docker');
  const state = path.join(dir, 'state');
  const own = [`--dockcni-runc=${path.join(dir, 'runc')}`, `--dockcni-node=${path.join(dir, 'node')}`, `--dockcni-docker-root=${root}`, `--dockcni-state-dir=${state}`];
  return {
    dir, root, state, own,
    argv: async () => (await readFile(calls, 'utf8')).split('\n').filter(Boolean),
    nodeCalls: async () => (await readFile(node, 'utf8').catch(() => '')).split('\n').filter(Boolean),
    status: (code: number) => writeFile(path.join(dir, 'status'), String(code)),
  };
}

const script = async (args: string[]) => run(SCRIPT, args).then(() => 0, (error: { code?: number }) => error.code ?? -1);

test('the runtime script passes every command it does not handle straight to runc: runc\'s words exactly, its exit status', async (t) => {
  const f = await fakeRunc(t);
  for (const words of [['features'], ['--root', '/run/runc', '--log', '/x/log.json', 'state', ID], ['kill', ID, '9'], ['--version'], ['exec', '--process', '/p.json', ID], ['start', ID]]) {
    t.is(await script([...f.own, ...words]), 0, words.join(' '));
    t.deepEqual(await f.argv(), words, `${words.join(' ')}: runc got exactly its own words, none of dockcni's`);
  }
  await f.status(3);
  t.is(await script([...f.own, 'features']), 3, 'runc\'s exit status is the runtime\'s');
  t.deepEqual(await f.nodeCalls(), [], 'none of these started Node');
});

test('create of a container whose Docker config does not name the label goes to runc alone; one that does, or whose config is missing, also starts Node', async (t) => {
  const f = await fakeRunc(t);
  const config = path.join(f.root, 'containers', ID);
  await mkdir(config, { recursive: true });
  const create = ['--root', '/run/runc', '--log', path.join(f.dir, 'log.json'), 'create', '--bundle', f.dir, '--pid-file', path.join(f.dir, 'pid'), ID];
  await writeFile(path.join(config, 'config.v2.json'), JSON.stringify({ Config: { Labels: { app: 'web' } } }));
  t.is(await script([...f.own, ...create]), 0);
  t.deepEqual(await f.argv(), create);
  t.deepEqual(await f.nodeCalls(), [], 'no label: Node is never started');
  await writeFile(path.join(config, 'config.v2.json'), JSON.stringify({ Config: { Labels: { 'dockcni.networks': 'front' } } }));
  await script([...f.own, ...create]);
  t.deepEqual(await f.argv(), create, 'runc still creates it, with its own words');
  t.is((await f.nodeCalls()).length, 1, 'and the Node half is started beside it');
  t.regex((await f.nodeCalls())[0] ?? '', /dist\/runtime\/main\.mjs create --dockcni-runc=/, 'with the whole command line');
  await writeFile(path.join(config, 'config.v2.json'), '');
  const other = 'f'.repeat(64);
  await script([...f.own, ...create.slice(0, -1), other]);
  t.is((await f.nodeCalls()).length, 2, 'a container whose config is not there goes to Node, which asks Docker');
});

test('delete starts the Node half only for a container dockcni holds a record of', async (t) => {
  const f = await fakeRunc(t);
  t.is(await script([...f.own, 'delete', '--force', ID]), 0);
  t.deepEqual(await f.argv(), ['delete', '--force', ID]);
  t.deepEqual(await f.nodeCalls(), [], 'no record: runc alone');
  await mkdir(path.join(f.state, 'attachments'), { recursive: true });
  await writeFile(path.join(f.state, 'attachments', `${ID}.json`), '{}');
  await script([...f.own, 'delete', ID]);
  t.deepEqual(await f.argv(), ['delete', ID]);
  // In the background: wait for its mark.
  for (let i = 0; i < 50 && (await f.nodeCalls()).length === 0; i++) await new Promise((r) => setTimeout(r, 20));
  t.regex((await f.nodeCalls())[0] ?? '', /main\.mjs delete /);
});

test('the script\'s facts are the TypeScript\'s: the label it greps for, the state and Docker roots, the record it looks for, the Node entry, runc\'s flags with values, its own options', async (t) => {
  const { NETWORKS_LABEL } = await import('../../../src/wiring/label-keys.js');
  const { DEFAULT_STATE_DIR } = await import('../../../src/paths.js');
  const { DEFAULT_DOCKER_ROOT } = await import('../../../src/docker/docker-client.js');
  const { AttachmentStore } = await import('../../../src/state/attachment-store.js');
  const { RUNTIME_ENTRY, RUNTIME_SCRIPT } = await import('../../../src/runtime/install.js');
  const { GLOBAL_WITH_VALUE, OPTION_NAMES } = await import('../../../src/runtime/invocation.js');
  const { MARK } = await import('../../../src/wiring/container-files.js');
  const text = await readFile(SCRIPT, 'utf8');
  t.is(RUNTIME_SCRIPT, SCRIPT, 'the script runtime install registers is this one');
  t.true(text.includes(`grep -qF '${JSON.stringify(NETWORKS_LABEL)}:'`), 'it greps config.v2.json for the label the runtime parses');
  t.regex(text, new RegExp(`^node=node runc=runc state=${DEFAULT_STATE_DIR} root=${DEFAULT_DOCKER_ROOT} own=0$`, 'm'), 'its defaults are the state dir and Docker root the TypeScript assumes');
  t.is(new AttachmentStore('$state').pathFor(ID).replace(ID, '$id'), '$state/attachments/$id.json');
  t.true(text.includes('[ -e "$state/attachments/$id.json" ]'), 'it looks for the record where the store writes it');
  t.true(text.includes(`! grep -qF '${MARK}' "$hosts"`), 'and for the mark dockcni\'s hosts lines end with');
  const entry = /entry="\$\(dirname "\$\(readlink -f "\$0"\)"\)\/([^"]+)"/.exec(text)?.[1];
  t.is(path.resolve(path.dirname(SCRIPT), entry ?? ''), RUNTIME_ENTRY, 'and starts the Node entry npm run build bundles');
  t.deepEqual(/--root\|[^)]*\)/.exec(text)?.[0].slice(0, -1).split('|').sort(), [...GLOBAL_WITH_VALUE].sort(), 'runc\'s global flags that take a value: the same list in both parsers');
  for (const option of [...text.matchAll(/--dockcni-([a-z-]+)=\*\)/g)].map((m) => m[1] ?? '')) {
    t.true(Object.hasOwn(OPTION_NAMES, option), `--dockcni-${option} is an option runtime install writes`);
  }
});

test('start, as Docker 26+ calls it after rewriting /etc/hosts: dockcni\'s lines are back before runc starts the container; a file that has them costs no Node', async (t) => {
  const f = await fakeRunc(t);
  const hosts = path.join(f.root, 'containers', ID, 'hosts');
  await mkdir(path.dirname(hosts), { recursive: true });
  const run = path.join(f.dir, 'run');
  const record = {
    containerId: ID, name: 'web', pid: 1, startedAt: '', netns: '/run/x', origin: 'runtime', hostsPath: hosts, updatedAt: '',
    networks: [{ network: 'front', ifName: 'eth0', state: 'wired', args: [], capabilityArgs: {}, addresses: ['10.1.0.7/24'], aliases: ['api'] }],
  };
  await mkdir(path.join(f.state, 'attachments'), { recursive: true });
  await writeFile(path.join(f.state, 'attachments', `${ID}.json`), JSON.stringify(record));
  // The runc stand-in keeps the hosts file as it was when runc was called.
  await writeFile(path.join(f.dir, 'runc'), `#!/bin/sh\nprintf '%s\\n' "$@" > ${path.join(f.dir, 'calls')}\ncp ${hosts} ${path.join(f.dir, 'hosts-at-start')}\n`, { mode: 0o755 });
  await writeFile(hosts, '127.0.0.1\tlocalhost\n172.17.0.9\tweb\n');
  const real = f.own.map((o) => (o.startsWith('--dockcni-node=') ? `--dockcni-node=${process.execPath}` : o));
  t.is(await script([...real, `--dockcni-run-dir=${run}`, '--root', '/run/runc', 'start', ID]), 0);
  t.deepEqual(await f.argv(), ['--root', '/run/runc', 'start', ID], 'runc got its own words');
  t.is(await readFile(path.join(f.dir, 'hosts-at-start'), 'utf8'), '127.0.0.1\tlocalhost\n172.17.0.9\tweb\n10.1.0.7\tweb api\t# dockcni\n', 'Docker\'s lines kept, dockcni\'s back, before runc started it');
  // Lines there (Docker before 26): the stand-in node would say it was started.
  t.is(await script([...f.own, `--dockcni-run-dir=${run}`, 'start', ID]), 0);
  t.deepEqual(await f.nodeCalls(), [], 'no Node when the lines are there');
});
