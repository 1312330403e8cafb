import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code } from "@stratum/core";
import { JobState } from "@stratum/proto/stratum/longjob/v1/job_pb";
import { BackupMode, BackupState } from "@stratum/proto/stratum/storage/v1/backup_pb";
import { VolumeKind } from "@stratum/proto/stratum/storage/v1/volume_pb";
import { GIB, MIB, startStorageStack, type StorageStack } from "./stack";
import { tasksNamed, untilTaskStarts } from "./sim-tasks";

const CHUNK = 256n * MIB;

let stack: StorageStack;
let psUuid: string;
let bsUuid: string;
beforeAll(async () => {
  // Tasks never end by their own timers: the test ends each chunk.
  stack = await startStorageStack({ sim: { volumeTaskDurationMs: 3_600_000, chunkBytes: Number(CHUNK) } });
  psUuid = (await stack.volumes.addPrimaryStorage({ name: "local-0", totalCapacityBytes: 100n * GIB, hostUuid: stack.hostUuids[0]! })).primaryStorage!.uuid;
  bsUuid = (await stack.backups.addBackupStorage({ name: "bs", totalCapacityBytes: 10n * GIB })).backupStorage!.uuid;
});
afterAll(async () => {
  await stack?.stop();
});

const usedOn = async (uuid: string) => (await stack.backups.getBackupStorage({ uuid })).backupStorage!.usedBytes;
const newVolume = async (name: string, sizeBytes = GIB) =>
  (await stack.volumes.createVolume({ name, sizeBytes, primaryStorageUuid: psUuid, kind: VolumeKind.DATA })).volume!;

/** Ends every chunk of the task, one at a time, each once the job has reported the one before. */
async function runToEnd(taskUuid: string, jobUuid: string, chunks: number) {
  const { host } = await untilTaskStarts(stack.sim, taskUuid);
  for (let i = 1; i <= chunks; i++) {
    host.endVolumeTaskChunk(taskUuid);
    const want = i < chunks ? BigInt(i) * CHUNK : undefined;
    if (want !== undefined) await stack.untilJob(jobUuid, (j) => (j.progress?.bytesDone ?? 0n) >= want, `${want} bytes done`);
  }
  return host;
}

describe("backups", () => {
  it("a full backup, then an incremental one chained to it, with progress in bytes that never goes backwards and reaches the total", async () => {
    const v = await newVolume("data");
    const before = await usedOn(bsUuid);
    const { backup: full, jobUuid } = await stack.backups.createBackup({ volumeUuid: v.uuid, backupStorageUuid: bsUuid, mode: BackupMode.FULL, name: "full-1" });
    expect(full).toMatchObject({ state: BackupState.CREATING, mode: BackupMode.FULL, parentBackupUuid: "", jobUuid });
    // The volume's size is reserved at once.
    expect(await usedOn(bsUuid)).toBe(before + GIB);

    const watched = stack.watchJob(jobUuid);
    const host = await runToEnd(full!.uuid, jobUuid, 4);
    const seen = await watched;
    const last = seen[seen.length - 1]!;
    expect(last.state).toBe(JobState.SUCCEEDED);
    expect(host.uuid).toBe(stack.hostUuids[0]); // the volume's local storage is on host 0
    const bytes = seen.map((j) => j.progress?.bytesDone ?? 0n);
    for (let i = 1; i < bytes.length; i++) expect(bytes[i]!).toBeGreaterThanOrEqual(bytes[i - 1]!);
    expect(bytes).toContain(CHUNK); // a report per chunk, not only the end
    expect(last.progress).toMatchObject({ bytesDone: GIB, bytesTotal: GIB, percent: 100 });
    expect(seen.some((j) => j.progress?.stage === "copying")).toBe(true);

    const { backup: done } = await stack.at(1).backups.getBackup({ uuid: full!.uuid });
    expect(done).toMatchObject({ state: BackupState.AVAILABLE, sizeBytes: GIB });
    expect(await usedOn(bsUuid)).toBe(before + GIB);
    expect(tasksNamed(stack.sim, full!.uuid)).toHaveLength(1);

    // Incremental: chained to the last available backup, moving the changed blocks only (1/8).
    const { backup: inc, jobUuid: incJob } = await stack.at(1).backups.createBackup({ volumeUuid: v.uuid, backupStorageUuid: bsUuid, mode: BackupMode.INCREMENTAL });
    expect(inc).toMatchObject({ state: BackupState.CREATING, mode: BackupMode.INCREMENTAL, parentBackupUuid: full!.uuid });
    const { task } = await untilTaskStarts(stack.sim, inc!.uuid);
    expect(task.args).toMatchObject({ incremental: true, parentBackupUuid: full!.uuid, backupStorageUuid: bsUuid });
    const incSeen = stack.watchJob(incJob);
    await runToEnd(inc!.uuid, incJob, 1);
    expect((await incSeen).at(-1)!.progress).toMatchObject({ bytesDone: GIB / 8n, bytesTotal: GIB / 8n });
    expect((await stack.backups.getBackup({ uuid: inc!.uuid })).backup).toMatchObject({ state: BackupState.AVAILABLE, sizeBytes: GIB / 8n });
    // Settled to its real size: a full volume's worth reserved, an eighth kept.
    expect(await usedOn(bsUuid)).toBe(before + GIB + GIB / 8n);

    const listed = await stack.backups.listBackups({ volumeUuid: v.uuid, state: BackupState.AVAILABLE, pageSize: 1 });
    expect(listed.backups.map((b) => b.uuid)).toEqual([full!.uuid]);
    const next = await stack.backups.listBackups({ volumeUuid: v.uuid, state: BackupState.AVAILABLE, pageSize: 1, pageToken: listed.nextPageToken });
    expect(next.backups.map((b) => b.uuid)).toEqual([inc!.uuid]);
    await expect(stack.backups.listBackups({ volumeUuid: v.uuid, state: BackupState.CREATING, pageToken: listed.nextPageToken })).rejects.toMatchObject({ code: Code.INVALID_ARGUMENT, violations: [{ field: "page_token" }] });
  });

  it("a retried create with the same request id is the same backup and the same job, submitted once", async () => {
    const v = await newVolume("retry");
    const req = { volumeUuid: v.uuid, backupStorageUuid: bsUuid, mode: BackupMode.FULL, clientRequestId: "backup-retry-1" };
    const first = await stack.backups.createBackup(req);
    const again = await stack.at(1).backups.createBackup(req);
    expect(again.backup!.uuid).toBe(first.backup!.uuid);
    expect(again.jobUuid).toBe(first.jobUuid);
    const { jobs } = await stack.jobs.listJobs({ targetUuid: v.uuid });
    expect(jobs.map((j) => j.uuid)).toEqual([first.jobUuid]);
    await runToEnd(first.backup!.uuid, first.jobUuid, 4);
    await stack.untilJob(first.jobUuid, (j) => j.state === JobState.SUCCEEDED);
  });

  it("bad input — unknown volume, unknown storage, incremental without a parent, a full storage — is refused naming what is wrong, and changes nothing", async () => {
    const v = await newVolume("bad");
    const before = await usedOn(bsUuid);
    const count = async () => (await stack.backups.listBackups({ pageSize: 1000 })).backups.length;
    const n = await count();
    const unknown = "5b1c0f6e-2f7a-4c1b-9d3e-8a7b6c5d4e3f";
    await expect(stack.backups.createBackup({ volumeUuid: unknown, backupStorageUuid: bsUuid, mode: BackupMode.FULL })).rejects.toMatchObject({ code: Code.NOT_FOUND, reason: "VOLUME_NOT_FOUND", resources: { volumeUuid: unknown } });
    await expect(stack.backups.createBackup({ volumeUuid: v.uuid, backupStorageUuid: unknown, mode: BackupMode.FULL })).rejects.toMatchObject({ code: Code.NOT_FOUND, reason: "BACKUP_STORAGE_NOT_FOUND", resources: { backupStorageUuid: unknown } });
    const noParent = await stack.backups.createBackup({ volumeUuid: v.uuid, backupStorageUuid: bsUuid, mode: BackupMode.INCREMENTAL }).catch((e) => e);
    expect(noParent).toMatchObject({ code: Code.FAILED_PRECONDITION, reason: "NO_PARENT_BACKUP", resources: { volumeUuid: v.uuid } });
    expect(noParent.message).toContain(bsUuid);
    const bad = await stack.backups.createBackup({ volumeUuid: "nope", backupStorageUuid: bsUuid, mode: BackupMode.UNSPECIFIED }).catch((e) => e);
    expect(bad).toMatchObject({ code: Code.INVALID_ARGUMENT });
    expect(bad.violations.map((x: { field: string }) => x.field).sort()).toEqual(["mode", "volume_uuid"]);
    const { backupStorage: tiny } = await stack.backups.addBackupStorage({ name: "tiny", totalCapacityBytes: GIB });
    const big = await newVolume("big", 2n * GIB);
    await expect(stack.backups.createBackup({ volumeUuid: big.uuid, backupStorageUuid: tiny!.uuid, mode: BackupMode.FULL })).rejects.toMatchObject({ code: Code.RESOURCE_EXHAUSTED, reason: "BACKUP_STORAGE_FULL" });
    expect(await usedOn(tiny!.uuid)).toBe(0n);
    expect(await usedOn(bsUuid)).toBe(before);
    expect(await count()).toBe(n);
    expect((await stack.jobs.listJobs({ targetUuid: v.uuid })).jobs).toHaveLength(0);
  });

  it("delete is refused while incremental backups depend on it (naming them) and while its job runs; cascade deletes the chain and gives its bytes back", async () => {
    const v = await newVolume("chain");
    const before = await usedOn(bsUuid);
    const { backup: full, jobUuid } = await stack.backups.createBackup({ volumeUuid: v.uuid, backupStorageUuid: bsUuid, mode: BackupMode.FULL });
    // Refused while CREATING: its job works on it.
    await expect(stack.backups.deleteBackup({ uuid: full!.uuid })).rejects.toMatchObject({ code: Code.FAILED_PRECONDITION, reason: "BACKUP_BUSY" });
    await runToEnd(full!.uuid, jobUuid, 4);
    await stack.untilJob(jobUuid, (j) => j.state === JobState.SUCCEEDED);
    const { backup: inc, jobUuid: incJob } = await stack.backups.createBackup({ volumeUuid: v.uuid, backupStorageUuid: bsUuid, mode: BackupMode.INCREMENTAL });
    await runToEnd(inc!.uuid, incJob, 1);
    await stack.untilJob(incJob, (j) => j.state === JobState.SUCCEEDED);
    const { backup: inc2, jobUuid: inc2Job } = await stack.backups.createBackup({ volumeUuid: v.uuid, backupStorageUuid: bsUuid, mode: BackupMode.INCREMENTAL });
    expect(inc2!.parentBackupUuid).toBe(inc!.uuid);
    await runToEnd(inc2!.uuid, inc2Job, 1);
    await stack.untilJob(inc2Job, (j) => j.state === JobState.SUCCEEDED);
    expect(await usedOn(bsUuid)).toBe(before + GIB + GIB / 4n);

    const refused = await stack.backups.deleteBackup({ uuid: full!.uuid }).catch((e) => e);
    expect(refused).toMatchObject({ code: Code.FAILED_PRECONDITION, reason: "BACKUP_HAS_DEPENDENTS" });
    expect(refused.message).toContain(inc!.uuid);
    expect(refused.message).toContain(inc2!.uuid);
    expect((await stack.backups.getBackup({ uuid: full!.uuid })).backup!.state).toBe(BackupState.AVAILABLE);
    expect(await usedOn(bsUuid)).toBe(before + GIB + GIB / 4n);

    const { backups: deleted } = await stack.at(1).backups.deleteBackup({ uuid: full!.uuid, cascade: true });
    expect(deleted.map((b) => [b.uuid, b.state])).toEqual([
      [full!.uuid, BackupState.DELETED],
      [inc!.uuid, BackupState.DELETED],
      [inc2!.uuid, BackupState.DELETED],
    ]);
    expect(await usedOn(bsUuid)).toBe(before);
    // A retried delete answers what it deleted and gives nothing back twice.
    expect((await stack.backups.deleteBackup({ uuid: full!.uuid, cascade: true })).backups[0]!.state).toBe(BackupState.DELETED);
    expect(await usedOn(bsUuid)).toBe(before);
    // Nothing left to chain from.
    await expect(stack.backups.createBackup({ volumeUuid: v.uuid, backupStorageUuid: bsUuid, mode: BackupMode.INCREMENTAL })).rejects.toMatchObject({ reason: "NO_PARENT_BACKUP" });
  });
});
