import ipaddr from 'ipaddr.js';
import { readTextIfExistsSync } from '../fs-atomic.js';

/** A route of the host's routing table, as a subnet: a new network must not take addresses it leads to. */
export interface HostRoute {
  readonly subnet: string;
  readonly dev: string;
}

/** IPv4 from /proc/net/route (little-endian hex words), IPv6 from /proc/net/ipv6_route; default routes left out. */
export function hostRoutes(): HostRoute[] {
  const routes: HostRoute[] = [];
  for (const line of (readTextIfExistsSync('/proc/net/route') ?? '').split('\n').slice(1)) {
    const [dev, dest, , , , , , mask] = line.trim().split(/\s+/);
    if (dev === undefined || dest === undefined || mask === undefined || mask === '00000000') continue;
    const ip = (hex: string) => ipaddr.fromByteArray((hex.match(/../g) ?? []).reverse().map((b) => parseInt(b, 16)));
    const bits = ip(mask).toByteArray().reduce((n, b) => n + b.toString(2).replaceAll('0', '').length, 0);
    routes.push({ subnet: `${ip(dest).toString()}/${bits}`, dev });
  }
  for (const line of (readTextIfExistsSync('/proc/net/ipv6_route') ?? '').split('\n')) {
    const cols = line.trim().split(/\s+/);
    const [dest, prefix] = cols;
    const dev = cols.at(-1);
    if (dest === undefined || prefix === undefined || dev === undefined || dest.length !== 32 || parseInt(prefix, 16) === 0 || dev === 'lo') continue;
    routes.push({ subnet: `${ipaddr.fromByteArray((dest.match(/../g) ?? []).map((b) => parseInt(b, 16))).toString()}/${parseInt(prefix, 16)}`, dev });
  }
  return routes.filter((r) => r.dev !== 'lo');
}
