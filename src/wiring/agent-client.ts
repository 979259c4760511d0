import { existsSync } from 'node:fs';
import { request } from 'node:http';
import path from 'node:path';
import { DockcniError, type ErrorCode } from '../errors.js';
import type { ClusterLink, StaticHolder } from './cluster-link.js';

/**
 * The cluster agent's socket: the daemon with --etcd listens there, and every other process on the host
 * that wires a container (the runtime, `run`, `attach`) asks it for what needs etcd. Plain node:http:
 * the runtime must not load an etcd client on its way to a container's first instruction.
 */
export const agentSocket = (runDir: string) => path.join(runDir, 'cluster.sock');

export type AgentRequest =
  | { readonly op: 'takeBlock'; readonly network: string }
  | { readonly op: 'claimStatic' | 'releaseStatic'; readonly network: string; readonly ip: string; readonly holder: StaticHolder };

/** An error as the agent sends it back: its code, message and fix survive the socket. */
export interface AgentError {
  readonly code: ErrorCode;
  readonly message: string;
  readonly fix?: string | undefined;
}

const TIMEOUT_MS = 30_000;

export class AgentClient implements ClusterLink {
  constructor(private readonly socket: string) {}

  private ask(body: AgentRequest): Promise<void> {
    if (!existsSync(this.socket)) {
      return Promise.reject(new DockcniError('not-running', `network ${body.network} is a cluster network, and no cluster agent answers on this host (${this.socket})`, {
        fix: 'start `dockcni daemon --etcd …` on this host: it holds the host\'s blocks and claims',
      }));
    }
    return new Promise((resolve, reject) => {
      const req = request({ socketPath: this.socket, path: '/', method: 'POST', timeout: TIMEOUT_MS, headers: { 'content-type': 'application/json' } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          if (res.statusCode === 204) {
            resolve();
            return;
          }
          const text = Buffer.concat(chunks).toString('utf8');
          let answer: AgentError | undefined;
          try {
            answer = JSON.parse(text) as AgentError;
          } catch {
            answer = undefined;
          }
          reject(answer === undefined ? new DockcniError('etcd-unavailable', `the cluster agent answered ${res.statusCode}: ${text.slice(0, 200)}`) : new DockcniError(answer.code, answer.message, { fix: answer.fix }));
        });
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new DockcniError('etcd-unavailable', `the cluster agent did not answer within ${TIMEOUT_MS / 1000} s`, { fix: 'see the daemon\'s log: etcd may be unreachable' })));
      req.on('error', (error) => reject(error instanceof DockcniError ? error : new DockcniError('not-running', `cannot reach the cluster agent at ${this.socket}: ${error.message}`, { cause: error, fix: 'start `dockcni daemon --etcd …` on this host' })));
      req.end(JSON.stringify(body));
    });
  }

  claimStatic(network: string, ip: string, holder: StaticHolder): Promise<void> { return this.ask({ op: 'claimStatic', network, ip, holder }); }
  releaseStatic(network: string, ip: string, holder: StaticHolder): Promise<void> { return this.ask({ op: 'releaseStatic', network, ip, holder }); }
  takeBlock(network: string): Promise<void> { return this.ask({ op: 'takeBlock', network }); }
}
