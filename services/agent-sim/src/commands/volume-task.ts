import { CommandError } from "../command-error";
import { optionalNonNegativeInt, optionalString, requireString } from "../fields";
import type { ProtocolHandlers } from "./types";

/**
 * Volume chain tasks: long-running agent-side tasks on a volume (`kind` is free: `backup`,
 * `snapshot`, …). Start returns at once with the task running; it succeeds after `durationMs`
 * (or the host default) unless cancelled. Status lists tasks by task, volume and/or kind, so a
 * caller can wait until, say, the backups on a volume have exited while other kinds keep running.
 */
export const volumeTaskCommands: ProtocolHandlers<"volume/task/start" | "volume/task/cancel" | "volume/task/status"> = {
  "volume/task/start": ({ host, body }) => {
    const volumeUuid = requireString(body, "volumeUuid");
    const kind = requireString(body, "kind");
    const taskUuid = optionalString(body, "taskUuid");
    const durationMs = optionalNonNegativeInt(body, "durationMs") ?? host.volumeTaskDurationMs;
    if (taskUuid !== undefined) {
      const existing = host.state.volumeTasks.get(taskUuid);
      if (existing) {
        if (existing.volumeUuid !== volumeUuid || existing.kind !== kind) {
          throw CommandError.conflict("VOLUME_TASK_EXISTS", `volume task ${taskUuid} already exists for ${existing.kind} on volume ${existing.volumeUuid}`);
        }
        return { task: existing };
      }
    }
    const { volumeUuid: _v, kind: _k, taskUuid: _t, durationMs: _d, ...args } = body;
    const task = host.state.volumeTasks.start({ ...(taskUuid === undefined ? {} : { taskUuid }), volumeUuid, kind, durationMs, args });
    return { task };
  },

  /** Requests cancellation; answers the task as it is now (`cancelling` or `cancelled`). */
  "volume/task/cancel": ({ host, body }) => {
    const taskUuid = requireString(body, "taskUuid");
    const task = host.state.volumeTasks.cancel(taskUuid);
    if (!task) throw CommandError.notFound("VOLUME_TASK_NOT_FOUND", `volume task ${taskUuid} not found on host ${host.uuid}`);
    return { task };
  },

  /** `{ taskUuid }` → that task; otherwise tasks filtered by `volumeUuid` / `kind` (running only unless `includeFinished`). */
  "volume/task/status": ({ host, body }) => {
    const taskUuid = optionalString(body, "taskUuid");
    if (taskUuid !== undefined) {
      const task = host.state.volumeTasks.get(taskUuid);
      if (!task) throw CommandError.notFound("VOLUME_TASK_NOT_FOUND", `volume task ${taskUuid} not found on host ${host.uuid}`);
      return { tasks: [task] };
    }
    const volumeUuid = optionalString(body, "volumeUuid");
    const kind = optionalString(body, "kind");
    const includeFinished = body["includeFinished"] === true;
    return {
      tasks: host.state.volumeTasks.list({
        ...(volumeUuid === undefined ? {} : { volumeUuid }),
        ...(kind === undefined ? {} : { kind }),
        includeFinished,
      }),
    };
  },
};
