import type { ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import { JobState } from "@stratum/proto/stratum/longjob/v1/job_pb";
import { VmState } from "@stratum/proto/stratum/compute/v1/vm_pb";
import { kill9, startChildReplica } from "@stratum/runtime/testing";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { lastSeq, startMigrateStack, untilVm, type MigrateStack } from "./migrate-stack";

const MAIN = fileURLToPath(new URL("../src/main.ts", import.meta.url));

/**
 * Seed 001's last scenario: the compute replica running a migration is killed (kill -9, a process
 * of its own) — while it waits for a backup task, or while the agent copies the memory. Longjob
 * resumes the job on the VM's new owner, which carries on from what the VM records, and the
 * memory copy runs at most once (agent-sim's timeline counts the copies).
 */
describe("a migration whose replica dies", () => {
  let s: MigrateStack;
  let child: ChildProcess | undefined;
  beforeAll(async () => {
    s = await startMigrateStack();
  }, 120_000);
  afterEach(async () => {
    if (child) await kill9(child);
    child = undefined;
  });
  afterAll(async () => {
    await s?.stop();
  });

  const view = () => s.compute.replicas[0]!.ctx.view;

  /** Starts compute-N as a child process and a VM it owns, Running on host 0 with a volume. */
  async function vmOnChild(replicaId: string) {
    ({ child } = await startChildReplica({ main: MAIN, like: s.compute.replicas[0]!.ctx.config, replicaId, env: { STRATUM_PING_INTERVAL_MS: "60000" } }));
    await view().until((v) => v.members("compute").some((m) => m.replicaId === replicaId));
    let uuid: string;
    do uuid = randomUUID();
    while (view().ownerOf("compute", uuid)?.replicaId !== replicaId);
    return s.vmWithVolume(0, uuid);
  }

  const copies = (since: number, vmUuid: string) => s.sim.timeline(since).filter((e) => e.event === "migrate-copy-start" && e.vmUuid === vmUuid);

  it("killed while it waits for a backup task: resumed on the new owner, which waits on and migrates once", async () => {
    const vm = await vmOnChild("compute-1");
    const backup = await s.backup(vm.volumeUuid); // not named: the migration waits for it to end
    const before = await s.usage();
    const since = lastSeq(s);
    const { jobUuid } = await s.vms.migrateVm({ uuid: vm.uuid, targetHostUuid: s.hostUuids[1]!, backupWaitTimeoutMs: 600_000 });
    await s.untilJob(jobUuid, (j) => j.progress?.stage === "waiting-for-backups" && j.executor === "compute-1", "the wait on compute-1");
    await kill9(child!);
    child = undefined;

    const resumed = await s.untilJob(jobUuid, (j) => j.executor === "compute-0" && j.state === JobState.RUNNING, "its resume on compute-0");
    expect(resumed.attempt).toBeGreaterThan(1);
    expect((await s.vms.getVm({ uuid: vm.uuid })).vm!.state).toBe(VmState.MIGRATING);
    // Still waiting for the backup: nothing reached the agent's vm/migrate.
    expect(s.sim.timeline(since).filter((e) => e.event === "command" && e.command === "vm/migrate")).toHaveLength(0);

    s.sim.host(0).finishVolumeTask(backup.taskUuid, "succeeded");
    await s.untilTimeline((e) => e.event === "migrate-copy-start" && e.vmUuid === vm.uuid, since);
    s.sim.host(0).completeMigration(vm.uuid);
    const job = await s.finished(jobUuid);
    expect(job.state, job.error?.message).toBe(JobState.SUCCEEDED);
    expect(copies(since, vm.uuid)).toHaveLength(1);
    expect((await untilVm(s.vms, vm.uuid, (v) => v.state === VmState.RUNNING)).hostUuid).toBe(s.hostUuids[1]);
    const after = await s.usage();
    expect(after.get(s.hostUuids[0]!)!.cpu).toBe(before.get(s.hostUuids[0]!)!.cpu - 1);
    expect(after.get(s.hostUuids[1]!)!.cpu).toBe(before.get(s.hostUuids[1]!)!.cpu + 1);
    expect(after.get(s.hostUuids[2]!)).toEqual(before.get(s.hostUuids[2]!));
  }, 90_000);

  it("killed during the memory copy: the resumed job joins the copy by its task id instead of starting a second", async () => {
    const vm = await vmOnChild("compute-2");
    const before = await s.usage();
    const since = lastSeq(s);
    const { jobUuid } = await s.vms.migrateVm({ uuid: vm.uuid, targetHostUuid: s.hostUuids[2]! });
    await s.untilTimeline((e) => e.event === "migrate-copy-start" && e.vmUuid === vm.uuid, since);
    await kill9(child!);
    child = undefined;

    await s.untilJob(jobUuid, (j) => j.executor === "compute-0", "its resume on compute-0");
    // The resumed attempt's vm/migrate (same task id) reached the agent: the copy is still the first one.
    await s.untilTimeline((e) => e.event === "command" && e.command === "vm/migrate" && e.seq > since, since);
    const arrivals = () => s.sim.timeline(since).filter((e) => e.event === "command" && e.command === "vm/migrate");
    const until = Date.now() + 10_000;
    while (arrivals().length < 2 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    // Both attempts sent it, under the job's one task id: the agent ran one copy.
    expect(arrivals()).toHaveLength(2);
    expect(new Set(arrivals().map((e) => (e as { taskId?: string }).taskId))).toEqual(new Set([`migrate-${jobUuid}`]));
    s.sim.host(0).completeMigration(vm.uuid);
    const job = await s.finished(jobUuid);
    expect(job.state, job.error?.message).toBe(JobState.SUCCEEDED);
    expect(copies(since, vm.uuid)).toHaveLength(1);
    expect((await s.vms.getVm({ uuid: vm.uuid })).vm).toMatchObject({ state: VmState.RUNNING, hostUuid: s.hostUuids[2] });
    const after = await s.usage();
    expect(after.get(s.hostUuids[0]!)!.memory).toBe(before.get(s.hostUuids[0]!)!.memory - 1024n ** 3n);
    expect(after.get(s.hostUuids[2]!)!.memory).toBe(before.get(s.hostUuids[2]!)!.memory + 1024n ** 3n);
  }, 90_000);
  it("cancelled while its replica is dead: the resumed attempt stops before any work, and the takeover puts the VM back on its source", async () => {
    const vm = await vmOnChild("compute-3");
    const backup = await s.backup(vm.volumeUuid);
    const before = await s.usage();
    const since = lastSeq(s);
    const { jobUuid } = await s.vms.migrateVm({ uuid: vm.uuid, targetHostUuid: s.hostUuids[1]!, backupWaitTimeoutMs: 600_000 });
    await s.untilJob(jobUuid, (j) => j.progress?.stage === "waiting-for-backups" && j.executor === "compute-3", "the wait on compute-3");
    await kill9(child!);
    child = undefined;
    // Cancelled before longjob notices the death: no attempt will ever run the job's code again.
    await s.jobs.cancelJob({ uuid: jobUuid });
    expect((await s.finished(jobUuid)).state).toBe(JobState.CANCELED);
    const settled = await untilVm(s.vms, vm.uuid, (v) => v.state !== VmState.MIGRATING);
    expect(settled).toMatchObject({ state: VmState.RUNNING, hostUuid: s.hostUuids[0] });
    // The resumed attempt reverted it, or (cancelled before it ran) the takeover did: either says so.
    expect(settled.lastError).toMatch(/stays on (its source|host)/);
    expect(s.sim.timeline(since).filter((e) => e.event === "command" && e.command === "vm/migrate")).toHaveLength(0);
    expect(await s.usage()).toEqual(before);
    s.sim.host(0).finishVolumeTask(backup.taskUuid, "succeeded");
  }, 90_000);
  it("cancelled during the copy while its replica is dead: the copy the dead attempt started is aborted, and the VM stays where the agent has it", async () => {
    const vm = await vmOnChild("compute-4");
    const before = await s.usage();
    const since = lastSeq(s);
    const { jobUuid } = await s.vms.migrateVm({ uuid: vm.uuid, targetHostUuid: s.hostUuids[1]! });
    await s.untilTimeline((e) => e.event === "migrate-copy-start" && e.vmUuid === vm.uuid, since);
    await kill9(child!);
    child = undefined;
    await s.jobs.cancelJob({ uuid: jobUuid });
    expect((await s.finished(jobUuid)).state).toBe(JobState.CANCELED);
    await s.untilTimeline((e) => e.event === "migrate-copy-end" && e.vmUuid === vm.uuid, since);
    expect(s.sim.timeline(since).find((e) => e.event === "migrate-copy-end" && e.vmUuid === vm.uuid)).toMatchObject({ outcome: "aborted" });
    const settled = await untilVm(s.vms, vm.uuid, (v) => v.state !== VmState.MIGRATING);
    expect(settled).toMatchObject({ state: VmState.RUNNING, hostUuid: s.hostUuids[0] });
    expect(s.sim.host(0).inspect().vms.find((v) => v.vmUuid === vm.uuid)?.state).toBe("running");
    expect(s.sim.host(1).inspect().vms.find((v) => v.vmUuid === vm.uuid)).toBeUndefined();
    expect(await s.usage()).toEqual(before);
  }, 90_000);
});
