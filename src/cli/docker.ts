import type { DockerClient } from '../docker/docker-client.js';

/** Docker as the docker CLI finds it; dockerode is loaded only by the commands that talk to Docker. */
export async function dockerClient(dockerHost: string | undefined): Promise<DockerClient> {
  const { DockerodeClient } = await import('../docker/dockerode-client.js');
  const { resolveDockerEndpoint } = await import('../docker/endpoint.js');
  return new DockerodeClient(resolveDockerEndpoint(dockerHost));
}
