/** CNI data shapes, named as libcni names them. */

/** One plugin's entry of a list, as written in the file; unknown keys pass through to the plugin. */
export interface PluginConf {
  readonly type: string;
  readonly capabilities?: Readonly<Record<string, boolean>>;
  readonly [key: string]: unknown;
}

export interface NetworkConfigList {
  readonly name: string;
  /** The version the runtime speaks with this list (highest supported of `cniVersions`, else `cniVersion`). */
  readonly cniVersion: string;
  readonly disableCheck: boolean;
  readonly disableGC: boolean;
  readonly plugins: readonly PluginConf[];
  /** The conflist bytes as cached for DEL: the file's own bytes, or the up-converted list for a .conf. */
  readonly bytes: Buffer;
  /** The file it came from, or `<embedded>`. */
  readonly source: string;
}

/** Who and where: the per-call arguments of a list operation (libcni's RuntimeConf). */
export interface RuntimeConf {
  readonly containerId: string;
  readonly netns: string;
  readonly ifName: string;
  /** CNI_ARGS pairs, in order. */
  readonly args: readonly (readonly [string, string])[];
  /** Capability args (`portMappings`, `ips`, `mac`, `bandwidth`, …); each plugin gets only those it declares. */
  readonly capabilityArgs: Readonly<Record<string, unknown>>;
  /**
   * Not in libcni: a process the caller knows lives in `netns`. The engine verifies it and then reads
   * the netns's links through /proc instead of starting a process to enter it.
   */
  readonly netnsPid?: number | undefined;
}

export interface CniInterface {
  name: string;
  mac?: string;
  mtu?: number;
  sandbox?: string;
  [key: string]: unknown;
}

export interface CniIpConfig {
  address: string;
  gateway?: string;
  interface?: number;
  /** Only in 0.3.x and 0.4.0 results. */
  version?: string;
  [key: string]: unknown;
}

export interface CniRoute {
  dst: string;
  gw?: string;
  [key: string]: unknown;
}

export interface CniDns {
  nameservers?: string[];
  domain?: string;
  search?: string[];
  options?: string[];
}

export interface CniResult {
  cniVersion: string;
  interfaces?: CniInterface[];
  ips?: CniIpConfig[];
  routes?: CniRoute[];
  dns?: CniDns;
  [key: string]: unknown;
}

/** One host port forwarded to the container: the `portMappings` capability's entries, as the portmap plugin reads them. */
export interface PortMapping {
  readonly hostPort: number;
  readonly containerPort: number;
  readonly protocol: 'tcp' | 'udp' | 'sctp';
  readonly hostIP?: string;
}

export interface VersionInfo {
  readonly cniVersion: string;
  readonly supportedVersions: readonly string[];
}

/** An attachment GC must keep (spec 1.1.0 `cni.dev/valid-attachments`). */
export interface GcAttachment {
  readonly containerID: string;
  readonly ifname: string;
}

export type CniCommand = 'ADD' | 'DEL' | 'CHECK' | 'VERSION' | 'GC' | 'STATUS';
