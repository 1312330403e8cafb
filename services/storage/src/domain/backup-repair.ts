import { isVolumeTaskFinished } from "@stratum/agent-protocol";
import { errorMessage, type Logger } from "@stratum/core";
import { isFinalJobState, type LongJobClient } from "@stratum/jobs";
import { JobState } from "@stratum/proto/stratum/longjob/v1/job_pb";
import type { HostLocator } from "../clients/hosts";
import type { VolumeAgents } from "../clients/volume-agents";
import type { BackupStore } from "../store/backup-store";
import type { BackupRow } from "../store/schema";

/** How often the repair looks (also once at start). */
export const REPAIR_INTERVAL_MS = 2_000;

/** How long a restore may have no job in longjob before it counts as ended (its submit is bounded well below). */
const MISSING_JOB_GRACE_MS = 60_000;


export interface BackupRepairDeps {
  backups: BackupStore;
  jobs: LongJobClient;
  locator: HostLocator;
  agents: VolumeAgents;
  /** Whether this replica owns the UUID on storage's ring (the target volume's owner repairs). */
  owns(uuid: string): boolean;
  log: Logger;
}

/**
 * A restore whose cancel could not reach its agent ends Failed (JOB_CANCEL_FAILED) with its
 * backup and its target volume left Restoring: the task may still be writing, so the job could
 * not say the volume was as it was. Nothing else would move them back. So the owner of each such
 * volume, once the restore's job has ended, asks the agent that ran the task: when the task has
 * exited (or the agent never had it), the restore is over and both are Available again — the
 * agent swaps the copy in only at the task's end, so the volume is whole either way; while the task
 * still runs, its cancel is sent again. A restore whose job still runs is the job's to settle.
 */
export class BackupRepair {
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;

  constructor(
    private readonly d: BackupRepairDeps,
    private readonly intervalMs = REPAIR_INTERVAL_MS,
  ) {}

  start(): void {
    this.#timer = setInterval(() => void this.kick(), this.intervalMs);
    this.#timer.unref();
    void this.kick();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
  }

  /** Runs a pass unless one runs (tests await it). */
  kick(): Promise<void> {
    this.#running ??= this.pass()
      .catch((e) => this.d.log.warn("backup repair pass failed", { error: errorMessage(e) }))
      .finally(() => (this.#running = undefined));
    return this.#running;
  }

  async pass(): Promise<void> {
    for (const b of await this.d.backups.inFlight()) {
      if (b.state === "Creating") {
        await this.#creating(b);
        continue;
      }
      if (!b.restoreJobUuid || !b.restoreVolumeUuid || !this.d.owns(b.restoreVolumeUuid)) continue;
      try {
        const state = (await this.d.jobs.get(b.restoreJobUuid))?.state ?? JobState.UNSPECIFIED;
        // No job at all: deleted once it ended, or never submitted (its replica died between the
        // restore's start and the submit) — over, once no submit can still be on its way.
        const gone = state === JobState.UNSPECIFIED && Date.now() - b.updatedAt.getTime() > MISSING_JOB_GRACE_MS;
        if (!isFinalJobState(state) && !gone) continue;
        if (b.taskHostUuid) {
          const host = await this.d.locator.host(b.taskHostUuid, AbortSignal.timeout(10_000));
          const task = await this.d.agents.status(host, b.restoreJobUuid, AbortSignal.timeout(10_000));
          if (task && !isVolumeTaskFinished(task.state)) {
            // Told once; later passes only look whether it has exited.
            if (task.state === "running") {
              await this.d.agents.cancel(host, task.taskUuid, AbortSignal.timeout(10_000));
              this.d.log.warn("a restore's job ended with its task still running: cancelled it again", { backupUuid: b.uuid, volumeUuid: b.restoreVolumeUuid, taskUuid: task.taskUuid, hostUuid: host.uuid });
            }
            continue;
          }
        }
        const done = await this.d.backups.transition([b.uuid], "Available", { restore: null }, ["Restoring"]);
        if (!("refused" in done)) this.d.log.warn("repaired a restore its job left unsettled: backup and volume Available again", { backupUuid: b.uuid, volumeUuid: b.restoreVolumeUuid, jobUuid: b.restoreJobUuid });
      } catch (e) {
        // The agent or longjob cannot say now: the next pass asks again.
        this.d.log.warn("cannot repair a restore yet", { backupUuid: b.uuid, jobUuid: b.restoreJobUuid, error: errorMessage(e) });
      }
    }
  }

  /**
   * A backup still Creating whose job has ended without settling it: cancelled before its run
   * began (at the executor's first checkpoint, or by longjob before any dispatch), or its job
   * gone. Its task, if one was started, decides: succeeded → Available; still running → cancelled
   * (once), and looked at again; otherwise Canceled (the job was) or Error naming the job.
   */
  async #creating(b: BackupRow): Promise<void> {
    if (!this.d.owns(b.volumeUuid)) return;
    try {
      const state = (await this.d.jobs.get(b.jobUuid))?.state ?? JobState.UNSPECIFIED;
      const gone = state === JobState.UNSPECIFIED && Date.now() - b.updatedAt.getTime() > MISSING_JOB_GRACE_MS;
      if (!isFinalJobState(state) && !gone) return;
      let bytes: number | undefined;
      if (b.taskHostUuid) {
        const host = await this.d.locator.host(b.taskHostUuid, AbortSignal.timeout(10_000));
        const task = await this.d.agents.status(host, b.uuid, AbortSignal.timeout(10_000));
        if (task && !isVolumeTaskFinished(task.state)) {
          if (task.state === "running") await this.d.agents.cancel(host, task.taskUuid, AbortSignal.timeout(10_000));
          return;
        }
        if (task?.state === "succeeded") bytes = task.bytesTotal ?? b.volumeSizeBytes;
      }
      const done =
        bytes !== undefined
          ? await this.d.backups.transition([b.uuid], "Available", { sizeBytes: bytes, held: "size" }, ["Creating"])
          : state === JobState.CANCELED
            ? await this.d.backups.transition([b.uuid], "Canceled", { held: "none" }, ["Creating"])
            : await this.d.backups.transition([b.uuid], "Error", { error: `backup ${b.uuid}: its job ${b.jobUuid} ended ${gone ? "missing" : JobState[state]} without settling it`, held: "none" }, ["Creating"]);
      if (!("refused" in done)) this.d.log.warn("repaired a backup its job left Creating", { backupUuid: b.uuid, jobUuid: b.jobUuid, state: done[0]!.state });
    } catch (e) {
      this.d.log.warn("cannot repair a backup yet", { backupUuid: b.uuid, jobUuid: b.jobUuid, error: errorMessage(e) });
    }
  }
}
