import { Code, errorMessage, StratumError } from "@stratum/core";
import { JobCanceledError, JobCancelFailedError, JobFailedError, JobSupersededError, type JobContext, type JobTypeDefinition } from "@stratum/jobs";
import { setTimeout as sleep } from "node:timers/promises";
import type { HostLocator, VolumeAgent } from "../clients/hosts";
import type { HostVolumeTask } from "../clients/volume-agents";
import type { BackupStore } from "../store/backup-store";
import type { BackupRow } from "../store/schema";
import type { VolumeStore } from "../store/volume-store";
import { agentOfVolume } from "./volume-placement";
import { cancelled, type VolumeTaskRuns } from "./volume-task-run";

export interface VolumeJobDeps {
  backups: BackupStore;
  volumes: VolumeStore;
  locator: HostLocator;
  runs: VolumeTaskRuns;
}

type BackupParams = { backupUuid: string };

/** Bound of finding the agent of a task to stop (the job's own signal is aborted by then). */
const STOP_LOOKUP_MS = 10_000;
/**
 * How long a backup whose VM left the host it looked up follows it: compute records where the VM
 * is within a statement of the copy's end, or, when its replica died there, once the takeover
 * resumed the migration (seconds).
 */
const FOLLOW_VM_BOUND_MS = 20_000;
const FOLLOW_VM_FIRST_PAUSE_MS = 20;
const FOLLOW_VM_MAX_PAUSE_MS = 1_000;

/**
 * `storage.backup`: copies a volume to its backup storage through a byte task on the volume's
 * agent, named by the backup's UUID, and settles the backup: AVAILABLE with its real size,
 * ERROR naming the host and the task, or CANCELED (its bytes given back, nothing of it counted as
 * available). Resumes after its executor's death on the volume's new owner: the host it chose
 * is recorded on the backup before the task starts, and the task's uuid finds the same task.
 */
export function backupJob(d: VolumeJobDeps): JobTypeDefinition<BackupParams> {
  /** Jobs whose run has begun on this replica (their run settles the backup itself). */
  const started = new Set<string>();
  return {
    name: "storage.backup",
    description: "Backs up a volume (full, or incremental from its parent) to a backup storage, with progress in bytes; cancellable; resumes after a replica's death.",
    stages: ["preparing", "copying", "finishing"],
    parameters: [{ name: "backupUuid", kind: "string", required: true, description: "the backup (CreateBackup records it)" }],
    onInterrupt: "resume",
    targetRequired: true,
    async run(ctx) {
      started.add(ctx.jobUuid);
      try {
        return await runBackup(ctx);
      } finally {
        started.delete(ctx.jobUuid);
      }
    },
    async cancel(ctx) {
      await d.runs.cancel(ctx);
      // Cancelled before this attempt's run began (at the executor's first checkpoint, which then
      // never runs it): nothing else would settle the backup. One no task was sent for is Canceled.
      if (started.has(ctx.jobUuid)) return;
      const b = await d.backups.get(ctx.params.backupUuid);
      if (b?.state === "Creating" && b.taskHostUuid === null) await d.backups.transition([b.uuid], "Canceled", { held: "none" }, ["Creating"]);
    },
  };

  async function runBackup(ctx: JobContext<BackupParams>): Promise<Record<string, unknown>> {
      ctx.progress({ stage: "preparing", percent: 0 });
      const b = await backupOf(d.backups, ctx);
      if (b.state === "Available") return resultOf(b); // an earlier attempt finished it
      if (b.state === "Canceled") throw new JobCanceledError(ctx.jobUuid);
      if (b.state !== "Creating") throw new StratumError(Code.FAILED_PRECONDITION, `backup ${b.uuid} is ${b.state}${b.error ? `: ${b.error}` : ""}`, { reason: "BACKUP_STATE_CONFLICT", resources: { backupUuid: b.uuid } });
      let hostUuid = b.taskHostUuid;
      // A resumed attempt whose predecessor recorded its host may have a task running there: it
      // goes straight to that task (found by its uuid), whose run handles a cancel by stopping
      // it on the agent. A checkpoint here would end the job with the task still copying.
      const taskMayRun = ctx.resumed && b.taskHostUuid !== null;
      /** Whether a `volume/task/start` may have reached the agent (this attempt's or a predecessor's) and is not settled yet. */
      let startMayHaveGone = taskMayRun;
      try {
        if (!taskMayRun) await ctx.checkpoint();
        // Not the job's signal when a predecessor's task may run: a cancel has aborted it already,
        // and this lookup must succeed for the task to be reached and settled.
        // A recorded host is named with the volume's VM too: should the VM have left it, the
        // agent refuses the start and the task follows the VM like a fresh one.
        let where: VolumeAgent = hostUuid
          ? { host: await d.locator.host(hostUuid, taskMayRun ? AbortSignal.timeout(STOP_LOOKUP_MS) : ctx.signal), ...(await vmOfVolume(d, b.volumeUuid)) }
          : await agentOfVolume(d.volumes, d.locator, b.volumeUuid, ctx.signal);
        hostUuid = where.host.uuid;
        if (!b.taskHostUuid && !(await d.backups.recordTaskHost(b.uuid, hostUuid, "Creating"))) throw await moved(d.backups, b.uuid);
        if (!taskMayRun) await ctx.checkpoint();
        startMayHaveGone = true;
        const followUntil = Date.now() + FOLLOW_VM_BOUND_MS;
        let task: HostVolumeTask;
        for (;;) {
          try {
            task = await d.runs.run(ctx, where.host, {
              volumeUuid: b.volumeUuid,
              kind: "backup",
              taskUuid: b.uuid,
              sizeBytes: b.volumeSizeBytes,
              incremental: b.mode === "Incremental",
              ...(where.vmUuid ? { vmUuid: where.vmUuid } : {}),
              args: { parentBackupUuid: b.parentUuid ?? "", backupStorageUuid: b.backupStorageUuid },
            }, "copying");
            break;
          } catch (e) {
            if (!vmNotOnHost(e) || ctx.signal.aborted) throw e;
            // The VM left that host between the lookup and the start (its migration's copy ended
            // there): no task started, and none may, or a migration from the VM's new host would
            // not see it. Started where the VM is now, once compute says where that is.
            where = await followVm(d, ctx, b.volumeUuid, where, followUntil, e);
            if (where.host.uuid !== hostUuid && !(await d.backups.recordTaskHost(b.uuid, where.host.uuid, "Creating"))) throw await moved(d.backups, b.uuid);
            hostUuid = where.host.uuid;
          }
        }
        startMayHaveGone = false;
        const host = where.host;
        ctx.progress({ stage: "finishing" });
        if (task.state === "succeeded") {
          const done = await d.backups.transition([b.uuid], "Available", { sizeBytes: task.bytesTotal ?? b.volumeSizeBytes, held: "size" }, ["Creating"]);
          if ("refused" in done) throw await moved(d.backups, b.uuid);
          return resultOf(done[0]!);
        }
        if (task.state === "cancelled") throw new JobCanceledError(ctx.jobUuid);
        throw new StratumError(Code.INTERNAL, `backup ${b.uuid}: volume task ${task.taskUuid} on host ${host.uuid} ${task.state}`, {
          reason: "BACKUP_TASK_FAILED",
          resources: { backupUuid: b.uuid, hostUuid: host.uuid, taskUuid: task.taskUuid },
        });
      } catch (e) {
        if (!(e instanceof JobCancelFailedError) && stoppedByCancel(ctx, e)) {
          // Cancelled before this attempt's run reached the task (a resumed attempt, its signal
          // aborted): a predecessor's task may be copying on the recorded host. Stopped first, or
          // the backup would be Canceled with the agent still writing it.
          const stopped = hostUuid && startMayHaveGone ? await stopTask(d, ctx, hostUuid, b.uuid) : undefined;
          if (stopped instanceof JobCancelFailedError) {
            await d.backups.transition([b.uuid], "Error", { error: `backup ${b.uuid}: ${stopped.message}`, held: "none" }, ["Creating"]);
            throw stopped;
          }
          if (stopped?.state === "succeeded") {
            // It finished before the cancel reached it: the work won (ZStack's rule), the backup is complete.
            const done = await d.backups.transition([b.uuid], "Available", { sizeBytes: stopped.bytesTotal ?? b.volumeSizeBytes, held: "size" }, ["Creating"]);
            if ("refused" in done) throw await moved(d.backups, b.uuid);
            return resultOf(done[0]!);
          }
          await d.backups.transition([b.uuid], "Canceled", { held: "none" }, ["Creating"]);
          throw new JobCanceledError(ctx.jobUuid);
        }
        if (supersededBy(ctx, e)) throw e; // a newer attempt carries on: it settles the backup
        const why = e instanceof StratumError && e.reason === "BACKUP_TASK_FAILED" ? e.message : `backup ${b.uuid}${hostUuid ? ` (volume task ${b.uuid} on host ${hostUuid})` : ""}: ${errorMessage(e)}`;
        await d.backups.transition([b.uuid], "Error", { error: why, held: "none" }, ["Creating"]);
        // The backup says Error now: a cancel arriving meanwhile must not make the job say Canceled.
        throw new JobFailedError(e);
      }
  }
}

/**
 * Where the volume's VM is now, unlike `refused` (the host whose agent said the VM is not there):
 * asked again with a growing pause while compute still names that host — it records a migration's
 * switch only after the copy ended on the agents — at most until `until`, then `refusal` is the
 * answer. A checkpoint before each look, so a cancel is not held by it.
 */
async function followVm(d: VolumeJobDeps, ctx: JobContext<unknown>, volumeUuid: string, refused: VolumeAgent, until: number, refusal: unknown): Promise<VolumeAgent> {
  let pauseMs = FOLLOW_VM_FIRST_PAUSE_MS;
  for (;;) {
    await ctx.checkpoint();
    const now = await agentOfVolume(d.volumes, d.locator, volumeUuid, ctx.signal);
    if (now.host.uuid !== refused.host.uuid || now.vmUuid !== refused.vmUuid) return now;
    if (Date.now() + pauseMs > until) {
      throw new StratumError(Code.UNAVAILABLE, `${errorMessage(refusal)}; compute still places vm ${refused.vmUuid} there after ${FOLLOW_VM_BOUND_MS} ms`, {
        reason: "VOLUME_VM_NOT_ON_HOST",
        resources: { volumeUuid, hostUuid: refused.host.uuid, vmUuid: refused.vmUuid ?? "" },
        cause: refusal,
      });
    }
    await sleep(pauseMs, undefined, { signal: ctx.signal });
    pauseMs = Math.min(pauseMs * 2, FOLLOW_VM_MAX_PAUSE_MS);
  }
}

/** The VM the volume is a disk of, as the start names it. */
async function vmOfVolume(d: VolumeJobDeps, volumeUuid: string): Promise<{ vmUuid?: string }> {
  const v = await d.volumes.get(volumeUuid);
  return v?.vmUuid ? { vmUuid: v.vmUuid } : {};
}

/** The agent refused the start because the VM it named is not on its host. */
function vmNotOnHost(e: unknown): boolean {
  return e instanceof StratumError && e.code === Code.NOT_FOUND && e.resources["agentErrorCode"] === "VM_NOT_FOUND";
}

/** Stops the task named `taskUuid` on `hostUuid`: the task as it ended, or the failure to say. */
export async function stopTask(d: VolumeJobDeps, ctx: JobContext<unknown>, hostUuid: string, taskUuid: string): Promise<HostVolumeTask | JobCancelFailedError> {
  try {
    return await d.runs.stop(ctx, await d.locator.host(hostUuid, AbortSignal.timeout(STOP_LOOKUP_MS)), taskUuid);
  } catch (e) {
    return e instanceof JobCancelFailedError ? e : new JobCancelFailedError(ctx.jobUuid, `volume task ${taskUuid} on host ${hostUuid}: ${errorMessage(e)}`, e);
  }
}

async function backupOf(backups: BackupStore, ctx: JobContext<BackupParams>): Promise<BackupRow> {
  const b = await backups.get(ctx.params.backupUuid);
  if (!b) throw StratumError.notFound("backup", ctx.params.backupUuid);
  if (b.volumeUuid !== ctx.targetUuid) {
    throw StratumError.invalidArgument([{ field: "target_uuid", description: `must be the volume of backup ${b.uuid} (${b.volumeUuid})` }], { backupUuid: b.uuid });
  }
  return b;
}

/** The job stopped because it was cancelled: a checkpoint said so, or its signal woke a wait. */
export function stoppedByCancel(ctx: JobContext<unknown>, e: unknown): boolean {
  if (e instanceof StratumError && (e.reason === "BACKUP_TASK_FAILED" || e.reason === "RESTORE_TASK_FAILED")) return false;
  return e instanceof JobCanceledError || cancelled(ctx);
}

/** A newer attempt runs the job (or this replica hands it over): this one writes nothing more. */
export function supersededBy(ctx: JobContext<unknown>, e: unknown): boolean {
  return e instanceof JobSupersededError || (ctx.signal.aborted && !cancelled(ctx));
}

/** Why a write the job expected matched nothing: the backup moved (a delete, an earlier attempt) or the lease is gone. */
export async function moved(backups: BackupStore, uuid: string): Promise<StratumError> {
  if (!(await backups.leaseHeld())) return backups.leaseLost();
  const now = await backups.get(uuid);
  return new StratumError(Code.ABORTED, `backup ${uuid} is ${now?.state ?? "gone"}: it moved while its job ran`, { reason: "BACKUP_STATE_CONFLICT", resources: { backupUuid: uuid } });
}

function resultOf(b: BackupRow): Record<string, unknown> {
  return { backupUuid: b.uuid, sizeBytes: b.sizeBytes, hostUuid: b.taskHostUuid ?? "" };
}
