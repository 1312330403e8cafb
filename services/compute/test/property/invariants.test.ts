import type { TimelineEntry, TimelineEvent } from "@stratum/agent-sim";
import { describe, expect, it } from "vitest";
import {
  backupsAgreeWithJobs, cancelFirstSucceeds, capacityMatchesPlacement, copyNeverOverlapsBackup, migrateTaskId, oneCopyPerJob, outcomeMatchesCopy, vmOnExactlyOneHost, type CancelFirstCase,
} from "./invariants";

/** A hand-made timeline: entries in the order given, seq from 1. */
function timeline(...events: Array<[host: string, e: TimelineEvent]>): TimelineEntry[] {
  return events.map(([hostUuid, e], i) => ({ seq: i + 1, atMs: i, hostUuid, ...e }) as TimelineEntry);
}
const copyStart = (vmUuid: string, volumeUuids: string[] = []): TimelineEvent => ({ event: "migrate-copy-start", vmUuid, volumeUuids });
const copyEnd = (vmUuid: string, outcome: "succeeded" | "aborted" | "failed" = "succeeded"): TimelineEvent => ({ event: "migrate-copy-end", vmUuid, outcome });
const taskStart = (taskUuid: string, volumeUuid: string, kind = "backup"): TimelineEvent => ({ event: "volume-task-start", taskUuid, volumeUuid, kind });
const taskExit = (taskUuid: string, volumeUuid: string, kind = "backup"): TimelineEvent => ({ event: "volume-task-exit", taskUuid, volumeUuid, kind, state: "succeeded" });
const migrate = (jobUuid: string): TimelineEvent => ({ event: "command", command: "vm/migrate", taskId: migrateTaskId(jobUuid) });

const vm = { uuid: "vm-1", volumeUuids: ["vol-1", "vol-2"] };

describe("1. a memory copy never overlaps a backup task on the VM's volumes", () => {
  it("holds when the backup exited before the copy started", () => {
    expect(copyNeverOverlapsBackup(timeline(["h1", taskStart("t1", "vol-1")], ["h1", taskExit("t1", "vol-1")], ["h1", copyStart("vm-1")], ["h1", copyEnd("vm-1")]), [vm])).toEqual([]);
  });

  it("catches a backup that starts during the copy, on another host too", () => {
    const found = copyNeverOverlapsBackup(timeline(["h1", copyStart("vm-1")], ["h2", taskStart("t1", "vol-2")], ["h1", copyEnd("vm-1")], ["h2", taskExit("t1", "vol-2")]), [vm]);
    expect(found).toEqual([expect.stringContaining("overlaps backup task t1 on volume vol-2")]);
  });

  it("catches a backup still running (never exited) when the copy starts", () => {
    expect(copyNeverOverlapsBackup(timeline(["h1", taskStart("t1", "vol-1")], ["h1", copyStart("vm-1")], ["h1", copyEnd("vm-1")]), [vm])).toHaveLength(1);
  });

  it("ignores other kinds of task and other VMs' volumes", () => {
    expect(copyNeverOverlapsBackup(timeline(["h1", taskStart("s1", "vol-1", "snapshot")], ["h1", taskStart("t9", "vol-9")], ["h1", copyStart("vm-1")], ["h1", copyEnd("vm-1")]), [vm])).toEqual([]);
  });
});

describe("2. every VM on exactly one host, as compute says", () => {
  it("holds for a VM on one host that compute names, Running", () => {
    expect(vmOnExactlyOneHost([{ uuid: "vm-1", computeState: "Running", computeHostUuid: "h1", simHostsOf: ["h1"] }])).toEqual([]);
  });

  it("catches a VM on two hosts, on none, on another host than compute says, and left Migrating", () => {
    expect(vmOnExactlyOneHost([{ uuid: "a", computeState: "Running", computeHostUuid: "h1", simHostsOf: ["h1", "h2"] }])).toHaveLength(1);
    expect(vmOnExactlyOneHost([{ uuid: "b", computeState: "Running", computeHostUuid: "h1", simHostsOf: [] }])).toHaveLength(1);
    expect(vmOnExactlyOneHost([{ uuid: "c", computeState: "Running", computeHostUuid: "h1", simHostsOf: ["h2"] }])).toEqual([expect.stringContaining("compute places it on host h1, the sim runs it on h2")]);
    expect(vmOnExactlyOneHost([{ uuid: "d", computeState: "Migrating", computeHostUuid: "h1", simHostsOf: ["h1"] }])).toEqual([expect.stringContaining("Migrating")]);
  });
});

describe("3. host capacity is the sum of the VMs placed there", () => {
  const vms = [{ uuid: "a", hostUuid: "h1", cpu: 1, memoryBytes: 10n }, { uuid: "b", hostUuid: "h1", cpu: 2, memoryBytes: 20n }, { uuid: "c", hostUuid: "", cpu: 4, memoryBytes: 40n }];

  it("holds when every host accounts its VMs only", () => {
    expect(capacityMatchesPlacement([{ uuid: "h1", cpuUsed: 3, memoryUsedBytes: 30n }, { uuid: "h2", cpuUsed: 0, memoryUsedBytes: 0n }], vms)).toEqual([]);
  });

  it("catches a reservation left on a migration's target", () => {
    expect(capacityMatchesPlacement([{ uuid: "h1", cpuUsed: 3, memoryUsedBytes: 30n }, { uuid: "h2", cpuUsed: 1, memoryUsedBytes: 10n }], vms)).toEqual([expect.stringContaining("host h2 accounts 1 CPU")]);
  });

  it("catches a host that lost a VM's share", () => {
    expect(capacityMatchesPlacement([{ uuid: "h1", cpuUsed: 2, memoryUsedBytes: 20n }], vms)).toHaveLength(1);
  });
});

describe("4. one memory copy per job; vm/migrate once unless it failed over", () => {
  const m = { jobUuid: "j1", vmUuid: "vm-1", failedOver: false };

  it("holds for one arrival and one copy", () => {
    expect(oneCopyPerJob(timeline(["h1", migrate("j1")], ["h1", copyStart("vm-1")], ["h1", copyEnd("vm-1")]), [m])).toEqual([]);
  });

  it("catches two copies for one job", () => {
    const t = timeline(["h1", migrate("j1")], ["h1", copyStart("vm-1")], ["h1", copyEnd("vm-1", "failed")], ["h1", copyStart("vm-1")], ["h1", copyEnd("vm-1")]);
    expect(oneCopyPerJob(t, [{ ...m, failedOver: true }])).toEqual([expect.stringContaining("made 2 memory copies")]);
  });

  it("catches a second vm/migrate of a job that did not fail over, and allows it after a failover", () => {
    const t = timeline(["h1", migrate("j1")], ["h1", migrate("j1")], ["h1", copyStart("vm-1")], ["h1", copyEnd("vm-1")]);
    expect(oneCopyPerJob(t, [m])).toEqual([expect.stringContaining("arrived 2 times")]);
    expect(oneCopyPerJob(t, [{ ...m, failedOver: true }])).toEqual([]);
  });

  it("catches a copy no vm/migrate of the VM's jobs asked for", () => {
    expect(oneCopyPerJob(timeline(["h1", copyStart("vm-1")], ["h1", copyEnd("vm-1")]), [m])).toEqual([expect.stringContaining("with no vm/migrate")]);
  });
});

describe("5. backups agree with their jobs and hold bytes only when available", () => {
  const storage = { uuid: "bs", usedBytes: 100n };

  it("holds for an available, a cancelled and a failed backup", () => {
    expect(backupsAgreeWithJobs([
      { uuid: "b1", jobUuid: "j1", state: "Available", jobState: "Succeeded", sizeBytes: 100n },
      { uuid: "b2", jobUuid: "j2", state: "Canceled", jobState: "Canceled", sizeBytes: 0n },
      { uuid: "b3", jobUuid: "j3", state: "Error", jobState: "Failed", sizeBytes: 0n },
    ], storage)).toEqual([]);
  });

  it("catches a backup whose state disagrees with its job", () => {
    expect(backupsAgreeWithJobs([{ uuid: "b1", jobUuid: "j1", state: "Available", jobState: "Canceled", sizeBytes: 100n }], storage)).toEqual([expect.stringContaining("expected Canceled")]);
    expect(backupsAgreeWithJobs([{ uuid: "b1", jobUuid: "j1", state: "Creating", jobState: "Failed", sizeBytes: 0n }], { uuid: "bs", usedBytes: 0n })).toHaveLength(1);
  });

  it("catches a cancelled backup that still holds bytes on its storage", () => {
    const found = backupsAgreeWithJobs([{ uuid: "b2", jobUuid: "j2", state: "Canceled", jobState: "Canceled", sizeBytes: 0n }], { uuid: "bs", usedBytes: 64n });
    expect(found).toEqual([expect.stringContaining("holds 64 bytes, its available backups 0")]);
  });
});

describe("6. a migration that named every backup to cancel, undisturbed, succeeds", () => {
  const c: CancelFirstCase = { jobUuid: "m1", vmUuid: "vm-1", state: "Failed", error: "BLOCK_JOB_ACTIVE", named: ["b1", "b2"], backupsBefore: ["b1", "b2"], backupsAfter: false, cancelled: false, queuedBehind: false };

  it("catches one that failed (refused BLOCK_JOB_ACTIVE)", () => {
    expect(cancelFirstSucceeds([c], { faults: 0, crashed: false })).toEqual([expect.stringContaining("yet Failed: BLOCK_JOB_ACTIVE")]);
  });

  it("holds when it succeeded, and does not apply when disturbed or when a backup was left unnamed", () => {
    expect(cancelFirstSucceeds([{ ...c, state: "Succeeded" }], { faults: 0, crashed: false })).toEqual([]);
    expect(cancelFirstSucceeds([c], { faults: 1, crashed: false })).toEqual([]);
    expect(cancelFirstSucceeds([c], { faults: 0, crashed: true })).toEqual([]);
    expect(cancelFirstSucceeds([{ ...c, cancelled: true }], { faults: 0, crashed: false })).toEqual([]);
    expect(cancelFirstSucceeds([{ ...c, backupsAfter: true }], { faults: 0, crashed: false })).toEqual([]);
    expect(cancelFirstSucceeds([{ ...c, queuedBehind: true }], { faults: 0, crashed: false })).toEqual([]);
    expect(cancelFirstSucceeds([{ ...c, named: ["b1"] }], { faults: 0, crashed: false })).toEqual([]);
  });
});

describe("7. a migration's outcome agrees with its copy", () => {
  it("holds for a succeeded copy of a Succeeded job and an aborted one of a Canceled job", () => {
    const t = timeline(["h1", migrate("j1")], ["h1", copyStart("vm-1")], ["h1", copyEnd("vm-1")], ["h2", migrate("j2")], ["h2", copyStart("vm-1")], ["h2", copyEnd("vm-1", "aborted")]);
    expect(outcomeMatchesCopy(t, [{ jobUuid: "j1", vmUuid: "vm-1", state: "Succeeded" }, { jobUuid: "j2", vmUuid: "vm-1", state: "Canceled" }])).toEqual([]);
  });

  it("catches a Canceled job whose copy succeeded, and a Succeeded one with no copy", () => {
    const t = timeline(["h1", migrate("j1")], ["h1", copyStart("vm-1")], ["h1", copyEnd("vm-1")]);
    expect(outcomeMatchesCopy(t, [{ jobUuid: "j1", vmUuid: "vm-1", state: "Canceled" }])).toEqual([expect.stringContaining("is Canceled but its memory copy succeeded")]);
    expect(outcomeMatchesCopy(timeline(), [{ jobUuid: "j1", vmUuid: "vm-1", state: "Succeeded" }])).toHaveLength(1);
  });
});
