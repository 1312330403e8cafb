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

/**
 * `vm/migrate`: the target named by host uuid or agent URL. The memory copy runs `durationMs`
 * (default: the agent's own, 0 = at once) and the request answers when it has ended: moved,
 * or 409 `MIGRATION_ABORTED` (the VM still runs on its source, untouched). As libvirt does, the
 * agent refuses (409 `BLOCK_JOB_ACTIVE`, naming the tasks) to start the copy while a `backup`
 * task runs or is cancelling on one of `volumeUuids`, and refuses `backup` starts on them
 * (409 `VM_MIGRATING`) while the copy runs.
 */
export interface VmMigrateRequest {
  vmUuid: string;
  targetHostUuid?: string;
  targetAgentUrl?: string;
  /** The VM's disks: what the block-job guard looks at. */
  volumeUuids?: string[];
  /** Memory copy time in ms (a non-negative integer). */
  durationMs?: number;
}

export interface VmMigrateReply {
  vmUuid: string;
  state: "running";
  sourceHostUuid: string;
  targetHostUuid: string;
}

/** State of a VM's last migration on a host. */
export type VmMigrationState = "copying" | "succeeded" | "aborted" | "failed";

/** `vm/migrate/status` and `vm/migrate/abort`: the VM whose migration is meant. */
export interface VmMigrateRefRequest {
  vmUuid: string;
}

/**
 * `vm/migrate/status` reply: the last migration of the VM from this host (404 `VM_NOT_FOUND`
 * when there was none). `percent` is an integer 0..100 of the memory copied.
 */
export interface VmMigrateStatusReply {
  vmUuid: string;
  state: VmMigrationState;
  percent: number;
  memoryBytesDone: number;
  memoryBytesTotal: number;
}

/** `vm/migrate/abort` reply: `aborted` is false when no copy of the VM was running (abort is idempotent). */
export interface VmMigrateAbortReply {
  vmUuid: string;
  aborted: boolean;
}
