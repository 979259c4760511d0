#!/usr/bin/env node
// The main job on the embedded default network: two containers wired by CNI through `dockcni run -d`,
// one pings the other, `dockcni ls` shows them, and everything is removed again.
// `npm run demo` prepares the host first (packages, dockerd, a local pause image).
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const bin = fileURLToPath(new URL('../bin/dockcni.js', import.meta.url));
// Any image with ip and ping, and any image that waits (kubelet's pause); `npm run demo` points both at
// images it builds locally, for machines that cannot pull.
const image = process.env.DEMO_IMAGE ?? 'busybox:latest';
const sandbox = process.env.DEMO_SANDBOX_IMAGE ?? 'registry.k8s.io/pause:3.9';
const run = (file, args) => execFileSync(file, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
const dockcni = (...args) => run('node', [bin, ...args]);
const step = (text) => console.log(`\n== ${text}`);

const ids = [];
try {
  for (const name of ['demo-a', 'demo-b']) {
    step(`dockcni run -d --name ${name} … sleep 300   (sandbox wired by CNI before the app starts)`);
    ids.push(dockcni('run', '-d', '--name', name, '--sandbox-image', sandbox, '--dockcni-quiet', image, 'sleep', '300').split('\n').at(-1));
  }
  const addr = (id) => /inet (\S+)\//.exec(run('docker', ['exec', id, 'ip', '-4', '-o', 'addr', 'show', 'eth0']))?.[1];
  const [a, b] = ids.map(addr);
  console.log(`demo-a eth0 ${a}\ndemo-b eth0 ${b}`);
  step(`demo-a pings demo-b (${b}) across the dockcni0 bridge`);
  console.log(run('docker', ['exec', ids[0], 'ping', '-c', '2', b]));
  step('dockcni ls');
  console.log(dockcni('ls'));
} finally {
  step('cleanup: remove the apps, then dockcni gc releases their sandboxes, addresses and rules');
  for (const id of ids) run('docker', ['rm', '-f', id]);
  console.log(dockcni('gc', '--sandbox-grace', '0'));
}
