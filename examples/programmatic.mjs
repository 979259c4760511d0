// dockcni's engine as a library: ADD the embedded default network to a network namespace, print the
// result, DEL it again. Run as root after `ip netns add demo`:  node examples/programmatic.mjs demo
import { createEngine, defaultNetwork, CniPluginError } from 'dockcni';

const netnsName = process.argv[2] ?? 'demo';
const engine = createEngine({
  pluginPath: ['/opt/cni/bin', '/usr/lib/cni'],
  cacheDir: '/var/lib/cni',
  locksDir: '/run/dockcni/locks',
  // Every plugin call, as `dockcni --trace` prints it.
  trace: (call) => console.error(`${call.command} ${call.plugin}: exit ${call.exitCode} in ${call.durationMs.toFixed(1)} ms`),
});
const network = defaultNetwork();
const rt = { containerId: 'example-1', netns: `/var/run/netns/${netnsName}`, ifName: 'eth0', args: [], capabilityArgs: {} };

try {
  const result = await engine.add(network, rt);
  console.log('addresses:', result.ips?.map((ip) => ip.address).join(', '));
  await engine.del(network.name, rt, network);
  console.log('deleted');
} catch (error) {
  if (error instanceof CniPluginError) console.error(`${error.plugin} failed (${error.command}) with CNI code ${error.cniCode}: ${error.msg}`);
  throw error;
}
