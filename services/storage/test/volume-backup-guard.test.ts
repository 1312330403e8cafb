import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code } from "@stratum/core";
import { VmService, VmState } from "@stratum/proto/stratum/compute/v1/vm_pb";
import { JobState } from "@stratum/proto/stratum/longjob/v1/job_pb";
import { BackupMode, BackupState } from "@stratum/proto/stratum/storage/v1/backup_pb";
import { VolumeKind, VolumeState } from "@stratum/proto/stratum/storage/v1/volume_pb";
import { closeClient, createClient, type Client } from "@stratum/rpc";
import { GIB, MIB, startStorageStack, type StorageStack } from "./stack";
import { untilTaskStarts, untilTaskState } from "./sim-tasks";

const CHUNK = 256n * MIB;

let stack: StorageStack;
let vms: Client<typeof VmService>;
let psUuid: string;
let bsUuid: string;
beforeAll(async () => {
  stack = await startStorageStack({ sim: { volumeTaskDurationMs: 3_600_000, chunkBytes: Number(CHUNK) } });
  vms = createClient(VmService, stack.compute.replicas[0]!.address);
  psUuid = (await stack.volumes.addPrimaryStorage({ name: "local-0", totalCapacityBytes: 100n * GIB, hostUuid: stack.hostUuids[0]! })).primaryStorage!.uuid;
  bsUuid = (await stack.backups.addBackupStorage({ name: "bs", totalCapacityBytes: 100n * GIB })).backupStorage!.uuid;
});
afterAll(async () => {
  if (vms) closeClient(vms);
  await stack?.stop();
});

const used = async () => (await stack.volumes.getPrimaryStorage({ uuid: psUuid })).primaryStorage!.usedBytes;
const newVolume = async (name: string) => (await stack.volumes.createVolume({ name, sizeBytes: GIB, primaryStorageUuid: psUuid, kind: VolumeKind.DATA })).volume!;

/** A backup of the volume, Creating, its agent task started (and held: the sim's tasks last an hour). */
async function creatingBackup(volumeUuid: string) {
  const { backup, jobUuid } = await stack.backups.createBackup({ volumeUuid, backupStorageUuid: bsUuid, mode: BackupMode.FULL });
  const { host } = await untilTaskStarts(stack.sim, backup!.uuid);
  return { backup: backup!, jobUuid, finish: async () => {
    for (let i = 0; i < 4; i++) host.endVolumeTaskChunk(backup!.uuid);
    await stack.untilJob(jobUuid, (j) => j.state === JobState.SUCCEEDED);
  } };
}

describe("a volume under a running backup is not deleted", () => {
  it("DeleteVolume while a backup of it is CREATING: FAILED_PRECONDITION naming the backup and its job, nothing changed; deleted once it ends", async () => {
    const v = await newVolume("backed-up");
    const before = await used();
    const { backup, jobUuid, finish } = await creatingBackup(v.uuid);
    const refusal = stack.at(1).volumes.deleteVolume({ uuid: v.uuid });
    await expect(refusal).rejects.toMatchObject({ code: Code.FAILED_PRECONDITION, reason: "VOLUME_BACKUP_RUNNING", resources: { volumeUuid: v.uuid, backupUuid: backup.uuid, jobUuid } });
    await expect(refusal).rejects.toThrow(`backup ${backup.uuid} is being created from it by job ${jobUuid}`);
    expect((await stack.volumes.getVolume({ uuid: v.uuid })).volume).toMatchObject({ state: VolumeState.AVAILABLE, revision: v.revision });
    expect(await used()).toBe(before);

    await finish();
    expect((await stack.volumes.deleteVolume({ uuid: v.uuid })).volume!.state).toBe(VolumeState.DELETED);
    expect(await used()).toBe(before - GIB);
  });

  it("DeleteVolume while a backup is restored into it: refused naming the backup and the restore's job", async () => {
    const src = await newVolume("restore-src");
    const { backup, finish } = await creatingBackup(src.uuid);
    await finish();
    const target = await newVolume("restore-target");
    const { jobUuid } = await stack.backups.restoreBackup({ uuid: backup.uuid, targetVolumeUuid: target.uuid });
    await expect(stack.volumes.deleteVolume({ uuid: target.uuid })).rejects.toMatchObject({
      code: Code.FAILED_PRECONDITION,
      reason: "VOLUME_BACKUP_RUNNING",
      resources: { volumeUuid: target.uuid, backupUuid: backup.uuid, jobUuid },
    });
    expect((await stack.volumes.getVolume({ uuid: target.uuid })).volume!.state).toBe(VolumeState.RESTORING);
    // Cancel the restore once its task runs; the task stops at the end of the chunk in progress.
    const { host } = await untilTaskStarts(stack.sim, jobUuid);
    await stack.jobs.cancelJob({ uuid: jobUuid });
    await untilTaskState(host, jobUuid, "cancelling");
    host.endVolumeTaskChunk(jobUuid);
    await stack.untilJob(jobUuid, (j) => j.state === JobState.CANCELED);
    expect((await stack.volumes.deleteVolume({ uuid: target.uuid })).volume!.state).toBe(VolumeState.DELETED);
  });

  it("ReleaseVmVolumes while a backup of the VM's root volume is CREATING: refused naming it, nothing released; released once it ends", async () => {
    const { vm } = await vms.createVm({ name: "backed-up-vm", cpu: 1, memoryBytes: GIB, hostUuid: stack.hostUuids[0]!, rootVolumeSizeBytes: GIB });
    const root = vm!.rootVolumeUuid;
    expect(root).not.toBe("");
    const data = await newVolume("vm-data");
    await stack.volumes.attachVolume({ uuid: data.uuid, vmUuid: vm!.uuid });
    const before = await used();
    const { backup, jobUuid, finish } = await creatingBackup(root);
    await expect(stack.volumes.releaseVmVolumes({ vmUuids: [vm!.uuid] })).rejects.toMatchObject({
      code: Code.FAILED_PRECONDITION,
      reason: "VOLUME_BACKUP_RUNNING",
      resources: { volumeUuid: root, backupUuid: backup.uuid, jobUuid },
    });
    expect((await stack.volumes.getVolume({ uuid: root })).volume!.state).toBe(VolumeState.IN_USE);
    expect((await stack.volumes.getVolume({ uuid: data.uuid })).volume!.state).toBe(VolumeState.IN_USE);
    expect(await used()).toBe(before);

    await finish();
    expect((await stack.backups.getBackup({ uuid: backup.uuid })).backup!.state).toBe(BackupState.AVAILABLE);
    const { volumes } = await stack.volumes.releaseVmVolumes({ vmUuids: [vm!.uuid] });
    expect(Object.fromEntries(volumes.map((v) => [v.uuid, v.state]))).toEqual({ [root]: VolumeState.DELETED, [data.uuid]: VolumeState.AVAILABLE });
    expect(await used()).toBe(before - GIB);
    expect((await vms.getVm({ uuid: vm!.uuid })).vm!.state).not.toBe(VmState.DESTROYED);
  });
});
