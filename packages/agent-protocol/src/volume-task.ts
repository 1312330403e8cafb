/** Long-running agent-side tasks on a volume (backup, snapshot, copy…). */

export type VolumeTaskState = "running" | "cancelling" | "succeeded" | "cancelled" | "failed";

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
  /** Free-form arguments the caller sent. */
  args: Record<string, unknown>;
}

/** `volume/task/start`: fields beyond these are the task's arguments. */
export interface VolumeTaskStartRequest {
  volumeUuid: string;
  kind: string;
  /** Names the task, so a repeated start finds it instead of starting a second one. */
  taskUuid?: string;
  durationMs?: number;
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
  kind?: string;
  /** Also list finished tasks (default: running only). */
  includeFinished?: boolean;
}

export interface VolumeTaskStatusReply {
  tasks: VolumeTaskInfo[];
}
