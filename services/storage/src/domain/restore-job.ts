import { Code, StratumError } from "@stratum/core";
import { JobCanceledError, JobCancelFailedError, type JobTypeDefinition } from "@stratum/jobs";
import { moved, stopTask, stoppedByCancel, supersededBy, type VolumeJobDeps } from "./backup-job";
import { agentOfVolume } from "./volume-placement";

type RestoreParams = { backupUuid: string };

/**
 * `storage.restore`: writes an AVAILABLE backup (and the chain it depends on) into a volume
 * through a byte task on the volume's agent, named by the job's UUID. The agent writes into a
 * copy it swaps in only at the end, so a cancelled or failed restore leaves the volume as it was:
 * either way the backup and the volume are AVAILABLE again when the job ends.
 */
export function restoreJob(d: VolumeJobDeps): JobTypeDefinition<RestoreParams> {
  return {
    name: "storage.restore",
    description: "Restores a backup into a volume, with progress in bytes; cancellable (the volume is left as it was); resumes after a replica's death.",
    stages: ["preparing", "copying", "finishing"],
    parameters: [{ name: "backupUuid", kind: "string", required: true, description: "the backup to restore (RestoreBackup starts it)" }],
    onInterrupt: "resume",
    targetRequired: true,
    async run(ctx) {
      ctx.progress({ stage: "preparing", percent: 0 });
      const b = await d.backups.get(ctx.params.backupUuid);
      if (!b) throw StratumError.notFound("backup", ctx.params.backupUuid);
      if (b.state !== "Restoring" || b.restoreJobUuid !== ctx.jobUuid || b.restoreVolumeUuid !== ctx.targetUuid) {
        // An earlier attempt ended the restore (and wrote it) before it could report: nothing left to do.
        throw new StratumError(Code.FAILED_PRECONDITION, `backup ${b.uuid} is ${b.state}, not being restored by job ${ctx.jobUuid} into volume ${ctx.targetUuid}`, { reason: "BACKUP_STATE_CONFLICT", resources: { backupUuid: b.uuid } });
      }
      const end = async () => {
        const done = await d.backups.transition([b.uuid], "Available", { restore: null }, ["Restoring"]);
        if ("refused" in done) throw await moved(d.backups, b.uuid);
      };
      let hostUuid = b.taskHostUuid;
      // A resumed attempt whose predecessor recorded its host may have a task running there: it
      // goes straight to that task (found by its uuid), whose run handles a cancel by stopping
      // it on the agent. A checkpoint here would end the job with the task still copying.
      const taskMayRun = ctx.resumed && b.taskHostUuid !== null;
      /** Whether a `volume/task/start` may have reached the agent (this attempt's or a predecessor's) and is not settled yet. */
      let startMayHaveGone = taskMayRun;
      try {
        if (!taskMayRun) await ctx.checkpoint();
        const host = hostUuid ? await d.locator.host(hostUuid, taskMayRun ? AbortSignal.timeout(10_000) : ctx.signal) : (await agentOfVolume(d.volumes, d.locator, ctx.targetUuid, ctx.signal)).host;
        hostUuid = host.uuid;
        if (!b.taskHostUuid && !(await d.backups.recordTaskHost(b.uuid, host.uuid, "Restoring"))) throw await moved(d.backups, b.uuid);
        if (!taskMayRun) await ctx.checkpoint();
        startMayHaveGone = true;
        const task = await d.runs.run(ctx, host, {
          volumeUuid: ctx.targetUuid,
          kind: "restore",
          taskUuid: ctx.jobUuid,
          sizeBytes: b.volumeSizeBytes,
          args: { backupUuid: b.uuid, backupStorageUuid: b.backupStorageUuid },
        }, "copying");
        startMayHaveGone = false;
        ctx.progress({ stage: "finishing" });
        await end();
        if (task.state === "succeeded") return { backupUuid: b.uuid, volumeUuid: ctx.targetUuid, hostUuid: host.uuid };
        if (task.state === "cancelled") throw new JobCanceledError(ctx.jobUuid);
        throw new StratumError(Code.INTERNAL, `restore of backup ${b.uuid} into volume ${ctx.targetUuid}: volume task ${task.taskUuid} on host ${host.uuid} ${task.state}; the volume is as it was`, {
          reason: "RESTORE_TASK_FAILED",
          resources: { backupUuid: b.uuid, volumeUuid: ctx.targetUuid, hostUuid: host.uuid, taskUuid: task.taskUuid },
        });
      } catch (e) {
        if (supersededBy(ctx, e) && !(e instanceof JobCancelFailedError)) throw e; // a newer attempt carries on
        if (e instanceof StratumError && (e.reason === "RESTORE_TASK_FAILED" || e.reason === "BACKUP_STATE_CONFLICT")) throw e; // ended already
        if (e instanceof JobCancelFailedError) throw e; // the task may still run: the volume stays Restoring
        // Cancelled before this attempt's run reached the task: a predecessor's may be writing.
        if (stoppedByCancel(ctx, e) && hostUuid && startMayHaveGone) {
          const stopped = await stopTask(d, ctx, hostUuid, ctx.jobUuid);
          if (stopped instanceof JobCancelFailedError) throw stopped;
          if (stopped.state === "succeeded") {
            // Done before the cancel reached it: the volume holds the backup now (the work won).
            await end();
            return { backupUuid: b.uuid, volumeUuid: ctx.targetUuid, hostUuid };
          }
        }
        // Stopped before the agent wrote anything into the volume, or cancelled: as it was.
        await end().catch(() => {});
        if (stoppedByCancel(ctx, e)) throw new JobCanceledError(ctx.jobUuid);
        throw e;
      }
    },
    cancel: (ctx) => d.runs.cancel(ctx),
  };
}
