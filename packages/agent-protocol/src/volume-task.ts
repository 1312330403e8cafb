/** Long-running agent-side tasks on a volume (backup, snapshot, copy…). */

/**
 * A task kind: a lower-case word such as `backup`, `snapshot` or `resize`. Bounded and plain so
 * that a kind a caller waits on can never differ from the one a task was started with by case,
 * spaces or a typo the agent would silently accept.
 */
export const VOLUME_TASK_KIND_PATTERN = /^[a-z][a-z0-9_-]{0,63}$/;

/**
 * The longest `volume/task/wait` may wait (`timeoutMs`). A long-poll must answer before its
 * caller gives up on it, so a client's deadline for `volume/task/wait` must be longer than this
 * plus network and scheduling margin (the agent client's default for the command is meant to be
 * this + 30 s): a wait always ends with an answer (`exited: false` at the latest), never with a
 * client timeout whose outcome looks unknown. Callers that wait longer send the wait again.
 */
export const VOLUME_TASK_WAIT_MAX_MS = 60_000;

/** Most volumes one `volume/task/wait` may name (a VM's disks, with room to spare). */
export const VOLUME_TASK_WAIT_MAX_VOLUMES = 256;

/** Most task uuids one `volume/task/wait` may name. */
export const VOLUME_TASK_WAIT_MAX_TASKS = 256;

/** Bytes a byte-counting task moves per chunk unless the host is configured otherwise (64 MiB). */
export const DEFAULT_VOLUME_TASK_CHUNK_BYTES = 64 * 1024 ** 2;

/**
 * Share of a volume an incremental task moves (its "changed blocks"): `ceil(sizeBytes / 8)`.
 * A stand-in for a real dirty-block bitmap, fixed so that callers and tests can predict it.
 */
export const INCREMENTAL_CHANGED_FRACTION_DIVISOR = 8;

export type VolumeTaskState = "running" | "cancelling" | "succeeded" | "cancelled" | "failed";

const FINISHED_STATES: ReadonlySet<string> = new Set<VolumeTaskState>(["succeeded", "cancelled", "failed"]);

/** Whether a task has exited (a `cancelling` one still runs until its chunk ends). */
export function isVolumeTaskFinished(state: VolumeTaskState | string): boolean {
  return FINISHED_STATES.has(state);
}

/** A volume task as the agent reports it. */
export interface VolumeTaskInfo {
  taskUuid: string;
  volumeUuid: string;
  /** What the task does, e.g. `backup` or `snapshot`; the agent treats all kinds alike. */
  kind: string;
  state: VolumeTaskState;
  durationMs: number;
  startedAt: string;
  finishedAt?: string;
  /** Free-form arguments the caller sent (`sizeBytes` and `incremental` included, when sent). */
  args: Record<string, unknown>;
  /**
   * Byte tasks only (started with `sizeBytes`): bytes moved so far, in whole chunks;
   * `bytesTotal` once succeeded. A cancelled task keeps the bytes of the chunks it finished.
   */
  bytesDone?: number;
  /** Byte tasks only: `sizeBytes`, or for an incremental task `ceil(sizeBytes / 8)`. */
  bytesTotal?: number;
}

/** `volume/task/start`: fields beyond these are the task's arguments. */
export interface VolumeTaskStartRequest {
  volumeUuid: string;
  /** Required: callers wait on and cancel tasks by kind (matches {@link VOLUME_TASK_KIND_PATTERN}). */
  kind: string;
  /** Names the task, so a repeated start finds it instead of starting a second one. */
  taskUuid?: string;
  /**
   * The VM the volume is a disk of, when it is attached: the task is then a block job of that
   * domain and runs only where the domain is (libvirt has no block job without its domain). 404
   * `VM_NOT_FOUND` when the VM is not on this host — it moved after the caller looked it up: ask
   * where it is now and start there; a `backup` is 409 `VM_MIGRATING` while the VM's memory
   * copy runs, and the VM's migration is refused (`BLOCK_JOB_ACTIVE`) while the backup runs.
   */
  vmUuid?: string;
  durationMs?: number;
  /**
   * The volume's size (a positive integer): makes this a byte task that moves `bytesTotal` bytes
   * in chunks of the host's chunk size, spread evenly over `durationMs`. A cancel of a byte task
   * takes effect at the end of the chunk in progress (`cancelling` until then).
   */
  sizeBytes?: number;
  /** With `sizeBytes`: move only the changed blocks, `ceil(sizeBytes / 8)` bytes. Needs `sizeBytes`. */
  incremental?: boolean;
  [arg: string]: unknown;
}

export interface VolumeTaskCancelRequest {
  taskUuid: string;
}

/** `volume/task/start` and `volume/task/cancel` reply: the task as it is now. */
export interface VolumeTaskReply {
  task: VolumeTaskInfo;
}

/** `{ taskUuid }` asks for that task; otherwise tasks filtered by volume and kind. */
export interface VolumeTaskStatusRequest {
  taskUuid?: string;
  volumeUuid?: string;
  /** Only tasks of this kind (matches {@link VOLUME_TASK_KIND_PATTERN}). */
  kind?: string;
  /** Also list finished tasks (default: running only). */
  includeFinished?: boolean;
}

export interface VolumeTaskStatusReply {
  tasks: VolumeTaskInfo[];
}

/**
 * `volume/task/wait`: a long-poll that answers as soon as no task of `kinds` (any kind when
 * absent) that is on one of `volumeUuids` or named in `taskUuids` is running — at once if none
 * is — or after `timeoutMs` with those still running. A named task this agent does not know is
 * not running. A task being cancelled (`cancelling`) is still running until it has exited.
 * The agent answers on the task-exit event, so the caller learns of the exit within a network
 * round trip instead of a polling interval (ZStack's seed 001 polled once a second).
 */
export interface VolumeTaskWaitRequest {
  /**
   * Up to {@link VOLUME_TASK_WAIT_MAX_VOLUMES} volume uuids. At least one of `volumeUuids` and
   * `taskUuids` must be non-empty; an absent or empty one matches nothing.
   */
  volumeUuids?: string[];
  /** Up to {@link VOLUME_TASK_WAIT_MAX_TASKS} task uuids (see `volumeUuids`). */
  taskUuids?: string[];
  /** Only tasks of these kinds block the wait; absent: every kind. Never empty. */
  kinds?: string[];
  /** 0..{@link VOLUME_TASK_WAIT_MAX_MS}; 0 answers at once (a check, no wait). */
  timeoutMs: number;
}

export interface VolumeTaskWaitReply {
  /** True when no matching task is running; false when the timeout came first. */
  exited: boolean;
  /** The matching tasks still running (`running` or `cancelling`); empty when `exited`. */
  running: VolumeTaskInfo[];
}
