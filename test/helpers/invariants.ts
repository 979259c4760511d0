import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { sh, type TestNetwork } from './host.js';
import type { Dirs } from './docker.js';

interface Record_ { containerId: string; pid: number; networks: { network: string; ifName: string; state: string; addresses: string[] }[] }

const list = (dir: string) => readdir(dir).catch(() => [] as string[]);

async function records(d: Dirs): Promise<Record_[]> {
  const dir = path.join(d.root, 'state/attachments');
  // A record may be removed between the listing and the read: the sampler runs while dockcni works.
  const read = async (f: string) => readFile(path.join(dir, f), 'utf8').then((text) => JSON.parse(text) as Record_, () => undefined);
  const all = await Promise.all((await list(dir)).filter((f) => f.endsWith('.json')).map(read));
  return all.filter((r): r is Record_ => r !== undefined);
}

/**
 * Addresses that two records hold at once: must never happen, at any moment. A network being deleted
 * (or failed) holds nothing: its DEL may already have released the address.
 */
export async function duplicateAddresses(d: Dirs): Promise<string[]> {
  const seen = new Map<string, string>();
  const dups: string[] = [];
  for (const r of await records(d)) {
    for (const n of r.networks.filter((x) => x.state === 'wired' || x.state === 'adding')) {
      for (const a of n.addresses) {
        const key = `${n.network}/${a}`;
        if (seen.has(key)) dups.push(`${key} held by ${seen.get(key)?.slice(0, 12)} and ${r.containerId.slice(0, 12)}`);
        seen.set(key, r.containerId);
      }
    }
  }
  return dups;
}

/**
 * dockcni's promise, checked against the host: every running labelled container (of `label`) has exactly
 * its interfaces and addresses, and no reservation, cache entry, pin, record, CNI chain or veth exists
 * without a live container. Returns the violations (empty = all hold).
 */
export async function checkInvariants(d: Dirs, networks: readonly TestNetwork[], label: string): Promise<string[]> {
  const violations: string[] = [];
  const ids = (await sh('docker', ['ps', '-q', '--no-trunc', '--filter', `label=${label}`])).stdout.split('\n').filter(Boolean);
  const running = new Map<string, { pid: number; networks: string[] }>();
  for (const id of ids) {
    const [pid, nets] = (await sh('docker', ['inspect', '-f', '{{.State.Pid}} {{index .Config.Labels "dockcni.networks"}}', id], { reject: false })).stdout.trim().split(' ');
    if (Number(pid) > 0) running.set(id, { pid: Number(pid), networks: (nets ?? '').split(',') });
  }
  const recs = await records(d);
  const byId = new Map(recs.map((r) => [r.containerId, r]));
  for (const [id, c] of running) {
    const r = byId.get(id);
    if (!r) { violations.push(`running ${id.slice(0, 12)} has no record`); continue; }
    if (r.pid !== c.pid) violations.push(`running ${id.slice(0, 12)} record is of another incarnation`);
    if (r.networks.map((n) => n.network).join(',') !== c.networks.join(',') || r.networks.some((n) => n.state !== 'wired')) {
      violations.push(`running ${id.slice(0, 12)} is not wired on ${c.networks.join(',')}`);
    }
    const inside = (await sh('docker', ['exec', id, 'ip', '-4', '-o', 'addr'], { reject: false })).stdout;
    for (const n of r.networks) {
      for (const a of n.addresses) if (!new RegExp(`${n.ifName}\\s+inet ${a.replace(/\./g, '\\.')} `).test(inside)) violations.push(`${id.slice(0, 12)} lacks ${a} on ${n.ifName}`);
    }
    const ifaces = new Set([...inside.matchAll(/^\d+: (eth\d+)\s+inet /gm)].map((m) => m[1])).size;
    if (ifaces !== r.networks.length) violations.push(`${id.slice(0, 12)} has ${ifaces} interface(s), expected ${r.networks.length}`);
  }
  for (const r of recs) if (!running.has(r.containerId)) violations.push(`record of dead ${r.containerId.slice(0, 12)}`);
  for (const f of await list(path.join(d.root, 'cache/results'))) if (![...running.keys()].some((id) => f.includes(id))) violations.push(`cache entry ${f}`);
  for (const f of await list(path.join(d.root, 'run/netns'))) if (!running.has(f)) violations.push(`pin ${f.slice(0, 12)}`);
  const save = (await sh('iptables-save', [])).stdout;
  for (const net of networks) {
    for (const f of (await list(path.join(net.ipamDir, net.name))).filter((n) => /^\d/.test(n))) {
      const owner = (await readFile(path.join(net.ipamDir, net.name, f), 'utf8')).split(/\r?\n/)[0] ?? '';
      if (!running.has(owner)) violations.push(`reservation ${net.name}/${f} of dead ${owner.slice(0, 12)}`);
      // A container id outlives a restart: a reservation of its previous run is a leak too.
      else if (byId.get(owner)?.networks.some((n) => n.network === net.name && n.state === 'wired' && !n.addresses.some((a) => a.split('/')[0] === f))) {
        violations.push(`reservation ${net.name}/${f} of ${owner.slice(0, 12)} that its current attachment does not hold`);
      }
    }
    const chainIds = [...save.matchAll(new RegExp(`name: \\\\"${net.name}\\\\" id: \\\\"([0-9a-f]{64})\\\\"`, 'g'))].map((m) => m[1] ?? '');
    for (const id of new Set(chainIds)) if (!running.has(id)) violations.push(`iptables rules of dead ${id.slice(0, 12)} on ${net.name}`);
    const veths = (await sh('ip', ['-o', 'link', 'show', 'master', net.bridge], { reject: false })).stdout.split('\n').filter(Boolean).length;
    const attached = recs.filter((r) => running.has(r.containerId) && r.networks.some((n) => n.network === net.name)).length;
    if (veths !== attached) violations.push(`${veths} veth(s) on ${net.bridge}, ${attached} attachment(s)`);
  }
  violations.push(...(await duplicateAddresses(d)));
  return violations;
}
