import ipaddr from 'ipaddr.js';
import { DockcniError, InvalidInputError } from '../errors.js';
import { holdsClaims, holdsNetns, type AttachmentRecord, type NetworkAttachment } from '../state/attachment.js';

/**
 * The names a container publishes into its peers' /etc/hosts, and who owns one. Every peer's libc reads
 * these files, so what goes in is a name and nothing else:
 *
 * - a published name is one DNS label (RFC 1123: letters, digits, "-"; "_" too, as Docker's own names
 *   have it), at most 63 characters, never an IP literal (inet_aton reads "1" or "0x7f000001" as one);
 *   a dotted name would answer for a host outside the network, so peers only ever see single labels;
 * - reserved names (localhost, broadcasthost, ip6-*) are never published: every hosts file has them;
 * - container names are Docker's (unique on the host) and always resolve to their container; a
 *   hostname and aliases are claims, first come first served per network: a claim a live peer holds
 *   fails the container, naming the holder; a claim never takes a peer's container name; replicas of
 *   one compose service share their service name;
 * - one container publishes at most MAX_ALIASES aliases and MAX_NAMES_CHARACTERS characters of names
 *   per network, so a line stays far below what musl reads (512 bytes) and peers' files stay small.
 */
export const MAX_ALIASES = 8;
export const MAX_NAMES_CHARACTERS = 255;
/** A hosts line longer than this is never written: musl splits longer lines and reads the tail as a name. */
export const MAX_HOSTS_LINE_BYTES = 500;

const LABEL = /^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/;
const RESERVED = /^(localhost|broadcasthost|ip6-[a-z0-9-]*)$/i;

/** Why `name` cannot be published, or undefined when it can. */
export function unpublishable(name: string): string | undefined {
  if (!LABEL.test(name)) {
    if (/[\s#]/.test(name)) return 'holds white space or "#": it would add words or lines to its peers\' hosts files';
    if (name.includes('.')) return 'has dots: peers resolve only single-label names (a dotted name could stand for a host outside the network)';
    return 'is not a DNS label (letters, digits, "-" and "_", 1 to 63 characters, not starting or ending with "-")';
  }
  if (ipaddr.isValid(name)) return 'reads as an IP address';
  if (RESERVED.test(name)) return 'is reserved (every hosts file has it)';
  return undefined;
}

/** A DNS name as a hostname may be: dot-separated labels, at most 253 characters. */
function checkDnsName(field: string, value: string): void {
  const labels = value.split('.');
  if (value.length > 253 || labels.some((l) => !LABEL.test(l))) {
    throw new InvalidInputError(field, value, 'not a DNS name (labels of letters, digits, "-" and "_", at most 253 characters)', 'give the container a hostname of letters, digits and "-" (docker run --hostname web)');
  }
}

/** An alias (label, flag or compose service) checked where it enters; throws naming the label. */
export function checkAlias(field: string, name: string): string {
  const why = unpublishable(name);
  if (why !== undefined) throw new InvalidInputError(field, name, `${JSON.stringify(name)} ${why}`, 'use single names of letters, digits and "-", comma-separated (e.g. db,primary)');
  return name;
}

export function checkAliasCount(field: string, aliases: readonly string[]): void {
  if (aliases.length > MAX_ALIASES) throw new InvalidInputError(field, aliases.join(','), `more than ${MAX_ALIASES} aliases`, `give at most ${MAX_ALIASES} per network`);
}

export interface PublishedNames {
  /** The container's own name, when it is a publishable label. */
  readonly name?: string | undefined;
  /** Claims: the hostname's first label and the aliases, in that order, without the name. */
  readonly claims: readonly string[];
  /** Whether claims[0] is the hostname (listed before the name, as Docker lists a container's own line). */
  readonly hostnameFirst: boolean;
  /** Names that are not published and why (a dotted Docker name, a hostname that reads as an address). */
  readonly skipped: readonly string[];
}

/**
 * What a container publishes on one network. Docker's name and hostname are what Docker accepted: a
 * malformed hostname (white space, a newline) fails the container, a well-formed one that cannot be
 * published (dotted: its first label is; numeric; reserved) is left out and said.
 */
export function publishedNames(containerName: string, hostname: string | undefined, aliases: readonly string[]): PublishedNames {
  const skipped: string[] = [];
  const nameWhy = unpublishable(containerName);
  if (nameWhy !== undefined && /[\s#]/.test(containerName)) throw new InvalidInputError('container name', containerName, nameWhy);
  if (nameWhy !== undefined) skipped.push(`container name ${JSON.stringify(containerName)} ${nameWhy}`);
  const name = nameWhy === undefined ? containerName : undefined;
  const claims: string[] = [];
  let host: string | undefined;
  if (hostname !== undefined && hostname !== '') {
    checkDnsName('hostname', hostname);
    const first = hostname.split('.')[0] ?? '';
    const why = unpublishable(first);
    if (why !== undefined) skipped.push(`hostname ${JSON.stringify(first)} ${why}`);
    else host = first;
  }
  if (host !== undefined) claims.push(host);
  for (const alias of aliases) claims.push(checkAlias('alias', alias));
  const unique = claims.filter((c, i) => !same(c, name) && claims.findIndex((o) => same(o, c)) === i);
  const all = [...(name === undefined ? [] : [name]), ...unique];
  if (all.join(' ').length > MAX_NAMES_CHARACTERS) {
    throw new InvalidInputError('names', all.join(' '), `more than ${MAX_NAMES_CHARACTERS} characters of names on one network`, 'use fewer or shorter aliases');
  }
  return { name, claims: unique, skipped, hostnameFirst: host !== undefined && unique[0] === host };
}

const same = (a: string | undefined, b: string | undefined) => a !== undefined && b !== undefined && a.toLowerCase() === b.toLowerCase();

/** A name another container already has on the network. */
export class NameTakenError extends DockcniError {
  override readonly name = 'NameTakenError';
  constructor(readonly network: string, readonly taken: string, readonly holder: string, how: string) {
    super('name-taken', `name ${JSON.stringify(taken)} on network ${network} is already ${how} container ${holder}`, {
      fix: 'pick another alias or hostname; names on a network are first come, first served, and a container name is never shadowed',
    });
  }
}

/** The names a record has on one of its networks, as it published them. */
export function namesOf(record: AttachmentRecord, attachment: NetworkAttachment): PublishedNames {
  try {
    return publishedNames(record.name, record.hostname, attachment.aliases ?? []);
  } catch (error) {
    // A record written before names were checked: nothing of it is published.
    if (error instanceof InvalidInputError) return { claims: [], skipped: [], hostnameFirst: false };
    throw error;
  }
}

/**
 * First come, first served: throws when one of `wanted`'s claims is a live peer's name or claim on the
 * network (a peer in the same claim group may share the group's name). Called under the network's
 * names lock, with the intent record written before it is released.
 */
export function checkClaims(network: string, self: { containerId: string; name?: string | undefined; claims: readonly string[]; group?: string | undefined },
  others: readonly AttachmentRecord[]): void {
  // compose project/service: replicas of one service share its name, the one claim two containers may both hold.
  const service = self.group?.slice(self.group.indexOf('/') + 1);
  for (const peer of others) {
    if (peer.containerId === self.containerId || !holdsNetns(peer)) continue;
    const attachment = peer.networks.find((a) => a.network === network && holdsClaims(a));
    if (attachment === undefined) continue;
    const theirs = namesOf(peer, attachment);
    const holder = `${peer.name} (${peer.containerId.slice(0, 12)})`;
    for (const claim of self.claims) {
      if (same(claim, theirs.name)) throw new NameTakenError(network, claim, holder, 'the name of');
      const shared = same(service, claim) && attachment.group === self.group;
      if (!shared && theirs.claims.some((c) => same(c, claim))) throw new NameTakenError(network, claim, holder, 'claimed by');
    }
  }
}

/**
 * The names of each record on the network as its peers' hosts files list them: a claim that a live
 * container's own name has since taken is left out (a container name always resolves to its container).
 */
export function listedNames(record: AttachmentRecord, attachment: NetworkAttachment, containerNames: ReadonlySet<string>): string[] {
  const { name, claims, hostnameFirst } = namesOf(record, attachment);
  const [head, ...rest] = claims.map((c) => (containerNames.has(c.toLowerCase()) ? undefined : c));
  const ordered = hostnameFirst ? [head, name, ...rest] : [name, head, ...rest];
  return ordered.filter((n): n is string => n !== undefined);
}
