import { copyFile, mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';

export const NODE_BASE_IMAGE = 'dockcni-test-nodebase:latest';

/** Executables the sidecar needs, and the names iptables answers to. */
const BINARIES = ['/usr/bin/node', '/usr/sbin/xtables-nft-multi', '/usr/bin/nsenter', '/usr/bin/mount', '/usr/bin/umount', '/usr/bin/busybox'];
const XTABLES_NAMES = ['iptables', 'iptables-save', 'iptables-restore', 'ip6tables', 'ip6tables-save', 'ip6tables-restore'];

async function libraries(binary: string): Promise<string[]> {
  const { stdout } = await execa('ldd', [binary], { reject: false });
  return [...stdout.matchAll(/(\/\S+\.so[^\s]*)/g)].map((m) => m[1] ?? '');
}

/**
 * An image with Node, iptables (nft), mount tools and busybox, assembled from this machine's own
 * binaries and libraries: the sidecar's BASE when no image can be pulled.
 */
export async function buildNodeBase(): Promise<void> {
  if ((await execa('docker', ['image', 'inspect', NODE_BASE_IMAGE], { reject: false })).exitCode === 0) return;
  const ctx = await mkdtemp(path.join(tmpdir(), 'dockcni-base-'));
  try {
    const root = path.join(ctx, 'root');
    const files = new Set<string>();
    for (const bin of BINARIES) {
      files.add(bin);
      for (const lib of await libraries(bin)) files.add(lib);
    }
    const xtables = '/usr/lib/x86_64-linux-gnu/xtables';
    for (const mod of await readdir(xtables)) {
      files.add(path.join(xtables, mod));
      for (const lib of await libraries(path.join(xtables, mod))) files.add(lib);
    }
    for (const file of files) {
      await mkdir(path.join(root, path.dirname(file)), { recursive: true });
      await copyFile(file, path.join(root, file));
    }
    for (const name of XTABLES_NAMES) await symlink('xtables-nft-multi', path.join(root, 'usr/sbin', name));
    await mkdir(path.join(root, 'bin'), { recursive: true });
    await symlink('/usr/bin/busybox', path.join(root, 'bin/sh'));
    for (const dir of ['tmp', 'run', 'etc']) await mkdir(path.join(root, dir), { recursive: true });
    await writeFile(path.join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
    await writeFile(path.join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY root /\nENV PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n');
    await execa('docker', ['build', '-q', '-t', NODE_BASE_IMAGE, ctx], { env: { DOCKER_BUILDKIT: '0' } });
  } finally {
    await rm(ctx, { recursive: true, force: true });
  }
}

/** dockcni's sidecar image, built with examples/compose/Dockerfile on that base. */
export async function buildSidecar(tag: string, repo: string): Promise<void> {
  await buildNodeBase();
  const { stdout } = await execa('node', [path.join(repo, 'examples/compose/build-context.mjs')]);
  const ctx = stdout.trim();
  try {
    await execa('docker', ['build', '-q', '--build-arg', `BASE=${NODE_BASE_IMAGE}`, '-t', tag, ctx], { env: { DOCKER_BUILDKIT: '0' } });
  } finally {
    await rm(ctx, { recursive: true, force: true });
  }
}
