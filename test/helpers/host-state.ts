import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

/**
 * Everything a test can leave on the host, as one line per item, read without asking dockcni: the run
 * (test/host/run-tests.js) compares it before and after all tests, and each test's dirs() before and
 * after that test. A probe that cannot run throws: a snapshot that cannot be taken is not "nothing
 * leaked".
 */
/** An argument that makes a process one a test started: a CNI plugin, a dockcni daemon or CLI, the runtime or its Node half. */
const PROCESS_WORDS = /^(\/opt\/cni\/bin|\/usr\/lib\/cni|\/usr\/libexec\/cni)\/|\/test\/fixtures\/plugins\/|\/bin\/dockcni(\.js|-runtime)$|\/dist\/runtime\/main\.mjs$|^(\/run|\/var\/lib)\/dcct\d\/|^unix:\/\/\/run\/dcct\d\/|^dcct\d$/;

export function hostState(): string[] {
  const out = (file: string, args: readonly string[]) => {
    try {
      return execFileSync(file, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });
    } catch (error) {
      throw new Error(`the host snapshot could not run ${file} ${args.join(' ')}: ${(error as Error).message}`, { cause: error });
    }
  };
  const lines = (text: string, re: RegExp) => text.split('\n').filter((l) => re.test(l)).map((l) => l.trim());
  const dir = (d: string) => (existsSync(d) ? readdirSync(d).map((f) => path.join(d, f)) : []);
  const rules = (tool: string) => {
    const text = out(tool, []);
    return [
      // Per-container chains (bridge masquerade, portmap DNAT/SNAT), without their counters.
      ...lines(text, /^:CNI-(DN-|SN-)?[0-9a-f]{20,}/).map((l) => `${tool} chain ${l.split(' ')[0]}`),
      // Rules naming a container (plugins' comments, dockcni's port-mapped rules), and the firewall plugin's per-address accept rules.
      ...lines(text, /^-A /).filter((l) => /id: \\"|dockcni/.test(l) || (/^-A CNI-FORWARD /.test(l) && / -[ds] [0-9a-f.:]+\/\d+ /.test(l))).map((l) => `${tool} rule ${l}`),
    ];
  };
  const docker = JSON.parse(out('docker', ['info', '--format', '{{json .}}'])) as { Runtimes?: Record<string, unknown>; DefaultRuntime?: string; LiveRestoreEnabled?: boolean };
  const processes = readdirSync('/proc').filter((p) => /^\d+$/.test(p) && Number(p) !== process.pid).flatMap((p) => {
    try {
      const argv = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').filter(Boolean);
      const ours = argv.some((a) => PROCESS_WORDS.test(a)) || (argv[0] === 'runc' && argv[1] === 'init') || path.basename(argv[0] ?? '') === 'etcd';
      return ours ? [`process ${argv.join(' ')}`] : [];
    } catch {
      return []; // exited while being listed
    }
  });
  return [
    ...lines(out('docker', ['ps', '-aq']), /./).map((l) => `container ${l}`),
    ...lines(out('ip', ['netns', 'list']), /./).map((l) => `netns ${l.split(' ')[0]}`),
    ...rules('iptables-save'),
    ...rules('ip6tables-save'),
    ...lines(out('ip', ['-o', 'link']), /veth|dcbr|dockcni0|dc-|bwp|dcct|dcc-|dcx-/).map((l) => `link ${l.split(':')[1]?.trim().split('@')[0]}`),
    // The cluster harness's hosts (test/helpers/cluster.ts): their dirs, cgroups, image, and dockerd shims' sockets.
    ...['/run', '/var/lib'].flatMap(dir).filter((d) => /\/dcct/.test(d)).map((d) => `dir ${d}`),
    ...dir('/sys/fs/cgroup').flatMap(dir).filter((d) => /\/dcct\d$/.test(d)).map((d) => `cgroup ${d}`),
    ...dir('/run/containerd/s').map((f) => `containerd shim socket ${f}`),
    // dockerd's own pins (/run/docker/netns/default, made on its first bridged container) are Docker's state.
    ...lines(readFileSync('/proc/mounts', 'utf8'), /^nsfs /).map((l) => l.split(' ')[1] ?? '').filter((p) => !/^\/(var\/)?run\/docker\//.test(p)).map((p) => `netns pin ${p}`),
    `dockerd live-restore ${docker.LiveRestoreEnabled}`,
    `dockerd runtimes ${Object.keys(docker.Runtimes ?? {}).sort().join(',')} default ${docker.DefaultRuntime}`,
    ...dir('/etc/docker').filter((f) => statSync(f).isFile()).map((f) => `file ${f} ${createHash('sha256').update(readFileSync(f)).digest('hex').slice(0, 16)}`),
    ...dir('/var/lib/cni/results').map((f) => `cache ${f}`),
    ...dir('/var/lib/dockcni/attachments').map((f) => `record ${f}`),
    // The lines names write into containers' hosts files (a container left, or lines left in one).
    ...dir('/var/lib/docker/containers').filter((d) => existsSync(path.join(d, 'hosts')) && readFileSync(path.join(d, 'hosts'), 'utf8').includes('# dockcni')).map((d) => `hosts lines in ${d}/hosts`),
    // Every network's host-local reservations (its lock and last-reserved files are bookkeeping).
    ...dir('/var/lib/cni/networks').flatMap(dir).filter((f) => !/\/(lock|last_reserved_ip\.\d+)$/.test(f)).map((f) => `reservation ${f}`),
    ...processes,
  ];
}

/** What `after` has that `before` had not. */
export function added(before: readonly string[], after: readonly string[]): string[] {
  const had = new Set(before);
  return after.filter((item) => !had.has(item));
}
