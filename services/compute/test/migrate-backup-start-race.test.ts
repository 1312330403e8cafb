import type { TimelineEntry } from "@stratum/agent-sim";
import { JobState } from "@stratum/proto/stratum/longjob/v1/job_pb";
import { BackupMode, BackupState } from "@stratum/proto/stratum/storage/v1/backup_pb";
import { VmState } from "@stratum/proto/stratum/compute/v1/vm_pb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { lastSeq, startMigrateStack, untilVm, type MigrateStack, type TestVm } from "./migrate-stack";
import { copyNeverOverlapsBackup } from "./property/invariants";

/**
 * Migrate property seed 338785235, path 173: a backup's `volume/task/start` left storage for the
 * host compute named for the VM (its source), reached that agent only after the VM's memory copy
 * had ended there (a reset and its retry in the schedule; a hold here), and the agent started it
 * on a host the VM had left. The next migration, from the VM's new host, waited for backup tasks
 * there, found none, and copied while the backup ran. The agent now runs a task that names its VM
 * only where the VM is, and storage follows the VM to its new host.
 */
describe("a backup whose task start reaches the agent after the VM left that host", () => {
  let s: MigrateStack;
  beforeAll(async () => {
    s = await startMigrateStack();
  }, 120_000);
  afterAll(async () => {
    await s?.stop();
  });

  const isStartOf = (taskUuid: string) => (e: TimelineEntry) => e.event === "volume-task-start" && e.taskUuid === taskUuid;

  /** A backup of the VM's volume whose task start is held on host 0 (the VM's), then the VM migrated 0 → 1. */
  async function heldBackupThenMigrated(vm: TestVm, since: number) {
    const hold = s.sim.host(0).hold("volume/task/start");
    const { backup, jobUuid } = await s.backups.createBackup({ volumeUuid: vm.volumeUuid, backupStorageUuid: s.backupStorageUuid, mode: BackupMode.FULL });
    const held = await hold.next(10_000);
    // No backup task runs yet (its start is held): the migration's wait lets the copy go.
    const first = await s.vms.migrateVm({ uuid: vm.uuid, targetHostUuid: s.hostUuids[1]! });
    await s.untilTimeline((e) => e.event === "migrate-copy-start" && e.vmUuid === vm.uuid && e.hostUuid === s.hostUuids[0], since);
    s.sim.host(0).completeMigration(vm.uuid);
    expect((await s.finished(first.jobUuid)).state).toBe(JobState.SUCCEEDED);
    await untilVm(s.vms, vm.uuid, (v) => v.state === VmState.RUNNING && v.hostUuid === s.hostUuids[1]);
    return { backupUuid: backup!.uuid, jobUuid, held };
  }

  it("released while the next migration copies from the VM's new host: no backup task runs during the copy", async () => {
    const vm = await s.vmWithVolume(0);
    const since = lastSeq(s);
    const b = await heldBackupThenMigrated(vm, since);
    const second = await s.vms.migrateVm({ uuid: vm.uuid, targetHostUuid: s.hostUuids[2]! });
    await s.untilTimeline((e) => e.event === "migrate-copy-start" && e.vmUuid === vm.uuid && e.hostUuid === s.hostUuids[1], since);
    b.held.release();
    // The backup either started somewhere (the bug) or ended without a task.
    await Promise.race([s.finished(b.jobUuid), s.untilTimeline(isStartOf(b.backupUuid), since, 30_000)]);
    s.sim.host(1).completeMigration(vm.uuid);
    expect((await s.finished(second.jobUuid)).state).toBe(JobState.SUCCEEDED);
    expect(copyNeverOverlapsBackup(s.sim.timeline(since), [{ uuid: vm.uuid, volumeUuids: [vm.volumeUuid] }])).toEqual([]);
    expect(s.sim.timeline(since).filter(isStartOf(b.backupUuid))).toEqual([]);
    // Refused on the host the VM left, then on its new host while its memory is copied there.
    const job = await s.finished(b.jobUuid);
    expect(job.state).toBe(JobState.FAILED);
    expect(job.error!.message).toContain(`migrating from host ${s.hostUuids[1]}`);
    expect((await s.backups.getBackup({ uuid: b.backupUuid })).backup!.state).toBe(BackupState.ERROR);
  }, 90_000);

  it("released after the VM moved: the task runs where the VM is now, and the next migration waits for it", async () => {
    const vm = await s.vmWithVolume(0);
    const since = lastSeq(s);
    const b = await heldBackupThenMigrated(vm, since);
    b.held.release();
    const start = await s.untilTimeline(isStartOf(b.backupUuid), since);
    expect(start.hostUuid).toBe(s.hostUuids[1]);
    const second = await s.vms.migrateVm({ uuid: vm.uuid, targetHostUuid: s.hostUuids[2]!, backupWaitTimeoutMs: 60_000 });
    await s.untilJob(second.jobUuid, (j) => j.progress?.stage === "waiting-for-backups", "the wait");
    s.sim.host(1).finishVolumeTask(b.backupUuid, "succeeded");
    const backupJob = await s.finished(b.jobUuid);
    expect(backupJob.state).toBe(JobState.SUCCEEDED);
    expect(backupJob.result).toMatchObject({ hostUuid: s.hostUuids[1] });
    await s.untilTimeline((e) => e.event === "migrate-copy-start" && e.vmUuid === vm.uuid && e.hostUuid === s.hostUuids[1], since);
    s.sim.host(1).completeMigration(vm.uuid);
    expect((await s.finished(second.jobUuid)).state).toBe(JobState.SUCCEEDED);
    expect(copyNeverOverlapsBackup(s.sim.timeline(since), [{ uuid: vm.uuid, volumeUuids: [vm.volumeUuid] }])).toEqual([]);
    expect(s.sim.timeline(since).filter(isStartOf(b.backupUuid)).map((e) => e.hostUuid)).toEqual([s.hostUuids[1]]);
  }, 90_000);
});
