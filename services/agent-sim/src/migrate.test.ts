import { once } from "node:events";
import { afterEach, describe, expect, it } from "vitest";
import { startAgentSim, type AgentSim, type SimHost } from "./index";
import { post, request, vmSpec } from "./test-support";

const GiB = 1024 ** 3;
let sim: AgentSim | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

/** Two hosts; VM `vm` runs on the first with disks d1, d2. Copies take "forever" unless a test ends them. */
async function setup(options: { migrateDurationMs?: number } = {}): Promise<{ src: SimHost; dst: SimHost }> {
  sim = await startAgentSim({ hosts: 2, controlPort: 0, migrateDurationMs: options.migrateDurationMs ?? 600_000 });
  const [src, dst] = [sim.host(0), sim.host(1)];
  await post(src.url, "vm/start", vmSpec("vm", { memoryBytes: 4 * GiB }));
  return { src, dst };
}

const migrateBody = (dst: SimHost, extra: Record<string, unknown> = {}) => ({ vmUuid: "vm", targetHostUuid: dst.uuid, volumeUuids: ["d1", "d2"], ...extra });

/** Sends vm/migrate and resolves once its copy has started (the reply is wrapped so it is not awaited too). */
async function copying(src: SimHost, body: unknown, taskId?: string): Promise<{ reply: ReturnType<typeof post> }> {
  const started = once(src.state.migrations.events, "copy-start");
  const reply = post(src.url, "vm/migrate", body, taskId === undefined ? {} : { taskId });
  await Promise.race([started, reply]);
  return { reply };
}

/** Resolves when `cond` holds, checking after each turn of the event loop; fails the test after 5 s. */
async function until(cond: () => boolean): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error("condition not met within 5 s");
    await new Promise((r) => setImmediate(r));
  }
}

const vmsOf = (h: SimHost) => h.inspect().vms.map((v) => v.vmUuid);

describe("timed vm/migrate", () => {
  it("copies for durationMs with status reporting progress; the VM moves when the copy ends", async () => {
    const { src, dst } = await setup();
    const { reply } = await copying(src, migrateBody(dst));
    const status = await post(src.url, "vm/migrate/status", { vmUuid: "vm" });
    expect(status.status).toBe(200);
    expect(status.body).toMatchObject({ vmUuid: "vm", state: "copying", memoryBytesTotal: 4 * GiB });
    expect(status.body.percent).toBeGreaterThanOrEqual(0);
    expect(status.body.percent).toBeLessThan(100);
    // Mid-copy the VM still runs on its source only.
    expect(vmsOf(src)).toEqual(["vm"]);
    expect(vmsOf(dst)).toEqual([]);

    expect(src.completeMigration("vm")).toBe(true);
    expect((await reply).body).toEqual({ vmUuid: "vm", state: "running", sourceHostUuid: src.uuid, targetHostUuid: dst.uuid });
    expect(vmsOf(src)).toEqual([]);
    expect(vmsOf(dst)).toEqual(["vm"]);
    expect((await post(src.url, "vm/migrate/status", { vmUuid: "vm" })).body).toEqual({ vmUuid: "vm", state: "succeeded", percent: 100, memoryBytesDone: 4 * GiB, memoryBytesTotal: 4 * GiB });
    expect(src.inspect().migrations).toEqual([expect.objectContaining({ vmUuid: "vm", state: "succeeded" })]);
  });

  it("a host's migrateDurationMs is the default copy time; durationMs in the request wins", async () => {
    const { src, dst } = await setup({ migrateDurationMs: 60 });
    const began = performance.now();
    expect((await post(src.url, "vm/migrate", migrateBody(dst))).status).toBe(200);
    expect(performance.now() - began).toBeGreaterThanOrEqual(59);
    // The request's durationMs wins over the host's 60 ms: still copying long after 60 ms would have passed.
    const { reply } = await copying(dst, { vmUuid: "vm", targetHostUuid: src.uuid, durationMs: 600_000 });
    await new Promise((r) => setTimeout(r, 120));
    expect((await post(dst.url, "vm/migrate/status", { vmUuid: "vm" })).body).toMatchObject({ state: "copying" });
    dst.abortMigration("vm");
    expect((await reply).status).toBe(409);
    // durationMs 0: at once, as migrations always were.
    expect((await post(dst.url, "vm/migrate", { vmUuid: "vm", targetHostUuid: src.uuid, durationMs: 0 })).status).toBe(200);
    expect((await post(dst.url, "vm/migrate/status", { vmUuid: "vm" })).body).toMatchObject({ state: "succeeded", percent: 100 });
  });

  it("abort ends the copy: the migrate answers 409 MIGRATION_ABORTED and the VM stays on its source; abort again is false", async () => {
    const { src, dst } = await setup();
    const { reply } = await copying(src, migrateBody(dst));
    expect((await post(src.url, "vm/migrate/abort", { vmUuid: "vm" })).body).toEqual({ vmUuid: "vm", aborted: true });
    const answered = await reply;
    expect(answered.status).toBe(409);
    expect(answered.body.error.code).toBe("MIGRATION_ABORTED");
    expect(vmsOf(src)).toEqual(["vm"]);
    expect(src.inspect().vms[0]).toMatchObject({ state: "running" });
    expect(vmsOf(dst)).toEqual([]);
    expect((await post(src.url, "vm/migrate/status", { vmUuid: "vm" })).body).toMatchObject({ state: "aborted" });
    expect((await post(src.url, "vm/migrate/abort", { vmUuid: "vm" })).body).toEqual({ vmUuid: "vm", aborted: false });
    expect((await post(src.url, "vm/migrate/abort", { vmUuid: "never-migrated" })).body).toEqual({ vmUuid: "never-migrated", aborted: false });
  });

  it("status of a VM that never migrated from this host is 404 VM_NOT_FOUND", async () => {
    const { src } = await setup();
    const reply = await post(src.url, "vm/migrate/status", { vmUuid: "vm" });
    expect(reply.status).toBe(404);
    expect(reply.body.error.code).toBe("VM_NOT_FOUND");
    expect((await post(src.url, "vm/migrate/status", {})).body.error.message).toBe("missing field: vmUuid");
  });

  it("bad input is a 400 naming the field, and nothing moves", async () => {
    const { src, dst } = await setup();
    for (const [extra, field] of [[{ volumeUuids: "d1" }, "volumeUuids"], [{ volumeUuids: ["d1", ""] }, "volumeUuids[1]"], [{ durationMs: -1 }, "durationMs"], [{ durationMs: 1.5 }, "durationMs"]] as const) {
      const reply = await post(src.url, "vm/migrate", migrateBody(dst, extra));
      expect(reply.status, JSON.stringify(extra)).toBe(400);
      expect(reply.body.error.message, JSON.stringify(extra)).toContain(`field: ${field}`);
    }
    expect(vmsOf(src)).toEqual(["vm"]);
    expect(src.inspect().migrations).toEqual([]);
  });
});

describe("block-job guard", () => {
  it("a backup running or cancelling on one of the VM's disks refuses the migration (409 BLOCK_JOB_ACTIVE naming it); a snapshot does not", async () => {
    const { src, dst } = await setup();
    await post(src.url, "volume/task/start", { volumeUuid: "d2", kind: "backup", taskUuid: "bk", sizeBytes: 1024, durationMs: 600_000 });
    await post(src.url, "volume/task/start", { volumeUuid: "d1", kind: "snapshot", taskUuid: "sn", durationMs: 600_000 });
    const refused = await post(src.url, "vm/migrate", migrateBody(dst, { durationMs: 0 }));
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe("BLOCK_JOB_ACTIVE");
    expect(refused.body.error.message).toContain("bk");
    expect(refused.body.error.message).not.toContain("sn");
    // Cancelling (a byte task stops at its chunk's end): still a block job.
    expect((await post(src.url, "volume/task/cancel", { taskUuid: "bk" })).body.task.state).toBe("cancelling");
    expect((await post(src.url, "vm/migrate", migrateBody(dst, { durationMs: 0 }))).body.error.code).toBe("BLOCK_JOB_ACTIVE");
    expect(vmsOf(src)).toEqual(["vm"]);
    expect(sim!.timeline().filter((e) => e.event === "migrate-copy-start")).toEqual([]);
    // Once it has exited, the migration goes (the snapshot still runs).
    src.endVolumeTaskChunk("bk");
    expect((await post(src.url, "vm/migrate", migrateBody(dst, { durationMs: 0 }))).status).toBe(200);
    expect(vmsOf(dst)).toEqual(["vm"]);
  });

  it("while the copy runs, a backup on its disks is refused (409 VM_MIGRATING); other kinds, other disks and a second migrate", async () => {
    const { src, dst } = await setup();
    const { reply } = await copying(src, migrateBody(dst));
    const refused = await post(src.url, "volume/task/start", { volumeUuid: "d1", kind: "backup", taskUuid: "bk" });
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe("VM_MIGRATING");
    expect(src.state.volumeTasks.get("bk")).toBeUndefined();
    expect((await post(src.url, "volume/task/start", { volumeUuid: "d1", kind: "snapshot", taskUuid: "sn", durationMs: 0 })).status).toBe(200);
    expect((await post(src.url, "volume/task/start", { volumeUuid: "other", kind: "backup", taskUuid: "bk-other", durationMs: 0 })).status).toBe(200);
    // A second migration of the same VM (another task id) is refused: one copy at a time.
    expect((await post(src.url, "vm/migrate", migrateBody(dst), { taskId: "other" })).body.error.code).toBe("VM_MIGRATING");
    src.completeMigration("vm");
    expect((await reply).status).toBe(200);
    // The copy ended: backups are allowed again.
    expect((await post(src.url, "volume/task/start", { volumeUuid: "d1", kind: "backup", taskUuid: "bk", durationMs: 0 })).status).toBe(200);
  });

  it("a task naming its VM runs only where the VM is: 404 VM_NOT_FOUND on the host it left, started on the one it moved to", async () => {
    const { src, dst } = await setup();
    const { reply } = await copying(src, migrateBody(dst));
    src.completeMigration("vm");
    expect((await reply).status).toBe(200);
    // A start that looked the VM's host up before the copy ended reaches the host it left.
    const refused = await post(src.url, "volume/task/start", { volumeUuid: "d1", kind: "backup", taskUuid: "bk", vmUuid: "vm", sizeBytes: 1024 }, { taskId: "vtask-bk" });
    expect(refused.status).toBe(404);
    expect(refused.body.error.code).toBe("VM_NOT_FOUND");
    expect(refused.body.error.message).toContain(src.uuid);
    expect(src.state.volumeTasks.get("bk")).toBeUndefined();
    // The same task id starts it where the VM is now.
    const started = await post(dst.url, "volume/task/start", { volumeUuid: "d1", kind: "backup", taskUuid: "bk", vmUuid: "vm", sizeBytes: 1024, durationMs: 600_000 }, { taskId: "vtask-bk" });
    expect(started.status).toBe(200);
    expect(started.body.task).toMatchObject({ taskUuid: "bk", state: "running", args: { vmUuid: "vm" } });
    // A stopped VM is still defined on its host: its disks' tasks run there.
    await post(dst.url, "vm/stop", { vmUuid: "vm" });
    expect((await post(dst.url, "volume/task/start", { volumeUuid: "d2", kind: "snapshot", taskUuid: "sn", vmUuid: "vm", durationMs: 0 })).status).toBe(200);
  });

  it("the guard follows the VM a backup names, beyond the disks the migration lists: each refuses the other", async () => {
    const { src, dst } = await setup();
    // A disk the caller's vm/migrate does not list (attached after it read the VM's volumes).
    await post(src.url, "volume/task/start", { volumeUuid: "d3", kind: "backup", taskUuid: "bk", vmUuid: "vm", sizeBytes: 1024, durationMs: 600_000 });
    const refused = await post(src.url, "vm/migrate", migrateBody(dst, { durationMs: 0 }));
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe("BLOCK_JOB_ACTIVE");
    expect(refused.body.error.message).toContain("bk");
    src.finishVolumeTask("bk", "succeeded");
    const { reply } = await copying(src, migrateBody(dst));
    const during = await post(src.url, "volume/task/start", { volumeUuid: "d3", kind: "backup", taskUuid: "bk-2", vmUuid: "vm", sizeBytes: 1024 });
    expect(during.status).toBe(409);
    expect(during.body.error.code).toBe("VM_MIGRATING");
    expect(src.state.volumeTasks.get("bk-2")).toBeUndefined();
    src.completeMigration("vm");
    expect((await reply).status).toBe(200);
  });
});

describe("with the sim's machinery", () => {
  it("a hold on vm/migrate holds it on arrival, before the copy starts", async () => {
    const { src, dst } = await setup();
    const hold = src.hold("vm/migrate");
    const reply = post(src.url, "vm/migrate", migrateBody(dst), { taskId: "m-1" });
    const held = await hold.next(5_000);
    expect(held).toMatchObject({ command: "vm/migrate", taskId: "m-1" });
    expect(sim!.timeline().map((e) => e.event)).not.toContain("migrate-copy-start");
    // Nothing is copying yet: a backup on its disks may still start.
    expect((await post(src.url, "volume/task/start", { volumeUuid: "d1", kind: "backup", taskUuid: "bk", durationMs: 0 })).status).toBe(200);
    await src.waitForVolumeTaskExit("bk");
    const started = once(src.state.migrations.events, "copy-start");
    held.release();
    await started;
    src.completeMigration("vm");
    expect((await reply).status).toBe(200);
  });

  it("a repeat with the same task id joins the running copy and answers when it ends; after, the first reply", async () => {
    const { src, dst } = await setup();
    const { reply: first } = await copying(src, migrateBody(dst), "m-1");
    const second = post(src.url, "vm/migrate", migrateBody(dst), { taskId: "m-1" });
    await until(() => sim!.timeline().filter((e) => e.event === "command" && e.command === "vm/migrate").length === 2);
    let secondAnswered = false;
    void second.then(() => (secondAnswered = true));
    await new Promise((r) => setImmediate(r));
    expect(secondAnswered).toBe(false);
    expect(src.completeMigration("vm")).toBe(true);
    const [a, b] = await Promise.all([first, second]);
    expect(a.status).toBe(200);
    expect(b.body).toEqual(a.body);
    const third = await post(src.url, "vm/migrate", migrateBody(dst), { taskId: "m-1" });
    expect(third.body).toEqual(a.body);
    expect(src.inspect().commands["vm/migrate"]).toMatchObject({ executed: 1, deduplicated: 2 });
    expect(sim!.timeline().filter((e) => e.event === "migrate-copy-start")).toHaveLength(1);
  });

  it("an aborted migration's repeat with the same task id answers MIGRATION_ABORTED from the cache, and does not copy again", async () => {
    const { src, dst } = await setup();
    const { reply } = await copying(src, migrateBody(dst), "m-1");
    src.abortMigration("vm");
    expect((await reply).body.error.code).toBe("MIGRATION_ABORTED");
    expect((await post(src.url, "vm/migrate", migrateBody(dst), { taskId: "m-1" })).body.error.code).toBe("MIGRATION_ABORTED");
    expect(src.state.migrations.copying("vm")).toBeUndefined();
  });

  it("the source agent's death fails the copy: no answer, the VM stays on the source", async () => {
    const { src, dst } = await setup();
    const { reply } = await copying(src, migrateBody(dst));
    const ended = once(src.state.migrations.events, "copy-end");
    await src.stop();
    expect((await ended)[0]).toMatchObject({ vmUuid: "vm", state: "failed" });
    await expect(reply).rejects.toThrow();
    expect(src.state.migrations.status("vm")?.state).toBe("failed");
    expect(vmsOf(src)).toEqual(["vm"]);
    expect(vmsOf(dst)).toEqual([]);
    expect(sim!.timeline().filter((e) => e.event === "migrate-copy-end")).toEqual([expect.objectContaining({ vmUuid: "vm", outcome: "failed", hostUuid: src.uuid })]);
  });

  it("a target that stops answering during the copy fails the migration (503) and nothing moves", async () => {
    const { src, dst } = await setup();
    const { reply } = await copying(src, migrateBody(dst));
    await dst.stop();
    src.completeMigration("vm");
    const answered = await reply;
    expect(answered.status).toBe(503);
    expect(answered.body.error.code).toBe("TARGET_HOST_UNREACHABLE");
    expect(src.state.migrations.status("vm")?.state).toBe("failed");
    expect(vmsOf(src)).toEqual(["vm"]);
    expect(dst.inspect().vms).toEqual([]);
  });

  it("the control endpoint ends a copy like completeMigration", async () => {
    const { src, dst } = await setup();
    const { reply } = await copying(src, migrateBody(dst));
    expect((await request(`${sim!.controlUrl!}/hosts/0/migrations/vm/complete`, "POST", {})).status).toBe(200);
    expect((await reply).status).toBe(200);
    expect((await request(`${sim!.controlUrl!}/hosts/0/migrations/vm/complete`, "POST", {})).body.error.code).toBe("MIGRATION_NOT_FOUND");
  });
});
