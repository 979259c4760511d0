import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import { dockerCliEnv, resolveDockerEndpoint } from '../../../src/docker/endpoint.js';
import { tempDir } from '../../helpers/fixtures.js';

async function config(t: Parameters<typeof tempDir>[0], current: string, host: string, tls = false) {
  const dir = await tempDir(t);
  const id = createHash('sha256').update(current).digest('hex');
  await mkdir(path.join(dir, 'contexts', 'meta', id), { recursive: true });
  await writeFile(path.join(dir, 'config.json'), JSON.stringify({ currentContext: current }));
  await writeFile(path.join(dir, 'contexts', 'meta', id, 'meta.json'), JSON.stringify({ Name: current, Endpoints: { docker: { Host: host, SkipTLSVerify: false } } }));
  if (tls) {
    await mkdir(path.join(dir, 'contexts', 'tls', id, 'docker'), { recursive: true });
    for (const f of ['ca.pem', 'cert.pem', 'key.pem']) await writeFile(path.join(dir, 'contexts', 'tls', id, 'docker', f), 'x');
  }
  return { dir, tlsDir: path.join(dir, 'contexts', 'tls', id, 'docker') };
}

test('the docker CLI\'s order: the flag, DOCKER_HOST, the current context, the default socket', async (t) => {
  const { dir } = await config(t, 'remote', 'unix:///srv/docker.sock');
  t.like(resolveDockerEndpoint('unix:///flag.sock', { DOCKER_HOST: 'unix:///env.sock', DOCKER_CONFIG: dir }), { host: 'unix:///flag.sock', from: '--docker-host' });
  t.like(resolveDockerEndpoint(undefined, { DOCKER_HOST: 'unix:///env.sock', DOCKER_CONFIG: dir }), { host: 'unix:///env.sock', from: 'DOCKER_HOST' });
  t.like(resolveDockerEndpoint(undefined, { DOCKER_CONFIG: dir }), { host: 'unix:///srv/docker.sock', from: 'docker context remote' });
  const other = await config(t, 'other', 'unix:///other.sock');
  t.like(resolveDockerEndpoint(undefined, { DOCKER_CONFIG: other.dir, DOCKER_CONTEXT: 'other' }), { host: 'unix:///other.sock' });
  t.like(resolveDockerEndpoint(undefined, { DOCKER_CONFIG: await tempDir(t) }), { host: 'unix:///var/run/docker.sock', from: 'the default socket' });
});

test('TLS from the environment or from the context, handed to the docker CLI the same way', async (t) => {
  const { dir, tlsDir } = await config(t, 'secure', 'tcp://10.0.0.1:2376', true);
  const fromContext = resolveDockerEndpoint(undefined, { DOCKER_CONFIG: dir });
  t.deepEqual(fromContext.tls, { certPath: tlsDir, verify: true });
  t.deepEqual(dockerCliEnv(fromContext), { DOCKER_HOST: 'tcp://10.0.0.1:2376', DOCKER_CERT_PATH: tlsDir, DOCKER_TLS_VERIFY: '1' });
  const fromEnv = resolveDockerEndpoint(undefined, { DOCKER_HOST: 'tcp://10.0.0.2:2376', DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: '/certs' });
  t.deepEqual(dockerCliEnv(fromEnv), { DOCKER_HOST: 'tcp://10.0.0.2:2376', DOCKER_CERT_PATH: '/certs', DOCKER_TLS_VERIFY: '1' });
  t.is(resolveDockerEndpoint('unix:///x.sock', { DOCKER_TLS_VERIFY: '1' }).tls, undefined, 'no TLS on a unix socket');
});
