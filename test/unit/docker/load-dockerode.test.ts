import { createRequire } from 'node:module';
import test from 'ava';
import { loadDockerode, UNUSED_BY_DOCKCNI } from '../../../src/docker/load-dockerode.js';

const require = createRequire(import.meta.url);

test('dockerode loads without ssh2 or gRPC, and talks to a socket all the same', (t) => {
  const Docker = loadDockerode();
  const docker = new Docker({ socketPath: '/nonexistent.sock' });
  t.is(typeof docker.getContainer('x').inspect, 'function');
  const loaded = Object.keys(require.cache);
  for (const name of UNUSED_BY_DOCKCNI) t.false(loaded.some((file) => file.includes(`/node_modules/${name}/`)), `${name} was loaded`);
});

test('the stand-ins refuse to be used, naming the module, instead of failing somewhere odd', (t) => {
  const Docker = loadDockerode();
  const docker = new Docker({ protocol: 'ssh', host: '127.0.0.1', username: 'x' });
  // dockerode builds the ssh agent on the first request, before any connection: it must fail loudly.
  return docker.ping().then(
    () => t.fail('an ssh:// request cannot work without ssh2'),
    (error: Error) => t.regex(error.message, /dockcni does not load ssh2/),
  );
});
