import { request } from 'node:http';
import { DockerApiError, InvalidInputError } from '../errors.js';
import type { EngineFacts } from './docker-client.js';
import { DEFAULT_DOCKER_HOST } from './endpoint.js';

/** A container as Docker's container list shows it. */
export interface ListedContainer {
  readonly id: string;
  /** Without Docker's leading "/". */
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly networkMode: string;
}

interface ListEntry {
  readonly Id: string;
  readonly Names?: readonly string[];
  readonly Labels?: Record<string, string> | null;
  readonly HostConfig?: { readonly NetworkMode?: string };
}

/** The unix socket of a local Docker endpoint: the runtime runs beside dockerd, never elsewhere. */
export function localSocket(host: string = DEFAULT_DOCKER_HOST): string {
  if (host.startsWith('unix://')) return host.slice('unix://'.length);
  if (host.startsWith('/')) return host;
  throw new InvalidInputError('runtime Docker endpoint', host, 'the runtime talks to the dockerd that runs it, over its unix socket', 'give unix:///var/run/docker.sock (or the socket dockerd listens on)');
}

/** GET of a JSON document from the local dockerd, with plain node:http: these run before anything else loads. */
function getJson<T>(socketPath: string, what: string, apiPath: string, timeoutMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const failed = (why: string, cause?: unknown) => reject(new DockerApiError(`docker: ${what} at ${socketPath}: ${why}`, undefined, {
      cause, fix: 'check that dockerd answers on that socket (dockcni runtime status)',
    }));
    const req = request({ socketPath, path: apiPath, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', (error) => failed(error.message, error));
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        if (res.statusCode !== 200) {
          failed(`HTTP ${res.statusCode}: ${body.trim()}`);
          return;
        }
        try {
          resolve(JSON.parse(body) as T);
        } catch (error) {
          failed(`not JSON: ${(error as Error).message}`, error);
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (error) => failed(error.message, error));
    req.end();
  });
}

/**
 * One container by full id, from `GET /containers/json` — the one read that works while dockerd is
 * starting that very container: inspect waits for the container's lock, which dockerd holds until the
 * runtime's `create` returns.
 */
export async function listedContainer(socketPath: string, id: string, timeoutMs: number): Promise<ListedContainer | undefined> {
  const filters = encodeURIComponent(JSON.stringify({ id: [id] }));
  const found = (await getJson<ListEntry[]>(socketPath, `listing container ${id.slice(0, 12)}`, `/containers/json?all=1&filters=${filters}`, timeoutMs)).find((c) => c.Id === id);
  return found && { id: found.Id, name: (found.Names?.[0] ?? '').replace(/^\//, ''), labels: found.Labels ?? {}, networkMode: found.HostConfig?.NetworkMode ?? '' };
}

/** What `/info` says that `dockcni run` needs: the OCI runtimes dockerd has registered (with the arguments it passes each), and the engine. */
export interface LocalInfo {
  readonly runtimes: Readonly<Record<string, { readonly path: string; readonly runtimeArgs?: readonly string[] }>>;
  readonly engine: Pick<EngineFacts, 'version' | 'operatingSystem' | 'rootless'>;
}

export async function localInfo(socketPath: string, timeoutMs: number): Promise<LocalInfo> {
  const info = await getJson<{ Runtimes?: LocalInfo['runtimes']; ServerVersion?: string; OperatingSystem?: string; SecurityOptions?: string[] | null }>(socketPath, 'info', '/info', timeoutMs);
  return {
    runtimes: info.Runtimes ?? {},
    engine: { version: info.ServerVersion ?? '', operatingSystem: info.OperatingSystem ?? '', rootless: (info.SecurityOptions ?? []).some((o) => o.split(',').includes('name=rootless')) },
  };
}
