/** Handshake and liveness: what the management plane uses to add and track a host. */

/** `host/connect`: the management plane introduces itself (its uuid for the host, if it has one). */
export interface HostConnectRequest {
  hostUuid?: string;
}

/**
 * `host/connect` reply: the host's facts. `cpuNum` and `memoryBytes` are what the hypervisor
 * really has, so the management plane can refuse to register more capacity than that.
 */
export interface HostConnectReply {
  hostUuid: string;
  hypervisorType: string;
  agentVersion: string;
  /** Logical CPUs of the host. */
  cpuNum: number;
  cpuSockets: number;
  /** Physical memory of the host, in bytes. */
  memoryBytes: number;
  osDistribution: string;
  osVersion: string;
  /** Changes every time the agent (re)starts, so the management plane can detect a restart. */
  bootId: string;
  startedAt: string;
}

/** `host/ping`: liveness. The management plane's host uuid may be sent; the agent does not need it. */
export interface HostPingRequest {
  hostUuid?: string;
}

export interface HostPingReply {
  hostUuid: string;
  bootId: string;
  /** Whether a `host/connect` reached this agent since it started. */
  connected: boolean;
}

export type HostVmsRequest = Record<string, never>;

/** Power state of a VM as the hypervisor reports it. */
export type VmPowerState = "running" | "stopped";

/** `host/vms` reply: what the hypervisor runs, for the VM state sync after a reconnect. */
export interface HostVmsReply {
  hostUuid: string;
  vms: Array<{ vmUuid: string; state: VmPowerState }>;
}
