import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code } from "@stratum/core";
import type { SimHost } from "@stratum/agent-sim";
import { JobState } from "@stratum/proto/stratum/longjob/v1/job_pb";
import { BackupMode } from "@stratum/proto/stratum/storage/v1/backup_pb";
import { VolumeKind } from "@stratum/proto/stratum/storage/v1/volume_pb";
import { GIB, MIB, startStorageStack, type StorageStack } from "./stack";
import { untilTaskStarts } from "./sim-tasks";

const CHUNK = 256n * MIB;

let stack: StorageStack;
let bsUuid: string;
const ps: string[] = [];
beforeAll(async () => {
  stack = await startStorageStack({ sim: { volumeTaskDurationMs: 3_600_000, chunkBytes: Number(CHUNK) } });
  for (const [i, h] of stack.hostUuids.entries()) {
    ps.push((await stack.volumes.addPrimaryStorage({ name: `local-${i}`, totalCapacityBytes: 100n * GIB, hostUuid: h })).primaryStorage!.uuid);
  }
  bsUuid = (await stack.backups.addBackupStorage({ name: "bs", totalCapacityBytes: 20n * GIB })).backupStorage!.uuid;
});
afterAll(async () => {
  await stack?.stop();
});

const newVolume = async (name: string, host = 0) => (await stack.volumes.createVolume({ name, sizeBytes: GIB, primaryStorageUuid: ps[host]!, kind: VolumeKind.DATA })).volume!;

/** Resolves once the host's agent holds a `volume/task/wait` for these volumes (the long-poll is pending there). */
function untilWaiting(host: SimHost, volumeUuid: string): Promise<void> {
  return new Promise((resolve) => {
    const on = (f: { volumeUuids?: readonly string[] }) => {
      if (!f.volumeUuids?.includes(volumeUuid)) return;
      host.state.volumeTasks.events.off("waiting", on);
      resolve();
    };
    host.state.volumeTasks.events.on("waiting", on);
  });
}

async function startBackup(volumeUuid: string) {
  const { backup, jobUuid } = await stack.backups.createBackup({ volumeUuid, backupStorageUuid: bsUuid, mode: BackupMode.FULL });
  const { host } = await untilTaskStarts(stack.sim, backup!.uuid);
  return { backupUuid: backup!.uuid, jobUuid, host };
}

describe("volume tasks", () => {
  it("ListVolumeTasks asks each volume's agent: the tasks with their host and byte progress, filtered by kind", async () => {
    const a = await newVolume("list-a", 0);
    const b = await newVolume("list-b", 1);
    const ba = await startBackup(a.uuid);
    const bb = await startBackup(b.uuid);
    expect([ba.host.uuid, bb.host.uuid]).toEqual([stack.hostUuids[0], stack.hostUuids[1]]);
    const snap = ba.host.state.volumeTasks.start({ volumeUuid: a.uuid, kind: "snapshot", durationMs: 3_600_000, args: {} });
    ba.host.endVolumeTaskChunk(ba.backupUuid);

    const { tasks } = await stack.at(1).volumes.listVolumeTasks({ volumeUuids: [a.uuid, b.uuid] });
    const byUuid = new Map(tasks.map((t) => [t.taskUuid, t]));
    expect(byUuid.size).toBe(3);
    expect(byUuid.get(ba.backupUuid)).toMatchObject({ volumeUuid: a.uuid, kind: "backup", state: "running", hostUuid: stack.hostUuids[0], bytesDone: CHUNK, bytesTotal: GIB });
    expect(byUuid.get(bb.backupUuid)).toMatchObject({ volumeUuid: b.uuid, kind: "backup", hostUuid: stack.hostUuids[1], bytesDone: 0n });
    expect(byUuid.get(snap.taskUuid)).toMatchObject({ kind: "snapshot", hostUuid: stack.hostUuids[0] });
    const snaps = await stack.volumes.listVolumeTasks({ volumeUuids: [a.uuid, b.uuid], kinds: ["snapshot"] });
    expect(snaps.tasks.map((t) => t.taskUuid)).toEqual([snap.taskUuid]);

    await expect(stack.volumes.listVolumeTasks({ volumeUuids: ["6c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f"] })).rejects.toMatchObject({ code: Code.NOT_FOUND, reason: "VOLUME_NOT_FOUND" });
    await expect(stack.volumes.listVolumeTasks({ volumeUuids: [a.uuid], kinds: ["Backup"] })).rejects.toMatchObject({ code: Code.INVALID_ARGUMENT, violations: [{ field: "kinds[0]" }] });

    for (const t of [ba, bb]) await stack.jobs.cancelJob({ uuid: t.jobUuid });
    for (const t of [ba, bb]) t.host.endVolumeTaskChunk(t.backupUuid);
    ba.host.finishVolumeTask(snap.taskUuid);
    for (const t of [ba, bb]) await stack.untilJob(t.jobUuid, (j) => j.state === JobState.CANCELED);
  });

  it("WaitVolumeTasks answers on the backup task's exit while a snapshot on the same volume keeps running; every kind still blocks", async () => {
    const v = await newVolume("wait");
    const { backupUuid, jobUuid, host } = await startBackup(v.uuid);
    const snap = host.state.volumeTasks.start({ volumeUuid: v.uuid, kind: "snapshot", durationMs: 3_600_000, args: {} });

    // A check (timeout 0) says what runs now.
    const check = await stack.volumes.waitVolumeTasks({ volumeUuids: [v.uuid], kinds: ["backup"], timeoutMs: 0 });
    expect(check.exited).toBe(false);
    expect(check.running.map((t) => [t.taskUuid, t.kind, t.hostUuid])).toEqual([[backupUuid, "backup", host.uuid]]);

    const pending = untilWaiting(host, v.uuid);
    const waiting = stack.at(1).volumes.waitVolumeTasks({ volumeUuids: [v.uuid], kinds: ["backup"], timeoutMs: 30_000 });
    let answered = false;
    void waiting.then(() => (answered = true));
    await pending;
    for (let i = 0; i < 3; i++) host.endVolumeTaskChunk(backupUuid);
    expect(answered).toBe(false);
    const exitAt = performance.now();
    host.endVolumeTaskChunk(backupUuid); // the last chunk: the backup task exits
    const reply = await waiting;
    const latencyMs = performance.now() - exitAt;
    expect(reply).toMatchObject({ exited: true, running: [] });
    expect(latencyMs).toBeLessThan(1_000); // a round trip, not a polling interval
    expect(host.state.volumeTasks.get(snap.taskUuid)!.state).toBe("running");
    await stack.untilJob(jobUuid, (j) => j.state === JobState.SUCCEEDED);

    const everyKind = await stack.volumes.waitVolumeTasks({ volumeUuids: [v.uuid], timeoutMs: 300 });
    expect(everyKind.exited).toBe(false);
    expect(everyKind.running.map((t) => t.taskUuid)).toEqual([snap.taskUuid]);
    host.finishVolumeTask(snap.taskUuid);
    expect((await stack.volumes.waitVolumeTasks({ volumeUuids: [v.uuid], timeoutMs: 10_000 })).exited).toBe(true);
  });

  it("WaitVolumeTasks told the host (host_uuid) asks that agent for the volumes, and still the hosts of storage's own tasks on them", async () => {
    const v = await newVolume("hinted", 0);
    const { backupUuid, jobUuid, host } = await startBackup(v.uuid); // on host 0, where its storage is
    const other = stack.sim.hosts.find((h) => h.uuid === stack.hostUuids[1])!;
    const snap = other.state.volumeTasks.start({ volumeUuid: v.uuid, kind: "snapshot", durationMs: 3_600_000, args: {} });
    // Told host 1: its snapshot blocks (every kind), and so does the backup storage recorded on host 0.
    const check = await stack.volumes.waitVolumeTasks({ volumeUuids: [v.uuid], timeoutMs: 0, hostUuid: other.uuid });
    expect(check.running.map((t) => [t.taskUuid, t.hostUuid]).sort()).toEqual([[backupUuid, host.uuid], [snap.taskUuid, other.uuid]].sort());
    // Only backups block: the recorded one on host 0, until it exits.
    const waiting = stack.volumes.waitVolumeTasks({ volumeUuids: [v.uuid], kinds: ["backup"], timeoutMs: 30_000, hostUuid: other.uuid });
    for (let i = 0; i < 4; i++) host.endVolumeTaskChunk(backupUuid);
    expect(await waiting).toMatchObject({ exited: true, running: [] });
    await stack.untilJob(jobUuid, (j) => j.state === JobState.SUCCEEDED);
    other.finishVolumeTask(snap.taskUuid);
  });

  it("WaitVolumeTasks over several agents is exited only once no agent has a matching task; a caller that hangs up ends the agents' long-polls", async () => {
    const a = await newVolume("multi-a", 0);
    const b = await newVolume("multi-b", 1);
    const ta = await startBackup(a.uuid);
    const tb = await startBackup(b.uuid);
    const both = [untilWaiting(ta.host, a.uuid), untilWaiting(tb.host, b.uuid)];
    const waiting = stack.volumes.waitVolumeTasks({ volumeUuids: [a.uuid, b.uuid], kinds: ["backup"], timeoutMs: 30_000 });
    let answered = false;
    void waiting.then(() => (answered = true));
    await Promise.all(both);
    for (let i = 0; i < 4; i++) ta.host.endVolumeTaskChunk(ta.backupUuid);
    await stack.untilJob(ta.jobUuid, (j) => j.state === JobState.SUCCEEDED);
    expect(answered).toBe(false); // b's backup still runs
    for (let i = 0; i < 4; i++) tb.host.endVolumeTaskChunk(tb.backupUuid);
    expect(await waiting).toMatchObject({ exited: true });

    // Hanging up: storage aborts its pending long-poll to the agent at once, not at its 60 s.
    const c = await newVolume("hangup", 1);
    const tc = await startBackup(c.uuid);
    const pending = untilWaiting(tc.host, c.uuid);
    const caller = new AbortController();
    const call = stack.volumes.waitVolumeTasks({ volumeUuids: [c.uuid], kinds: ["backup"], timeoutMs: 60_000 }, { signal: caller.signal }).catch((e) => e);
    await pending;
    const abortedAt = performance.now();
    const mark = stack.agentCalls.length; // earlier jobs' cancelled waits do not count
    caller.abort();
    expect(await call).toMatchObject({ code: Code.CANCELLED });
    const cancelledWait = () => stack.agentCalls.slice(mark).find((e) => e.command === "volume/task/wait" && e.hostUuid === tc.host.uuid && e.outcome === "AGENT_CALL_CANCELLED");
    while (!cancelledWait() && performance.now() - abortedAt < 5_000) await new Promise((r) => setTimeout(r, 10));
    expect(cancelledWait()).toBeDefined();
    await stack.jobs.cancelJob({ uuid: tc.jobUuid });
    tc.host.endVolumeTaskChunk(tc.backupUuid);
    await stack.untilJob(tc.jobUuid, (j) => j.state === JobState.CANCELED);
  });
});
