import type { NetworkConfigList } from './types.js';
import { parseConfList } from './conf.js';

export const DEFAULT_NETWORK_NAME = 'dockcni';

/**
 * The network used when none named `dockcni` is configured, so dockcni works on a host without any
 * CNI config. 10.199.0.0/16 clashes with neither Docker's 172.17/16 nor podman's 10.88/16.
 * `firewall` is in the chain because Docker sets the FORWARD policy to DROP: without the plugin's
 * accept rules, containers on the bridge get addresses but cannot reach each other.
 * 1.0.0 because the plugins Debian ships (1.1.x) do not speak 1.1.0.
 */
export const DEFAULT_NETWORK_JSON = {
  cniVersion: '1.0.0',
  name: DEFAULT_NETWORK_NAME,
  plugins: [
    {
      type: 'bridge',
      bridge: 'dockcni0',
      capabilities: { ips: true, mac: true },
      isGateway: true,
      ipMasq: true,
      hairpinMode: true,
      ipam: {
        type: 'host-local',
        ranges: [[{ subnet: '10.199.0.0/16', gateway: '10.199.0.1' }]],
        routes: [{ dst: '0.0.0.0/0' }],
      },
    },
    { type: 'firewall', backend: 'iptables' },
    { type: 'portmap', capabilities: { portMappings: true }, snat: true },
  ],
};

export function defaultNetwork(): NetworkConfigList {
  return parseConfList(Buffer.from(JSON.stringify(DEFAULT_NETWORK_JSON, null, 2)), '<embedded>');
}
