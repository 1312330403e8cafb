/** VM lifecycle commands. */

/** A vNIC in a `vm/start` spec, plugged when the VM is created. */
export interface VmNicSpec {
  nicUuid: string;
  mac?: string;
  ip?: string;
  l3NetworkUuid?: string;
}

/**
 * `vm/start` carries the whole VM spec: the agent may never have seen the VM (or forgot it), and
 * a real agent receives far more than it interprets, so fields beyond these are allowed.
 */
export interface VmStartRequest {
  vmUuid: string;
  cpuNum: number;
  memoryBytes: number;
  name?: string;
  nics?: VmNicSpec[];
  [field: string]: unknown;
}

export interface VmStartReply {
  vmUuid: string;
  state: "running";
  /** The VM was already running: nothing was done. */
  alreadyRunning: boolean;
}

/** `vm/stop`, `vm/reboot`, `vm/destroy`: the VM is named, nothing else. */
export interface VmRefRequest {
  vmUuid: string;
}

export interface VmStopReply {
  vmUuid: string;
  state: "stopped";
  /** False when the agent did not know the VM (stop succeeds anyway). */
  found: boolean;
}

export interface VmRebootReply {
  vmUuid: string;
  state: "running";
}

export interface VmDestroyReply {
  vmUuid: string;
  state: "destroyed";
  found: boolean;
}

/** `vm/migrate`: the target named by host uuid or agent URL. */
export interface VmMigrateRequest {
  vmUuid: string;
  targetHostUuid?: string;
  targetAgentUrl?: string;
}

export interface VmMigrateReply {
  vmUuid: string;
  state: "running";
  sourceHostUuid: string;
  targetHostUuid: string;
}
