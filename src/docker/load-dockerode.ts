import Module, { createRequire } from 'node:module';
import type Dockerode from 'dockerode';

/**
 * Modules dockerode loads eagerly that dockcni never calls: ssh2 (for ssh:// hosts; it compiles
 * megabytes of WebAssembly when loaded) and gRPC (BuildKit sessions for image builds). dockcni reaches
 * Docker over a unix socket or tcp and builds nothing, so they cost the daemon memory (the bench's idle
 * RSS shows how much) and make every fork of it (one per plugin call) slower, for nothing.
 */
export const UNUSED_BY_DOCKCNI = ['ssh2', '@grpc/grpc-js', '@grpc/proto-loader'] as const;

type Load = (request: string, parent: unknown, isMain: boolean) => unknown;
const loader = Module as unknown as { _load: Load };

/** Stands in for an export: fails loudly if anything ever calls it, instead of loading the real module. */
function unusedExport(module: string, name: string): unknown {
  const refuse = () => {
    throw new Error(`dockcni does not load ${module} (asked for ${name}): it talks to Docker over a unix socket or tcp only`);
  };
  return new Proxy(function unused() {}, { apply: refuse, construct: refuse });
}

function unusedModule(module: string): unknown {
  return new Proxy({}, { get: (_target, key) => unusedExport(module, String(key)) });
}

/**
 * dockerode, loaded once with the modules above replaced. The hook is installed only for the duration of
 * this one synchronous require and only answers for those exact names.
 */
export function loadDockerode(): typeof Dockerode {
  const original = loader._load;
  loader._load = function load(this: unknown, request, parent, isMain) {
    if ((UNUSED_BY_DOCKCNI as readonly string[]).includes(request)) return unusedModule(request);
    return original.call(this, request, parent, isMain);
  };
  try {
    return createRequire(import.meta.url)('dockerode') as typeof Dockerode;
  } finally {
    loader._load = original;
  }
}
