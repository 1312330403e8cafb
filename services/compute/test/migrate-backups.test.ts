import { create, toBinary } from "@bufbuild/protobuf";
import { Code, StratumError } from "@stratum/core";
import { JobState } from "@stratum/proto/stratum/longjob/v1/job_pb";
import { BackupState } from "@stratum/proto/stratum/storage/v1/backup_pb";
import { MigrateVmRequestSchema, VmState } from "@stratum/proto/stratum/compute/v1/vm_pb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GIB, lastSeq, startMigrateStack, untilVm, type MigrateStack } from "./migrate-stack";

/**
 * Seed 001: a migration that names backup jobs cancels them first, propagates a cancel that
 * fails, waits (event-driven, bounded) only for *backup* tasks on the VM's volumes, and never
 * reaches `vm/migrate` once cancelled. Real longjob, compute, storage, Postgres and NATS; the
 * hypervisors are agent-sim, whose timeline is the proof of what reached the agents and when.
 */
describe("MigrateVm with backups to cancel first", () => {
  let s: MigrateStack;
  beforeAll(async () => {
    s = await startMigrateStack();
  }, 120_000);
  afterAll(async () => {
    await s?.stop();
  });

  /** The timeline's vm/migrate arrivals for the VM since `since`. */
  const migrateArrivals = (since: number) => s.sim.timeline(since).filter((e) => e.event === "command" && e.command === "vm/migrate");

  it("cancels a backup that is copying, then migrates once its task has exited; capacity moves with the VM", async () => {
    const vm = await s.vmWithVolume(0);
    const backup = await s.backup(vm.volumeUuid);
    const before = await s.usage();
    const since = lastSeq(s);

    const { vm: answered, jobUuid } = await s.vms.migrateVm({ uuid: vm.uuid, targetHostUuid: s.hostUuids[1]!, cancelBackupJobUuids: [backup.jobUuid], clientRequestId: `m-${vm.uuid}` });
    expect(answered!.state).toBe(VmState.RUNNING); // answered at once, before the job ran
    const copy = await s.untilTimeline((e) => e.event === "migrate-copy-start" && e.vmUuid === vm.uuid, since);
    // The memory copy is running: the VM is Migrating meanwhile, and other operations are refused.
    expect((await s.vms.getVm({ uuid: vm.uuid })).vm!.state).toBe(VmState.MIGRATING);
    await expect(s.vms.stopVm({ uuid: vm.uuid })).rejects.toMatchObject({ reason: "VM_BUSY" });
    // The job's progress follows the agent's copy (vm/migrate/status) while the call runs.
    await s.untilJob(jobUuid, (j) => j.progress?.stage === "copying-memory" && j.progress.percent > 10 && j.progress.bytesTotal > 0n, "copy progress");
    s.sim.host(0).completeMigration(vm.uuid);
    const job = await s.finished(jobUuid);
    expect(job.state, job.error?.message).toBe(JobState.SUCCEEDED);

    expect((await s.finished(backup.jobUuid)).state).toBe(JobState.CANCELED);
    const exit = s.sim.timeline(since).find((e) => e.event === "volume-task-exit" && e.taskUuid === backup.taskUuid)!;
    expect(exit).toMatchObject({ state: "cancelled" });
    const [arrival] = migrateArrivals(since);
    expect(arrival!.seq).toBeGreaterThan(exit.seq);
    expect(copy.seq).toBeGreaterThan(exit.seq);
    expect(migrateArrivals(since)).toHaveLength(1);
    // Woken by the task's exit (storage's long-poll), not by a polling interval (ZStack: 1 s).
    if (process.env.MIGRATE_TEST_REPORT) console.error(`backup exit → vm/migrate: ${(arrival!.atMs - exit.atMs).toFixed(1)} ms`);
    expect(arrival!.atMs - exit.atMs).toBeLessThan(1_000);

    const after = await untilVm(s.vms, vm.uuid, (v) => v.state === VmState.RUNNING);
    expect(after.hostUuid).toBe(s.hostUuids[1]);
    expect(s.sim.host(1).inspect().vms.find((v) => v.vmUuid === vm.uuid)?.state).toBe("running");
    const usage = await s.usage();
    expect(usage.get(s.hostUuids[0]!)!.cpu).toBe(before.get(s.hostUuids[0]!)!.cpu - 1);
    expect(usage.get(s.hostUuids[1]!)!.memory).toBe(before.get(s.hostUuids[1]!)!.memory + GIB);
    // A retry of the request returns the first job and migrates nothing again.
    const again = await s.vms.migrateVm({ uuid: vm.uuid, targetHostUuid: s.hostUuids[1]!, cancelBackupJobUuids: [backup.jobUuid], clientRequestId: `m-${vm.uuid}` });
    expect(again.jobUuid).toBe(jobUuid);
    const backupRow = (await s.backups.listBackups({ volumeUuid: vm.volumeUuid })).backups[0]!;
    expect(backupRow.state).toBe(BackupState.CANCELED);
  }, 60_000);

  it("fails naming the backup job and why when its cancel cannot stop the task; the VM stays on its source", async () => {
    const vm = await s.vmWithVolume(0);
    const backup = await s.backup(vm.volumeUuid);
    const fault = s.sim.host(0).injectFault({ command: "volume/task/cancel", kind: "http500", message: "disk controller busy" });
    try {
      const before = await s.usage();
      const since = lastSeq(s);
      const { jobUuid } = await s.vms.migrateVm({ uuid: vm.uuid, cancelBackupJobUuids: [backup.jobUuid] });
      const job = await s.finished(jobUuid);
      expect(job.state).toBe(JobState.FAILED);
      expect(job.error).toMatchObject({ reason: "BACKUP_CANCEL_FAILED" });
      expect(job.error!.message).toContain(backup.jobUuid);
      expect(job.error!.message).toContain("JOB_CANCEL_FAILED");
      expect(job.error!.message).toContain("disk controller busy");
      expect(migrateArrivals(since)).toHaveLength(0);
      const after = (await s.vms.getVm({ uuid: vm.uuid })).vm!;
      expect(after).toMatchObject({ state: VmState.RUNNING, hostUuid: s.hostUuids[0] });
      expect(after.lastError).toContain(backup.jobUuid);
      expect(await s.usage()).toEqual(before);
    } finally {
      s.sim.host(0).removeFault(fault.id);
      s.sim.host(0).finishVolumeTask(backup.taskUuid, "succeeded");
    }
  }, 60_000);

  it("is not delayed by a snapshot task on the VM's volume: only backup tasks block", async () => {
    const vm = await s.vmWithVolume(0);
    const snapshot = await fetch(`${s.sim.host(0).url}/volume/task/start`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ volumeUuid: vm.volumeUuid, kind: "snapshot", durationMs: 600_000 }),
    }).then((r) => r.json() as Promise<{ task: { taskUuid: string } }>);
    const since = lastSeq(s);
    const { jobUuid } = await s.vms.migrateVm({ uuid: vm.uuid, backupWaitTimeoutMs: 600_000 });
    await s.untilTimeline((e) => e.event === "migrate-copy-start" && e.vmUuid === vm.uuid, since);
    s.sim.host(0).completeMigration(vm.uuid);
    expect((await s.finished(jobUuid)).state).toBe(JobState.SUCCEEDED);
    // No target named: the allocator chose one, never the source.
    const moved = (await s.vms.getVm({ uuid: vm.uuid })).vm!;
    expect(moved.state).toBe(VmState.RUNNING);
    expect(s.hostUuids.slice(1)).toContain(moved.hostUuid);
    // The snapshot still runs: the migration never waited for it.
    expect(s.sim.host(0).inspect().volumeTasks.find((t) => t.taskUuid === snapshot.task.taskUuid)?.state).toBe("running");
    s.sim.host(0).finishVolumeTask(snapshot.task.taskUuid, "succeeded");
  }, 60_000);

  it("cancelled while it waits for a backup task never calls vm/migrate; the VM stays on its source and the backup runs on", async () => {
    const vm = await s.vmWithVolume(0);
    const backup = await s.backup(vm.volumeUuid); // not named: the migration waits for it
    const hold = s.sim.host(0).hold("vm/migrate");
    const before = await s.usage();
    const since = lastSeq(s);
    const { jobUuid } = await s.vms.migrateVm({ uuid: vm.uuid, backupWaitTimeoutMs: 600_000 });
    await s.untilJob(jobUuid, (j) => j.progress?.stage === "waiting-for-backups", "the wait");
    await s.jobs.cancelJob({ uuid: jobUuid });
    expect((await s.finished(jobUuid)).state).toBe(JobState.CANCELED);
    // The backup ends now; nothing may reach vm/migrate after it either.
    s.sim.host(0).finishVolumeTask(backup.taskUuid, "succeeded");
    expect((await s.finished(backup.jobUuid)).state).toBe(JobState.SUCCEEDED);
    await expect(hold.next(300)).rejects.toThrow();
    expect(migrateArrivals(since)).toHaveLength(0);
    expect((await s.vms.getVm({ uuid: vm.uuid })).vm).toMatchObject({ state: VmState.RUNNING, hostUuid: s.hostUuids[0] });
    expect(await s.usage()).toEqual(before);
    hold.cancel();
  }, 60_000);

  it("fails with a named timeout listing the backup tasks still running after backup_wait_timeout_ms", async () => {
    const vm = await s.vmWithVolume(0);
    const backup = await s.backup(vm.volumeUuid);
    const since = lastSeq(s);
    const { jobUuid } = await s.vms.migrateVm({ uuid: vm.uuid, backupWaitTimeoutMs: 1_000 });
    const job = await s.finished(jobUuid);
    expect(job.error).toMatchObject({ reason: "BACKUP_WAIT_TIMEOUT" });
    expect(job.error!.message).toContain(backup.taskUuid);
    expect(migrateArrivals(since)).toHaveLength(0);
    expect((await s.vms.getVm({ uuid: vm.uuid })).vm).toMatchObject({ state: VmState.RUNNING, hostUuid: s.hostUuids[0] });
    s.sim.host(0).finishVolumeTask(backup.taskUuid, "succeeded");
  }, 60_000);

  it("cancelled during the memory copy aborts it on the agent: the VM stays on its source, the target's reservation is released", async () => {
    const vm = await s.vmWithVolume(0);
    const before = await s.usage();
    const since = lastSeq(s);
    const { jobUuid } = await s.vms.migrateVm({ uuid: vm.uuid, targetHostUuid: s.hostUuids[2]! });
    await s.untilTimeline((e) => e.event === "migrate-copy-start" && e.vmUuid === vm.uuid, since);
    expect((await s.usage()).get(s.hostUuids[2]!)!.cpu).toBe(before.get(s.hostUuids[2]!)!.cpu + 1); // reserved meanwhile
    await s.jobs.cancelJob({ uuid: jobUuid });
    expect((await s.finished(jobUuid)).state).toBe(JobState.CANCELED);
    expect(s.sim.timeline(since).find((e) => e.event === "migrate-copy-end" && e.vmUuid === vm.uuid)).toMatchObject({ outcome: "aborted" });
    expect((await s.vms.getVm({ uuid: vm.uuid })).vm).toMatchObject({ state: VmState.RUNNING, hostUuid: s.hostUuids[0] });
    expect(s.sim.host(0).inspect().vms.find((v) => v.vmUuid === vm.uuid)?.state).toBe("running");
    expect(await s.usage()).toEqual(before);
  }, 60_000);

  describe("bad requests change nothing", () => {
    const refused = async (req: Parameters<MigrateStack["vms"]["migrateVm"]>[0]): Promise<StratumError> => {
      const jobsBefore = (await s.jobs.listJobs({ type: "compute.migrate" })).jobs.length;
      const usage = await s.usage();
      const err = await s.vms.migrateVm(req).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(StratumError);
      expect((await s.jobs.listJobs({ type: "compute.migrate" })).jobs.length).toBe(jobsBefore);
      expect(await s.usage()).toEqual(usage);
      return err as StratumError;
    };

    it("a job that is not a backup, a backup of another VM's volume, an unknown job: INVALID_ARGUMENT naming each", async () => {
      const vm = await s.vmWithVolume(0);
      const other = await s.vmWithVolume(1);
      const othersBackup = await s.backup(other.volumeUuid);
      const { job: sleep } = await s.jobs.submitJob({ type: "longjob.sleep", parameters: { durationMs: 0 } });
      const unknown = "00000000-0000-4000-8000-000000000001";
      const err = await refused({ uuid: vm.uuid, cancelBackupJobUuids: [sleep!.uuid, othersBackup.jobUuid, unknown] });
      expect(err.code).toBe(Code.INVALID_ARGUMENT);
      expect(err.violations.map((v) => v.field)).toEqual(["cancel_backup_job_uuids[0]", "cancel_backup_job_uuids[1]", "cancel_backup_job_uuids[2]"]);
      expect(err.violations[0]!.description).toContain(`${sleep!.uuid} is a longjob.sleep job, not a backup`);
      expect(err.violations[1]!.description).toContain(`${othersBackup.jobUuid} is a backup of volume ${other.volumeUuid}, which is not attached to vm ${vm.uuid}`);
      expect(err.violations[2]!.description).toBe(`job ${unknown} not found`);
      expect((await s.vms.getVm({ uuid: vm.uuid })).vm!.state).toBe(VmState.RUNNING);
      s.sim.host(1).finishVolumeTask(othersBackup.taskUuid, "succeeded");
    }, 60_000);

    it("a VM that is not Running, the VM's own host, an unknown host", async () => {
      const vm = await s.vmWithVolume(0);
      expect((await refused({ uuid: vm.uuid, targetHostUuid: s.hostUuids[0]! })).violations[0]).toMatchObject({ field: "target_host_uuid" });
      expect(await refused({ uuid: vm.uuid, targetHostUuid: "00000000-0000-4000-8000-000000000002" })).toMatchObject({ code: Code.NOT_FOUND, reason: "HOST_NOT_FOUND" });
      await s.vms.stopVm({ uuid: vm.uuid });
      await untilVm(s.vms, vm.uuid, (v) => v.state === VmState.STOPPED);
      const err = await refused({ uuid: vm.uuid });
      expect(err).toMatchObject({ code: Code.FAILED_PRECONDITION, reason: "VM_STATE_INVALID" });
      expect(err.message).toContain("it is Stopped");
    }, 60_000);

    it("an unknown field is refused: in the binary request (a newer client's field) and in the job's JSON parameters (ZStack's lost backupTaskLongJobUuids)", async () => {
      const vm = await s.vmWithVolume(0);
      const req = create(MigrateVmRequestSchema, { uuid: vm.uuid });
      // Field 99 with a length-delimited payload, as a client built from a newer proto would send.
      req.$unknown = [{ no: 99, wireType: 2, data: new Uint8Array([2, 0x68, 0x69]) }];
      expect(toBinary(MigrateVmRequestSchema, req).length).toBeGreaterThan(38);
      const err = await refused(req);
      expect(err).toMatchObject({ code: Code.INVALID_ARGUMENT });
      expect(err.violations[0]!.field).toBe("#99");

      // The JSON path: a compute.migrate job submitted directly (stratumctl job submit --params-json).
      const jobsBefore = (await s.jobs.listJobs({ type: "compute.migrate" })).jobs.length;
      const submit = s.jobs.submitJob({ type: "compute.migrate", targetUuid: vm.uuid, parameters: { backupTaskLongJobUuids: ["00000000-0000-4000-8000-000000000003"] } });
      await expect(submit).rejects.toMatchObject({ code: Code.INVALID_ARGUMENT });
      const jsonErr = (await submit.catch((e: unknown) => e)) as StratumError;
      expect(jsonErr.violations.map((v) => v.field).join(",")).toContain("backupTaskLongJobUuids");
      expect((await s.jobs.listJobs({ type: "compute.migrate" })).jobs.length).toBe(jobsBefore);
      expect((await s.vms.getVm({ uuid: vm.uuid })).vm!.state).toBe(VmState.RUNNING);

      // Submitted directly, the job checks what MigrateVm would have: nothing moves.
      const { job } = await s.jobs.submitJob({ type: "compute.migrate", targetUuid: vm.uuid, parameters: { targetHostUuid: "host-1", cancelBackupJobUuids: ["nope"] } });
      const failed = await s.finished(job!.uuid);
      expect(failed.error).toMatchObject({ code: "INVALID_ARGUMENT" });
      expect(failed.error!.message).toContain("targetHostUuid");
      expect(failed.error!.message).toContain("cancelBackupJobUuids[0]");
      expect((await s.vms.getVm({ uuid: vm.uuid })).vm).toMatchObject({ state: VmState.RUNNING, hostUuid: s.hostUuids[0] });
    }, 60_000);
  });
});
