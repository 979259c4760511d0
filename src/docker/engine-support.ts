import { DockcniError } from '../errors.js';
import type { EngineFacts } from './docker-client.js';

/**
 * Engines whose containers dockcni cannot reach from the host: rootless Docker runs them in
 * RootlessKit's namespaces, Docker Desktop in a VM. dockcni would pin and wire namespaces it cannot
 * see, so it refuses, once, with what to do instead.
 */
export function unsupportedEngine(facts: Pick<EngineFacts, 'version' | 'operatingSystem' | 'rootless'>): DockcniError | undefined {
  if (facts.rootless) {
    return new DockcniError('docker-unsupported', `Docker ${facts.version} runs rootless: its containers live in RootlessKit's namespaces, which dockcni cannot wire from the host`, {
      fix: 'use dockcni with a rootful dockerd (the system service), or Docker\'s own networks (docker network create) with rootless Docker',
    });
  }
  if (/docker desktop/i.test(facts.operatingSystem)) {
    return new DockcniError('docker-unsupported', `${facts.operatingSystem} runs containers in a VM: dockcni on this host cannot reach their network namespaces`, {
      fix: 'run dockcni inside the VM that runs dockerd (a Linux host with Docker Engine), or use Docker\'s own networks',
    });
  }
  return undefined;
}

/** Throws the refusal for an engine dockcni cannot work beside. */
export async function checkEngine(docker: { engine(): Promise<EngineFacts> }): Promise<EngineFacts> {
  const facts = await docker.engine();
  const refusal = unsupportedEngine(facts);
  if (refusal !== undefined) throw refusal;
  return facts;
}
