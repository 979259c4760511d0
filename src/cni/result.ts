import ipaddr from 'ipaddr.js';
import type { CniResult } from './types.js';
import { atLeast } from './version.js';

/** A result that does not follow the spec; the engine wraps it into a CniPluginError. */
export class InvalidResultError extends Error {
  override readonly name = 'InvalidResultError';
}

function fail(reason: string): never {
  throw new InvalidResultError(reason);
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function checkCidr(value: unknown, where: string): void {
  if (typeof value !== 'string' || !ipaddr.isValidCIDR(value)) fail(`${where} ${JSON.stringify(value)} is not an address in CIDR notation`);
}

function checkIp(value: unknown, where: string): void {
  if (typeof value !== 'string' || !ipaddr.isValid(value)) fail(`${where} ${JSON.stringify(value)} is not an IP address`);
}

function checkStrings(value: unknown, where: string): void {
  if (value !== undefined && (!Array.isArray(value) || !value.every((v) => typeof v === 'string'))) fail(`${where} must be a list of strings`);
}

/** Parses and validates a 0.3.x–1.1.0 result (interfaces, ips, routes, dns). */
export function parseResult(text: string): CniResult {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    fail(`result is not JSON: ${(error as Error).message}`);
  }
  return validateResult(value);
}

export function validateResult(value: unknown): CniResult {
  if (!isObject(value)) fail('result must be a JSON object');
  if (typeof value['cniVersion'] !== 'string') fail('result has no "cniVersion"');
  const interfaces = value['interfaces'];
  if (interfaces !== undefined) {
    if (!Array.isArray(interfaces)) fail('"interfaces" must be a list');
    interfaces.forEach((iface, i) => {
      if (!isObject(iface) || typeof iface['name'] !== 'string') fail(`interfaces[${i}] needs a "name"`);
    });
  }
  const ips = value['ips'];
  if (ips !== undefined) {
    if (!Array.isArray(ips)) fail('"ips" must be a list');
    ips.forEach((ip, i) => {
      if (!isObject(ip)) fail(`ips[${i}] must be an object`);
      checkCidr(ip['address'], `ips[${i}].address`);
      if (ip['gateway'] !== undefined) checkIp(ip['gateway'], `ips[${i}].gateway`);
      const index = ip['interface'];
      if (index !== undefined && (typeof index !== 'number' || !Number.isInteger(index) || index < 0
        || !Array.isArray(interfaces) || index >= interfaces.length)) {
        fail(`ips[${i}].interface ${JSON.stringify(index)} does not index "interfaces"`);
      }
    });
  }
  const routes = value['routes'];
  if (routes !== undefined) {
    if (!Array.isArray(routes)) fail('"routes" must be a list');
    routes.forEach((route, i) => {
      if (!isObject(route)) fail(`routes[${i}] must be an object`);
      checkCidr(route['dst'], `routes[${i}].dst`);
      if (route['gw'] !== undefined) checkIp(route['gw'], `routes[${i}].gw`);
    });
  }
  const dns = value['dns'];
  if (dns !== undefined) {
    if (!isObject(dns)) fail('"dns" must be an object');
    checkStrings(dns['nameservers'], 'dns.nameservers');
    checkStrings(dns['search'], 'dns.search');
    checkStrings(dns['options'], 'dns.options');
  }
  return value as CniResult;
}

/**
 * Brings a result to the list's version before it is passed on as prevResult or cached, as libcni does:
 * 0.3.x/0.4.0 ips carry "version", 1.0.0 and later dropped it.
 */
export function convertResult(result: CniResult, toVersion: string): CniResult {
  const modern = atLeast(toVersion, '1.0.0');
  const ips = result.ips?.map(({ version, ...rest }) => {
    if (modern) return rest;
    return { ...rest, version: version ?? (rest.address.includes(':') ? '6' : '4') };
  });
  return { ...result, cniVersion: toVersion, ...(ips === undefined ? {} : { ips }) };
}

/** The addresses a result gives, without prefix length: for hosts files, `ls`, invariant checks. */
export function resultAddresses(result: CniResult): string[] {
  return (result.ips ?? []).map((ip) => ip.address.split('/')[0] ?? ip.address);
}
