import { Code, errorMessage, StratumError } from "@stratum/core";
import { JobCanceledError, JobCancelFailedError, type JobContext } from "@stratum/jobs";
import { isVolumeTaskFinished, VOLUME_TASK_WAIT_MAX_MS } from "@stratum/agent-protocol";
import type { AgentHost } from "../clients/hosts";
import type { HostVolumeTask, VolumeAgents, VolumeTaskStart } from "../clients/volume-agents";

/** How often a running task's bytes are reported: the wait's timeout, which only paces the reports. */
export const PROGRESS_INTERVAL_MS = 500;
/** How long a cancelled job waits for its agent task to exit before it fails saying so. */
export const CANCEL_EXIT_BOUND_MS = 30_000;
/** Bound of the agent call that asks a task to stop (its signal cannot be the job's: that one is aborted). */
const CANCEL_CALL_MS = 10_000;

/** The agent task a job works through, known to its cancel hook. */
interface ActiveTask {
  host: AgentHost;
  taskUuid: string;
  /** The first cancel sent (by the hook, or by the job when the hook found no task yet). */
  cancel?: Promise<void>;
}

/**
 * The part every volume-task job (storage.backup, storage.restore) shares: start a byte task on
 * the volume's agent under a stable task uuid (a resumed job finds the same task instead of
 * starting a second), follow it to its exit — `volume/task/wait` answers at once on the exit, its
 * timeout only paces the progress reports — with a checkpoint between rounds, and on a cancel send
 * `volume/task/cancel` and wait (bounded) for the task to exit.
 */
export class VolumeTaskRuns {
  readonly #active = new Map<string, ActiveTask>();

  constructor(private readonly agents: VolumeAgents) {}

  /**
   * Runs the task to its exit: the task as it ended. A cancel (the job's signal) answers with the
   * task's exit after the agent stopped it — `cancelled`, or `succeeded` when it finished first —
   * or throws JobCancelFailedError when the cancel did not reach the agent or the task did not
   * stop in time. A superseded attempt's abort passes through untouched.
   */
  async run(ctx: JobContext<unknown>, host: AgentHost, start: VolumeTaskStart, stage: string): Promise<HostVolumeTask> {
    const active: ActiveTask = { host, taskUuid: start.taskUuid };
    try {
      let task = await this.agents.start(host, start, ctx.signal);
      // Known to the hook only once the agent has it: a cancel racing the start is sent by the
      // job itself, after the start settled, so it cannot reach the agent before the task does.
      this.#active.set(ctx.jobUuid, active);
      for (;;) {
        report(ctx, task, stage);
        if (isVolumeTaskFinished(task.state)) return task;
        await ctx.checkpoint();
        await this.agents.wait(host, { taskUuids: [start.taskUuid], timeoutMs: PROGRESS_INTERVAL_MS }, ctx.signal);
        task = (await this.agents.status(host, start.taskUuid, ctx.signal)) ?? lost(start.taskUuid, host);
      }
    } catch (e) {
      if (!cancelled(ctx)) throw e;
      // Cancelled: the hook sent the agent's cancel (or sends it now, had the task just started).
      active.cancel ??= this.#sendCancel(active);
      await active.cancel.catch((err) => {
        throw new JobCancelFailedError(ctx.jobUuid, `volume task ${start.taskUuid} on host ${host.uuid}: ${errorMessage(err)}`, err);
      });
      const exited = await this.#awaitExit(active);
      if (!exited) throw new JobCancelFailedError(ctx.jobUuid, `volume task ${start.taskUuid} on host ${host.uuid} did not stop within ${CANCEL_EXIT_BOUND_MS} ms of its cancel`);
      report(ctx, exited, stage);
      return exited;
    } finally {
      this.#active.delete(ctx.jobUuid);
    }
  }

  /**
   * Stops a task this attempt did not start — its dead predecessor's, found on the host recorded
   * for it — and waits for its exit: the cancel of a job whose own run never reached the task.
   * Answers the task as it ended; throws JobCancelFailedError when the agent cannot be told or the
   * task does not stop in time.
   */
  async stop(ctx: JobContext<unknown>, host: AgentHost, taskUuid: string): Promise<HostVolumeTask> {
    const task: ActiveTask = { host, taskUuid };
    try {
      await this.#sendCancel(task);
    } catch (err) {
      throw new JobCancelFailedError(ctx.jobUuid, `volume task ${taskUuid} on host ${host.uuid}: ${errorMessage(err)}`, err);
    }
    const exited = await this.#awaitExit(task);
    if (!exited) throw new JobCancelFailedError(ctx.jobUuid, `volume task ${taskUuid} on host ${host.uuid} did not stop within ${CANCEL_EXIT_BOUND_MS} ms of its cancel`);
    // As it ended: a predecessor's task may have finished before the cancel (the work won).
    return exited;
  }

  /** The job types' cancel hook: reaches the agent task at once, whatever the job is waiting on. */
  async cancel(ctx: JobContext<unknown>): Promise<void> {
    const active = this.#active.get(ctx.jobUuid);
    if (!active) return; // no task sent yet: the job stops at its checkpoint
    active.cancel ??= this.#sendCancel(active);
    await active.cancel;
  }

  async #sendCancel(a: ActiveTask): Promise<void> {
    try {
      await this.agents.cancel(a.host, a.taskUuid, AbortSignal.timeout(CANCEL_CALL_MS));
    } catch (e) {
      // Never started there (the start was aborted before the agent took it): nothing to stop.
      if (e instanceof StratumError && e.code === Code.NOT_FOUND && e.resources["agentErrorCode"] === "VOLUME_TASK_NOT_FOUND") return;
      throw e;
    }
  }

  /** Waits for the task's exit, event-driven, at most CANCEL_EXIT_BOUND_MS: the task as it ended, or undefined. */
  async #awaitExit(a: ActiveTask): Promise<HostVolumeTask | undefined> {
    const deadline = Date.now() + CANCEL_EXIT_BOUND_MS;
    for (;;) {
      const left = deadline - Date.now();
      const reply = await this.agents.wait(a.host, { taskUuids: [a.taskUuid], timeoutMs: Math.max(0, Math.min(left, VOLUME_TASK_WAIT_MAX_MS)) }, AbortSignal.timeout(left + CANCEL_CALL_MS));
      if (reply.exited) {
        const task = await this.agents.status(a.host, a.taskUuid, AbortSignal.timeout(CANCEL_CALL_MS));
        return task ?? { taskUuid: a.taskUuid, volumeUuid: "", kind: "", state: "cancelled", durationMs: 0, startedAt: "", args: {}, hostUuid: a.host.uuid };
      }
      if (Date.now() >= deadline) return undefined;
    }
  }
}

/** Whether the job's signal was aborted by a cancel (not by a newer attempt superseding it). */
export function cancelled(ctx: JobContext<unknown>): boolean {
  return ctx.signal.aborted && ctx.signal.reason instanceof JobCanceledError;
}

function report(ctx: JobContext<unknown>, task: HostVolumeTask, stage: string): void {
  const bytesTotal = task.bytesTotal ?? 0;
  const bytesDone = task.bytesDone ?? 0;
  // 100 only once it succeeded: the last chunk's write is not the backup's end.
  const percent = bytesTotal > 0 ? Math.min(task.state === "succeeded" ? 100 : 99, Math.floor((bytesDone * 100) / bytesTotal)) : 0;
  ctx.progress({ stage, percent, bytesDone, bytesTotal });
}

function lost(taskUuid: string, host: AgentHost): never {
  throw new StratumError(Code.INTERNAL, `volume task ${taskUuid} is gone from host ${host.uuid}'s agent while it ran (the agent restarted?)`, {
    reason: "VOLUME_TASK_LOST",
    resources: { taskUuid, hostUuid: host.uuid },
  });
}
