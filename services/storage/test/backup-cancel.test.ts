import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { JobState } from "@stratum/proto/stratum/longjob/v1/job_pb";
import { BackupMode, BackupState } from "@stratum/proto/stratum/storage/v1/backup_pb";
import { VolumeKind, VolumeState } from "@stratum/proto/stratum/storage/v1/volume_pb";
import { GIB, MIB, startStorageStack, type StorageStack } from "./stack";
import { tasksNamed, untilTaskStarts, untilTaskState } from "./sim-tasks";

const CHUNK = 256n * MIB;

let stack: StorageStack;
let psUuid: string;
let bsUuid: string;
beforeAll(async () => {
  stack = await startStorageStack({ sim: { volumeTaskDurationMs: 3_600_000, chunkBytes: Number(CHUNK) } });
  psUuid = (await stack.volumes.addPrimaryStorage({ name: "local-0", totalCapacityBytes: 100n * GIB, hostUuid: stack.hostUuids[0]! })).primaryStorage!.uuid;
  bsUuid = (await stack.backups.addBackupStorage({ name: "bs", totalCapacityBytes: 10n * GIB })).backupStorage!.uuid;
});
afterAll(async () => {
  await stack?.stop();
});

const usedOn = async () => (await stack.backups.getBackupStorage({ uuid: bsUuid })).backupStorage!.usedBytes;
const newVolume = async (name: string) => (await stack.volumes.createVolume({ name, sizeBytes: GIB, primaryStorageUuid: psUuid, kind: VolumeKind.DATA })).volume!;

/** A full backup of a new volume, made to the end. */
async function availableBackup(name: string) {
  const v = await newVolume(name);
  const { backup, jobUuid } = await stack.backups.createBackup({ volumeUuid: v.uuid, backupStorageUuid: bsUuid, mode: BackupMode.FULL });
  const { host } = await untilTaskStarts(stack.sim, backup!.uuid);
  for (let i = 0; i < 4; i++) host.endVolumeTaskChunk(backup!.uuid);
  await stack.untilJob(jobUuid, (j) => j.state === JobState.SUCCEEDED);
  return { volume: v, backup: backup! };
}

describe("cancelling backups and restores", () => {
  it("a cancel while copying frees the agent task at the end of its chunk and leaves the backup CANCELED, its bytes given back", async () => {
    const v = await newVolume("cancel-me");
    const before = await usedOn();
    const { backup, jobUuid } = await stack.backups.createBackup({ volumeUuid: v.uuid, backupStorageUuid: bsUuid, mode: BackupMode.FULL });
    const { host } = await untilTaskStarts(stack.sim, backup!.uuid);
    host.endVolumeTaskChunk(backup!.uuid);
    await stack.untilJob(jobUuid, (j) => j.progress?.bytesDone === CHUNK, "the first chunk reported");
    expect(await usedOn()).toBe(before + GIB);

    await stack.jobs.cancelJob({ uuid: jobUuid });
    // The cancel reached the agent: the task stops at the end of the chunk in progress, not later.
    await untilTaskState(host, backup!.uuid, "cancelling");
    expect((await stack.backups.getBackup({ uuid: backup!.uuid })).backup!.state).toBe(BackupState.CREATING);
    host.endVolumeTaskChunk(backup!.uuid);
    const task = await untilTaskState(host, backup!.uuid, "cancelled");
    expect(task.bytesDone).toBe(Number(2n * CHUNK));

    const job = await stack.untilJob(jobUuid, (j) => j.state === JobState.CANCELED);
    expect(job.state).toBe(JobState.CANCELED);
    const { backup: after } = await stack.backups.getBackup({ uuid: backup!.uuid });
    expect(after).toMatchObject({ state: BackupState.CANCELED, sizeBytes: 0n });
    expect(await usedOn()).toBe(before);
    const available = await stack.backups.listBackups({ volumeUuid: v.uuid, state: BackupState.AVAILABLE });
    expect(available.backups).toHaveLength(0);
    // Nothing of it counts: an incremental one has nothing to chain from.
    await expect(stack.backups.createBackup({ volumeUuid: v.uuid, backupStorageUuid: bsUuid, mode: BackupMode.INCREMENTAL })).rejects.toMatchObject({ reason: "NO_PARENT_BACKUP" });
    expect(tasksNamed(stack.sim, backup!.uuid)).toHaveLength(1);
    // A CANCELED backup can be deleted.
    expect((await stack.backups.deleteBackup({ uuid: backup!.uuid })).backups[0]!.state).toBe(BackupState.DELETED);
  });

  it("a cancel that cannot reach the agent fails the job naming the reason (never swallowed); the backup is ERROR saying so", async () => {
    const v = await newVolume("unreachable");
    const before = await usedOn();
    const { backup, jobUuid } = await stack.backups.createBackup({ volumeUuid: v.uuid, backupStorageUuid: bsUuid, mode: BackupMode.FULL });
    const { host } = await untilTaskStarts(stack.sim, backup!.uuid);
    const fault = host.injectFault({ command: "volume/task/cancel", kind: "http500", message: "agent lost its disk" });
    try {
      await stack.jobs.cancelJob({ uuid: jobUuid });
      const job = await stack.untilJob(jobUuid, (j) => j.state === JobState.FAILED || j.state === JobState.CANCELED);
      expect(job.state).toBe(JobState.FAILED);
      expect(job.error).toMatchObject({ reason: "JOB_CANCEL_FAILED" });
      expect(job.error!.message).toContain("agent lost its disk");
      expect(job.error!.message).toContain(host.uuid);
      expect(fault.hits).toBeGreaterThan(0);
      const { backup: after } = await stack.backups.getBackup({ uuid: backup!.uuid });
      expect(after!.state).toBe(BackupState.ERROR);
      expect(after!.error).toContain("agent lost its disk");
      expect(await usedOn()).toBe(before);
    } finally {
      fault.clear();
      host.finishVolumeTask(backup!.uuid, "cancelled");
    }
  });

  it("a restore, then a cancel: the volume is left as it was, AVAILABLE, and so is the backup", async () => {
    const { backup } = await availableBackup("restore-src");
    const target = await newVolume("restore-target");
    const { backup: restoring, jobUuid } = await stack.backups.restoreBackup({ uuid: backup.uuid, targetVolumeUuid: target.uuid });
    expect(restoring!.state).toBe(BackupState.RESTORING);
    expect((await stack.volumes.getVolume({ uuid: target.uuid })).volume!.state).toBe(VolumeState.RESTORING);
    // Meanwhile the volume cannot be attached, nor the backup deleted or restored again.
    await expect(stack.volumes.attachVolume({ uuid: target.uuid, vmUuid: "0b7c1c3e-5d2a-4b8e-9f01-2a3b4c5d6e7f" })).rejects.toMatchObject({ reason: "VOLUME_STATE_CONFLICT" });
    await expect(stack.backups.deleteBackup({ uuid: backup.uuid })).rejects.toMatchObject({ reason: "BACKUP_BUSY" });
    await expect(stack.backups.restoreBackup({ uuid: backup.uuid, targetVolumeUuid: target.uuid })).rejects.toMatchObject({ reason: "BACKUP_STATE_CONFLICT" });

    const { host, task } = await untilTaskStarts(stack.sim, jobUuid);
    expect(task).toMatchObject({ kind: "restore", volumeUuid: target.uuid });
    host.endVolumeTaskChunk(jobUuid);
    await stack.untilJob(jobUuid, (j) => j.progress?.bytesDone === CHUNK, "the first chunk reported");
    await stack.jobs.cancelJob({ uuid: jobUuid });
    await untilTaskState(host, jobUuid, "cancelling");
    host.endVolumeTaskChunk(jobUuid);
    await stack.untilJob(jobUuid, (j) => j.state === JobState.CANCELED);
    const { volume } = await stack.volumes.getVolume({ uuid: target.uuid });
    expect(volume).toMatchObject({ state: VolumeState.AVAILABLE, sizeBytes: GIB });
    expect((await stack.backups.getBackup({ uuid: backup.uuid })).backup!.state).toBe(BackupState.AVAILABLE);
    // And usable again: it attaches.
    expect((await stack.volumes.attachVolume({ uuid: target.uuid, vmUuid: "0b7c1c3e-5d2a-4b8e-9f01-2a3b4c5d6e7f" })).volume!.state).toBe(VolumeState.IN_USE);
  });

  it("a restore whose cancel cannot reach the agent is left Restoring, then repaired once the agent answers: its task stopped, backup and volume AVAILABLE", async () => {
    const { backup } = await availableBackup("repair-src");
    const target = await newVolume("repair-target");
    const { jobUuid } = await stack.backups.restoreBackup({ uuid: backup.uuid, targetVolumeUuid: target.uuid });
    const { host } = await untilTaskStarts(stack.sim, jobUuid);
    const fault = host.injectFault({ command: "volume/task/cancel", kind: "http500", message: "agent busy" });
    try {
      await stack.jobs.cancelJob({ uuid: jobUuid });
      const job = await stack.untilJob(jobUuid, (j) => j.state === JobState.FAILED || j.state === JobState.CANCELED);
      expect(job.error).toMatchObject({ reason: "JOB_CANCEL_FAILED" });
      // The task may still write: the job could not say the volume is as it was.
      expect((await stack.backups.getBackup({ uuid: backup.uuid })).backup!.state).toBe(BackupState.RESTORING);
      expect((await stack.volumes.getVolume({ uuid: target.uuid })).volume!.state).toBe(VolumeState.RESTORING);
    } finally {
      fault.clear();
    }
    // The repair reaches the agent now: the task is cancelled, and exits at the end of its chunk.
    await untilTaskState(host, jobUuid, "cancelling");
    host.endVolumeTaskChunk(jobUuid);
    const deadline = Date.now() + 15_000;
    while ((await stack.backups.getBackup({ uuid: backup.uuid })).backup!.state !== BackupState.AVAILABLE) {
      if (Date.now() > deadline) throw new Error("the restore was never repaired");
      await new Promise((r) => setTimeout(r, 100));
    }
    expect((await stack.volumes.getVolume({ uuid: target.uuid })).volume).toMatchObject({ state: VolumeState.AVAILABLE, sizeBytes: GIB });
    expect(tasksNamed(stack.sim, jobUuid).map((t) => t.state)).toEqual(["cancelled"]);
  });

  it("a restore is refused into an attached or too small volume, changing nothing; one to the end leaves both AVAILABLE", async () => {
    const { backup, volume: source } = await availableBackup("restore-ok");
    const small = (await stack.volumes.createVolume({ name: "small", sizeBytes: GIB / 2n, primaryStorageUuid: psUuid, kind: VolumeKind.DATA })).volume!;
    await expect(stack.backups.restoreBackup({ uuid: backup.uuid, targetVolumeUuid: small.uuid })).rejects.toMatchObject({ reason: "VOLUME_TOO_SMALL", resources: { volumeUuid: small.uuid } });
    await stack.volumes.attachVolume({ uuid: source.uuid, vmUuid: "1c8d2d4f-6e3b-4c9f-8a12-3b4c5d6e7f80" });
    await expect(stack.backups.restoreBackup({ uuid: backup.uuid })).rejects.toMatchObject({ reason: "VOLUME_ATTACHED", resources: { vmUuid: "1c8d2d4f-6e3b-4c9f-8a12-3b4c5d6e7f80" } });
    expect((await stack.backups.getBackup({ uuid: backup.uuid })).backup!.state).toBe(BackupState.AVAILABLE);
    await stack.volumes.detachVolume({ uuid: source.uuid });

    const { jobUuid } = await stack.backups.restoreBackup({ uuid: backup.uuid, clientRequestId: "restore-ok-1" });
    // A retry is the same restore job.
    expect((await stack.at(1).backups.restoreBackup({ uuid: backup.uuid, clientRequestId: "restore-ok-1" })).jobUuid).toBe(jobUuid);
    const { host } = await untilTaskStarts(stack.sim, jobUuid);
    for (let i = 0; i < 4; i++) host.endVolumeTaskChunk(jobUuid);
    const job = await stack.untilJob(jobUuid, (j) => j.state === JobState.SUCCEEDED);
    expect(job.progress).toMatchObject({ bytesDone: GIB, bytesTotal: GIB });
    expect((await stack.volumes.getVolume({ uuid: source.uuid })).volume!.state).toBe(VolumeState.AVAILABLE);
    expect((await stack.backups.getBackup({ uuid: backup.uuid })).backup!.state).toBe(BackupState.AVAILABLE);
  });
});
