import { request } from 'node:http';
import { DockerApiError, InvalidInputError } from '../errors.js';
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

/**
 * One container by full id, from `GET /containers/json` — the one read that works while dockerd is
 * starting that very container: inspect waits for the container's lock, which dockerd holds until the
 * runtime's `create` returns. Plain node:http: this runs on every container start, before anything else
 * is loaded.
 */
export function listedContainer(socketPath: string, id: string, timeoutMs: number): Promise<ListedContainer | undefined> {
  const filters = encodeURIComponent(JSON.stringify({ id: [id] }));
  return new Promise((resolve, reject) => {
    const failed = (why: string, cause?: unknown) => reject(new DockerApiError(`docker: listing container ${id.slice(0, 12)} at ${socketPath}: ${why}`, undefined, {
      cause, fix: 'check that dockerd answers on that socket (dockcni runtime status)',
    }));
    const req = request({ socketPath, path: `/containers/json?all=1&filters=${filters}`, timeout: timeoutMs }, (res) => {
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
          const found = (JSON.parse(body) as ListEntry[]).find((c) => c.Id === id);
          resolve(found && {
            id: found.Id, name: (found.Names?.[0] ?? '').replace(/^\//, ''), labels: found.Labels ?? {}, networkMode: found.HostConfig?.NetworkMode ?? '',
          });
        } catch (error) {
          failed(`not a container list: ${(error as Error).message}`, error);
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (error) => failed(error.message, error));
    req.end();
  });
}
