import type { ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kill9, startChildReplica } from "@stratum/runtime/testing";
import { JobState } from "@stratum/proto/stratum/longjob/v1/job_pb";
import { BackupMode, BackupState } from "@stratum/proto/stratum/storage/v1/backup_pb";
import { VolumeKind } from "@stratum/proto/stratum/storage/v1/volume_pb";
import { GIB, MIB, startStorageStack, type StorageStack } from "./stack";
import { tasksNamed, untilTaskStarts, untilTaskState } from "./sim-tasks";

const CHUNK = 256n * MIB;
const MAIN = fileURLToPath(new URL("../src/main.ts", import.meta.url));

let stack: StorageStack;
let child: ChildProcess | undefined;
beforeAll(async () => {
  stack = await startStorageStack({ storageReplicas: 1, sim: { volumeTaskDurationMs: 3_600_000, chunkBytes: Number(CHUNK) } });
  ({ child } = await startChildReplica({ main: MAIN, like: stack.storage.replicas[0]!.ctx.config, replicaId: "storage-child" }));
  await stack.storage.replicas[0]!.ctx.view.until((v) => v.members("storage").some((m) => m.replicaId === "storage-child"));
});
afterAll(async () => {
  if (child) await kill9(child);
  await stack?.stop();
});

/** A UUID the child replica owns on storage's ring: a job targeting it runs there. */
function ownedByChild(): string {
  for (;;) {
    const uuid = randomUUID();
    if (stack.storage.replicas[0]!.ctx.view.ownerOf("storage", uuid)?.replicaId === "storage-child") return uuid;
  }
}

describe("a storage replica killed mid-backup", () => {
  it("the job resumes on the volume's new owner, finds the same agent task (one only), and the backup ends AVAILABLE", async () => {
    const { primaryStorage: ps } = await stack.volumes.addPrimaryStorage({ name: "local-0", totalCapacityBytes: 100n * GIB, hostUuid: stack.hostUuids[0]! });
    const { backupStorage: bs } = await stack.backups.addBackupStorage({ name: "bs", totalCapacityBytes: 10n * GIB });
    const { volume } = await stack.volumes.createVolume({ uuid: ownedByChild(), name: "v", sizeBytes: GIB, primaryStorageUuid: ps!.uuid, kind: VolumeKind.DATA });
    const { backup, jobUuid } = await stack.backups.createBackup({ volumeUuid: volume!.uuid, backupStorageUuid: bs!.uuid, mode: BackupMode.FULL });
    const { host } = await untilTaskStarts(stack.sim, backup!.uuid);
    host.endVolumeTaskChunk(backup!.uuid);
    const running = await stack.untilJob(jobUuid, (j) => j.progress?.bytesDone === CHUNK, "the first chunk reported");
    expect(running.executor).toContain("storage-child");
    expect(running.attempt).toBe(1);

    await kill9(child!);
    child = undefined;
    // The new owner's attempt: it goes back to the host recorded on the backup and finds the task running.
    const resumed = await stack.untilJob(jobUuid, (j) => j.attempt >= 2 && j.state === JobState.RUNNING, "a second attempt");
    expect(resumed.executor).toContain("storage-0");
    for (let i = 0; i < 3; i++) host.endVolumeTaskChunk(backup!.uuid);
    const done = await stack.untilJob(jobUuid, (j) => j.state === JobState.SUCCEEDED || j.state === JobState.FAILED);
    expect(done.state).toBe(JobState.SUCCEEDED);
    expect(done.progress).toMatchObject({ bytesDone: GIB, bytesTotal: GIB });
    expect((await stack.backups.getBackup({ uuid: backup!.uuid })).backup).toMatchObject({ state: BackupState.AVAILABLE, sizeBytes: GIB });
    expect(tasksNamed(stack.sim, backup!.uuid)).toHaveLength(1);
    expect((await stack.backups.getBackupStorage({ uuid: bs!.uuid })).backupStorage!.usedBytes).toBe(GIB);
  });

  it("cancelled while its replica is dead: the resumed attempt stops the agent task its predecessor started, and the backup ends CANCELED with its bytes back", async () => {
    if (!child) {
      ({ child } = await startChildReplica({ main: MAIN, like: stack.storage.replicas[0]!.ctx.config, replicaId: "storage-child" }));
      await stack.storage.replicas[0]!.ctx.view.until((v) => v.members("storage").some((m) => m.replicaId === "storage-child"));
    }
    const { primaryStorage: ps } = await stack.volumes.addPrimaryStorage({ name: "local-1", totalCapacityBytes: 100n * GIB, hostUuid: stack.hostUuids[0]! });
    const { backupStorage: bs } = await stack.backups.addBackupStorage({ name: "bs-1", totalCapacityBytes: 10n * GIB });
    const { volume } = await stack.volumes.createVolume({ uuid: ownedByChild(), name: "v1", sizeBytes: GIB, primaryStorageUuid: ps!.uuid, kind: VolumeKind.DATA });
    const { backup, jobUuid } = await stack.backups.createBackup({ volumeUuid: volume!.uuid, backupStorageUuid: bs!.uuid, mode: BackupMode.FULL });
    const { host } = await untilTaskStarts(stack.sim, backup!.uuid);
    host.endVolumeTaskChunk(backup!.uuid);
    await stack.untilJob(jobUuid, (j) => j.progress?.bytesDone === CHUNK, "the first chunk reported");

    // Paused, the child cannot hear the cancel: it is recorded against the attempt that dies with it.
    process.kill(child!.pid!, "SIGSTOP");
    const cancel = stack.jobs.cancelJob({ uuid: jobUuid });
    const canceling = await stack.untilJob(jobUuid, (j) => j.state === JobState.CANCELING, "Canceling");
    expect(canceling.attempt).toBe(1);
    await kill9(child!);
    child = undefined;
    await cancel;
    // The resumed attempt starts Canceling: it must reach the task its predecessor started.
    await untilTaskState(host, backup!.uuid, "cancelling");
    host.endVolumeTaskChunk(backup!.uuid); // the chunk in progress ends: the cancel takes effect
    const end = await stack.untilJob(jobUuid, (j) => j.state === JobState.CANCELED || j.state === JobState.FAILED || j.state === JobState.SUCCEEDED);
    expect(end.state).toBe(JobState.CANCELED);
    expect(end.attempt).toBeGreaterThanOrEqual(2);
    expect((await stack.backups.getBackup({ uuid: backup!.uuid })).backup!.state).toBe(BackupState.CANCELED);
    // Stopped on the agent, not left copying for a backup nobody counts.
    expect(tasksNamed(stack.sim, backup!.uuid).map((t) => t.state)).toEqual(["cancelled"]);
    expect((await stack.backups.getBackupStorage({ uuid: bs!.uuid })).backupStorage!.usedBytes).toBe(0n);
  });

  it("cancelled while its replica is dead, its task having finished meanwhile: the work won — the backup ends AVAILABLE, the job Succeeded", async () => {
    if (!child) {
      ({ child } = await startChildReplica({ main: MAIN, like: stack.storage.replicas[0]!.ctx.config, replicaId: "storage-child" }));
      await stack.storage.replicas[0]!.ctx.view.until((v) => v.members("storage").some((m) => m.replicaId === "storage-child"));
    }
    const { primaryStorage: ps } = await stack.volumes.addPrimaryStorage({ name: "local-2", totalCapacityBytes: 100n * GIB, hostUuid: stack.hostUuids[0]! });
    const { backupStorage: bs } = await stack.backups.addBackupStorage({ name: "bs-2", totalCapacityBytes: 10n * GIB });
    const { volume } = await stack.volumes.createVolume({ uuid: ownedByChild(), name: "v2", sizeBytes: GIB, primaryStorageUuid: ps!.uuid, kind: VolumeKind.DATA });
    const { backup, jobUuid } = await stack.backups.createBackup({ volumeUuid: volume!.uuid, backupStorageUuid: bs!.uuid, mode: BackupMode.FULL });
    const { host } = await untilTaskStarts(stack.sim, backup!.uuid);
    host.endVolumeTaskChunk(backup!.uuid);
    await stack.untilJob(jobUuid, (j) => j.progress?.bytesDone === CHUNK, "the first chunk reported");

    process.kill(child!.pid!, "SIGSTOP");
    const cancel = stack.jobs.cancelJob({ uuid: jobUuid });
    await stack.untilJob(jobUuid, (j) => j.state === JobState.CANCELING, "Canceling");
    for (let i = 0; i < 3; i++) host.endVolumeTaskChunk(backup!.uuid); // the copy completes on the agent
    expect(tasksNamed(stack.sim, backup!.uuid).map((t) => t.state)).toEqual(["succeeded"]);
    await kill9(child!);
    child = undefined;
    await cancel;
    const end = await stack.untilJob(jobUuid, (j) => j.state === JobState.CANCELED || j.state === JobState.FAILED || j.state === JobState.SUCCEEDED);
    expect(end.state).toBe(JobState.SUCCEEDED);
    expect((await stack.backups.getBackup({ uuid: backup!.uuid })).backup).toMatchObject({ state: BackupState.AVAILABLE, sizeBytes: GIB });
    expect((await stack.backups.getBackupStorage({ uuid: bs!.uuid })).backupStorage!.usedBytes).toBe(GIB);
  });
});
