import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import { execa } from 'execa';
import { BIN, ROOT } from './fixtures.js';
import { sh, uid } from './host.js';
import type { Dirs } from './docker.js';

type Json = Record<string, unknown>;

export interface Example {
  readonly name: string;
  readonly conf: Json;
  readonly ipamDir: string;
}

/**
 * A shipped conflist from examples/networks, with only what must be the test's own changed: its name,
 * bridge, subnets and IPAM dir (and whatever `patch` sets). Its bridge goes at teardown.
 */
export async function example(t: ExecutionContext, d: Dirs, file: string, patch: (conf: Json) => void = () => undefined): Promise<Example> {
  const conf = JSON.parse(await readFile(path.join(ROOT, 'examples/networks', file), 'utf8')) as Json;
  const name = uid('ex');
  const ipamDir = path.join(d.root, `ipam-${name}`);
  conf['name'] = name;
  const plugins = (conf['plugins'] as Json[] | undefined) ?? [conf];
  for (const p of plugins) {
    if (typeof p['bridge'] === 'string') {
      p['bridge'] = uid('dcbr');
      const bridge = p['bridge'] as string;
      t.teardown(async () => { await sh('ip', ['link', 'del', bridge], { reject: false }); });
    }
    const ipam = p['ipam'] as Json | undefined;
    if (ipam?.['type'] === 'host-local') ipam['dataDir'] = ipamDir;
  }
  patch(conf);
  await writeFile(path.join(d.confDir, `${file.split('-')[0]}-${name}${path.extname(file)}`), JSON.stringify(conf));
  return { name, conf, ipamDir };
}

export function firstPlugin(conf: Json): Json {
  return ((conf['plugins'] as Json[] | undefined) ?? [conf])[0] ?? {};
}

export async function attach(d: Dirs, id: string, args: string[]) {
  return execa('node', [BIN, 'attach', id, ...args, ...d.flags], { reject: false });
}

export async function detach(d: Dirs, id: string) {
  return execa('node', [BIN, 'detach', id, ...d.flags]);
}

export interface Lan {
  /** The host side of the LAN stand-in: the parent for macvlan/ipvlan/vlan. */
  readonly parent: string;
  /** The "LAN host" network namespace, whose eth0 has `.1` of the subnet. */
  readonly ns: string;
  readonly prefix: string;
}

/** A LAN stand-in: a veth from the host to a "LAN host" netns, 10.240.<octet>.0/24. */
export async function lan(t: ExecutionContext, octet: number): Promise<Lan> {
  const ns = uid('dclan');
  const parent = uid('dcl');
  const prefix = `10.240.${octet}`;
  await sh('ip', ['netns', 'add', ns]);
  t.teardown(async () => {
    await sh('ip', ['netns', 'del', ns], { reject: false });
    await sh('ip', ['link', 'del', parent], { reject: false });
  });
  await sh('ip', ['link', 'add', parent, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
  await sh('ip', ['link', 'set', parent, 'up']);
  await sh('ip', ['-n', ns, 'addr', 'add', `${prefix}.1/24`, 'dev', 'eth0']);
  await sh('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
  await sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  return { parent, ns, prefix };
}
