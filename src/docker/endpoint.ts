import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { DockcniError } from '../errors.js';

/** Where Docker is, as the docker CLI finds it; dockcni's API client and the CLI `run` starts use the same. */
export interface DockerEndpoint {
  /** `unix:///path` or `tcp://host:port`. */
  readonly host: string;
  /** Where it came from, for messages: the flag, DOCKER_HOST, a context, or the default. */
  readonly from: string;
  /** Client certificates for a TLS endpoint (DOCKER_TLS_VERIFY/DOCKER_CERT_PATH, or the context's). */
  readonly tls?: { readonly certPath: string; readonly verify: boolean } | undefined;
}

export const DEFAULT_DOCKER_HOST = 'unix:///var/run/docker.sock';

function readJson(file: string): Record<string, unknown> | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new DockcniError('docker-api', `cannot read ${file}: ${(error as Error).message}`, { cause: error });
  }
}


/**
 * The docker CLI's order: --docker-host (the CLI's -H), DOCKER_HOST, the context named by DOCKER_CONTEXT
 * or the config's `currentContext`, then the default socket. TLS from DOCKER_TLS_VERIFY/DOCKER_CERT_PATH,
 * or from the context's stored certificates.
 */
export function resolveDockerEndpoint(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): DockerEndpoint {
  const envTls = () => (env['DOCKER_TLS_VERIFY'] || env['DOCKER_CERT_PATH']
    ? { certPath: env['DOCKER_CERT_PATH'] ?? path.join(homedir(), '.docker'), verify: env['DOCKER_TLS_VERIFY'] !== undefined && env['DOCKER_TLS_VERIFY'] !== '' }
    : undefined);
  if (flag !== undefined) return { host: flag, from: '--docker-host', tls: flag.startsWith('tcp:') ? envTls() : undefined };
  if (env['DOCKER_HOST']) return { host: env['DOCKER_HOST'], from: 'DOCKER_HOST', tls: env['DOCKER_HOST'].startsWith('tcp:') ? envTls() : undefined };
  const configDir = env['DOCKER_CONFIG'] ?? path.join(homedir(), '.docker');
  const context = env['DOCKER_CONTEXT'] ?? (readJson(path.join(configDir, 'config.json'))?.['currentContext'] as string | undefined);
  if (context !== undefined && context !== '' && context !== 'default') {
    const id = createHash('sha256').update(context).digest('hex');
    const meta = readJson(path.join(configDir, 'contexts', 'meta', id, 'meta.json'));
    const docker = (meta?.['Endpoints'] as Record<string, { Host?: string; SkipTLSVerify?: boolean }> | undefined)?.['docker'];
    if (docker?.Host === undefined) {
      throw new DockcniError('docker-api', `docker context "${context}" has no Docker endpoint in ${configDir}/contexts`, { fix: 'pick another with `docker context use`, or pass --docker-host' });
    }
    const tlsDir = path.join(configDir, 'contexts', 'tls', id, 'docker');
    return { host: docker.Host, from: `docker context ${context}`, tls: existsSync(path.join(tlsDir, 'cert.pem')) ? { certPath: tlsDir, verify: docker.SkipTLSVerify !== true } : undefined };
  }
  return { host: DEFAULT_DOCKER_HOST, from: 'the default socket' };
}

/** The environment a `docker` CLI needs to reach the same endpoint. */
export function dockerCliEnv(endpoint: DockerEndpoint): Record<string, string> {
  const tls = endpoint.tls ? { DOCKER_CERT_PATH: endpoint.tls.certPath, ...(endpoint.tls.verify ? { DOCKER_TLS_VERIFY: '1' } : {}) } : {};
  return { DOCKER_HOST: endpoint.host, ...tls };
}

/** The certificates of a TLS endpoint, read for the API client. */
export function tlsFiles(endpoint: DockerEndpoint): { ca: Buffer; cert: Buffer; key: Buffer } | undefined {
  if (endpoint.tls === undefined) return undefined;
  const read = (name: string) => readFileSync(path.join(endpoint.tls?.certPath ?? '', name));
  return { ca: read('ca.pem'), cert: read('cert.pem'), key: read('key.pem') };
}
