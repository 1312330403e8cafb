import {
  INCREMENTAL_CHANGED_FRACTION_DIVISOR, VOLUME_TASK_KIND_PATTERN, VOLUME_TASK_WAIT_MAX_MS, VOLUME_TASK_WAIT_MAX_TASKS, VOLUME_TASK_WAIT_MAX_VOLUMES,
} from "@stratum/agent-protocol";
import { CommandError } from "../command-error";
import { AgentErrorCode } from "../protocol";
import { optionalNonNegativeInt, optionalString, optionalStringList, requireString, type JsonObject } from "../fields";
import type { ProtocolHandlers } from "./types";

/**
 * Volume chain tasks: long-running agent-side tasks on a volume, each of a `kind` (`backup`,
 * `snapshot`, `resize`, …). Start returns at once with the task running; it succeeds after
 * `durationMs` (or the host default) unless cancelled. Status lists tasks by task, volume and/or
 * kind; wait long-polls until the tasks of some kinds on some volumes have exited, so a caller
 * (a migration waiting for backups) learns of the exit when it happens while other kinds keep running.
 */
export const volumeTaskCommands: ProtocolHandlers<"volume/task/start" | "volume/task/cancel" | "volume/task/status" | "volume/task/wait"> = {
  "volume/task/start": ({ host, body }) => {
    const volumeUuid = requireString(body, "volumeUuid");
    const kind = requireKind(body, "kind");
    const taskUuid = optionalString(body, "taskUuid");
    const durationMs = optionalNonNegativeInt(body, "durationMs") ?? host.volumeTaskDurationMs;
    const bytesTotal = bytesTotalOf(body);
    if (taskUuid !== undefined) {
      const existing = host.state.volumeTasks.get(taskUuid);
      if (existing) {
        if (existing.volumeUuid !== volumeUuid || existing.kind !== kind) {
          throw CommandError.conflict("VOLUME_TASK_EXISTS", `volume task ${taskUuid} already exists for ${existing.kind} on volume ${existing.volumeUuid}`);
        }
        return { task: existing };
      }
    }
    // A disk of a VM is worked on through its domain, which is only where the VM is: a start
    // that looked the VM's host up before the VM moved away must not run on a host without it.
    const vmUuid = optionalString(body, "vmUuid");
    if (vmUuid !== undefined && !host.state.vms.has(vmUuid)) {
      throw CommandError.notFound(AgentErrorCode.VM_NOT_FOUND, `vm ${vmUuid} not found on host ${host.uuid}: a ${kind} of its volume ${volumeUuid} runs where the vm runs`);
    }
    if (kind === "backup") {
      // The other half of libvirt's block-job guard: no new block job on a disk whose VM's memory is being copied.
      const copy = vmUuid === undefined ? undefined : host.state.migrations.copying(vmUuid);
      const migrating = [...new Set([...(copy ? [copy.vmUuid] : []), ...host.state.migrations.copyingOn(volumeUuid).map((m) => m.vmUuid)])];
      if (migrating.length > 0) {
        throw CommandError.conflict(AgentErrorCode.VM_MIGRATING, `volume ${volumeUuid} belongs to vm ${migrating.join(", ")}, migrating from host ${host.uuid}: no backup until the copy ends`);
      }
    }
    // sizeBytes, incremental and vmUuid stay in args: the task info has no other place that says what was asked.
    const { volumeUuid: _v, kind: _k, taskUuid: _t, durationMs: _d, ...args } = body;
    const task = host.state.volumeTasks.start({
      ...(taskUuid === undefined ? {} : { taskUuid }),
      volumeUuid, kind, durationMs, args,
      ...(bytesTotal === undefined ? {} : { bytes: { bytesTotal, chunkBytes: host.chunkBytes } }),
    });
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
    const kind = body["kind"] === undefined || body["kind"] === null ? undefined : requireKind(body, "kind");
    const includeFinished = body["includeFinished"];
    if (includeFinished !== undefined && includeFinished !== null && typeof includeFinished !== "boolean") {
      throw CommandError.invalidField("includeFinished", "a boolean");
    }
    return {
      tasks: host.state.volumeTasks.list({
        ...(volumeUuid === undefined ? {} : { volumeUuid }),
        ...(kind === undefined ? {} : { kind }),
        includeFinished: includeFinished === true,
      }),
    };
  },

  /**
   * Long-poll: answers when no task of `kinds` on `volumeUuids` runs, or at `timeoutMs` with those
   * still running. Settled by the task-exit event inside the agent, never by re-reading on a timer.
   * Every field is checked before anything waits, and unknown fields are refused: a filter the
   * agent did not understand would silently widen or narrow what the caller waits for.
   */
  "volume/task/wait": async ({ host, body }) => {
    for (const field of Object.keys(body)) {
      if (!WAIT_FIELDS.has(field)) throw CommandError.badRequest(AgentErrorCode.INVALID_FIELD, `unknown field: ${field} (volume/task/wait takes volumeUuids, taskUuids, kinds, timeoutMs)`);
    }
    const volumeUuids = optionalStringList(body, "volumeUuids", VOLUME_TASK_WAIT_MAX_VOLUMES, { allowEmpty: true }) ?? [];
    const taskUuids = optionalStringList(body, "taskUuids", VOLUME_TASK_WAIT_MAX_TASKS, { allowEmpty: true }) ?? [];
    if (volumeUuids.length === 0 && taskUuids.length === 0) {
      // Waiting on nothing would answer "exited" for every task: surely not what the caller meant.
      if (body["volumeUuids"] === undefined && body["taskUuids"] === undefined) throw CommandError.missingField("volumeUuids (or taskUuids)");
      throw CommandError.invalidField(body["volumeUuids"] === undefined ? "taskUuids" : "volumeUuids", "non-empty (volumeUuids or taskUuids must name at least one)");
    }
    const kinds = body["kinds"] === undefined ? undefined : requireStringList(body, "kinds", 64);
    kinds?.forEach((kind, i) => {
      if (!VOLUME_TASK_KIND_PATTERN.test(kind)) throw CommandError.invalidField(`kinds[${i}]`, "a task kind (lower-case letters, digits, - or _, starting with a letter, at most 64)");
    });
    const timeoutMs = body["timeoutMs"];
    if (timeoutMs === undefined || timeoutMs === null) throw CommandError.missingField("timeoutMs");
    if (typeof timeoutMs !== "number" || !Number.isSafeInteger(timeoutMs) || timeoutMs < 0 || timeoutMs > VOLUME_TASK_WAIT_MAX_MS) {
      throw CommandError.invalidField("timeoutMs", `an integer from 0 to ${VOLUME_TASK_WAIT_MAX_MS}`);
    }
    return host.state.volumeTasks.waitForTasks({ volumeUuids, taskUuids, ...(kinds === undefined ? {} : { kinds }) }, timeoutMs);
  },
};

const WAIT_FIELDS: ReadonlySet<string> = new Set(["volumeUuids", "taskUuids", "kinds", "timeoutMs"]);

/** The bytes a task moves: undefined for a task without `sizeBytes` (it only takes time). */
function bytesTotalOf(body: JsonObject): number | undefined {
  const sizeBytes = body["sizeBytes"];
  const incremental = body["incremental"];
  if (incremental !== undefined && incremental !== null && typeof incremental !== "boolean") throw CommandError.invalidField("incremental", "a boolean");
  if (sizeBytes === undefined || sizeBytes === null) {
    if (incremental === true) throw CommandError.missingField("sizeBytes (incremental needs the volume's size)");
    return undefined;
  }
  if (typeof sizeBytes !== "number" || !Number.isSafeInteger(sizeBytes) || sizeBytes <= 0) throw CommandError.invalidField("sizeBytes", "a positive integer");
  return incremental === true ? Math.ceil(sizeBytes / INCREMENTAL_CHANGED_FRACTION_DIVISOR) : sizeBytes;
}

/** A kind is required where it names what is started or looked up: a typo must not match nothing silently. */
function requireKind(body: JsonObject, field: string): string {
  const kind = requireString(body, field);
  if (!VOLUME_TASK_KIND_PATTERN.test(kind)) {
    throw CommandError.invalidField(field, "a task kind (lower-case letters, digits, - or _, starting with a letter, at most 64)");
  }
  return kind;
}

/** A non-empty array of non-empty strings, at most `max` long; the error names the element that is wrong. */
function requireStringList(body: JsonObject, field: string, max: number): string[] {
  const value = body[field];
  if (value === undefined || value === null) throw CommandError.missingField(field);
  if (!Array.isArray(value) || value.length === 0 || value.length > max) {
    throw CommandError.invalidField(field, `a non-empty array of at most ${max} strings`);
  }
  value.forEach((item, i) => {
    if (typeof item !== "string" || item === "") throw CommandError.invalidField(`${field}[${i}]`, "a non-empty string");
  });
  return value as string[];
}
