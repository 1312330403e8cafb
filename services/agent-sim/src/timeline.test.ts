import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAgentSim, type AgentSim } from "./index";
import { post, request, vmSpec } from "./test-support";
import { Timeline } from "./timeline";

describe("Timeline", () => {
  it("keeps the newest `limit` entries with contiguous seqs and monotonic times; since and clear keep cursors valid", () => {
    const t = new Timeline(5);
    for (let i = 0; i < 12; i++) t.append("h", { event: "command", command: `c${i}` });
    const all = t.list();
    expect(all.map((e) => e.seq)).toEqual([8, 9, 10, 11, 12]);
    expect(all.map((e) => (e.event === "command" ? e.command : ""))).toEqual(["c7", "c8", "c9", "c10", "c11"]);
    expect(all.every((e, i) => i === 0 || e.atMs >= all[i - 1]!.atMs)).toBe(true);
    expect(t.list(10).map((e) => e.seq)).toEqual([11, 12]);
    expect(t.list(2).map((e) => e.seq)).toEqual([8, 9, 10, 11, 12]);
    expect(t.list(12)).toEqual([]);
    // A copy: changing it changes nothing kept.
    all[0]!.hostUuid = "changed";
    expect(t.list()[0]!.hostUuid).toBe("h");
    t.clear();
    expect(t.list()).toEqual([]);
    t.append("h", { event: "command", command: "after" });
    expect(t.list(12).map((e) => e.seq)).toEqual([13]);
    expect(() => new Timeline(0)).toThrow(RangeError);
  });
});

describe("the sim's timeline", () => {
  let sim: AgentSim;
  beforeAll(async () => {
    sim = await startAgentSim({ hosts: 2, controlPort: 0, migrateDurationMs: 600_000 });
  });
  afterAll(() => sim.close());

  it("logs command arrivals, volume task starts and exits, and migration copies, in order, per host", async () => {
    const [a, b] = [sim.host(0), sim.host(1)];
    sim.clearTimeline();
    await post(a.url, "vm/start", vmSpec("vm"), { taskId: "start-vm" });
    await post(a.url, "volume/task/start", { volumeUuid: "d1", kind: "backup", taskUuid: "bk", durationMs: 600_000 });
    a.finishVolumeTask("bk");
    const copyStarted = new Promise((r) => a.state.migrations.events.once("copy-start", r));
    const migrate = post(a.url, "vm/migrate", { vmUuid: "vm", targetHostUuid: b.uuid, volumeUuids: ["d1"] });
    await copyStarted;
    a.completeMigration("vm");
    expect((await migrate).status).toBe(200);
    await post(b.url, "host/ping");

    const entries = sim.timeline();
    const described = entries.map(({ seq: _s, atMs: _a, ...rest }) => rest);
    expect(described).toEqual([
      { hostUuid: a.uuid, event: "command", command: "vm/start", taskId: "start-vm" },
      { hostUuid: a.uuid, event: "command", command: "volume/task/start" },
      { hostUuid: a.uuid, event: "volume-task-start", taskUuid: "bk", volumeUuid: "d1", kind: "backup" },
      { hostUuid: a.uuid, event: "volume-task-exit", taskUuid: "bk", volumeUuid: "d1", kind: "backup", state: "succeeded" },
      { hostUuid: a.uuid, event: "command", command: "vm/migrate" },
      { hostUuid: a.uuid, event: "migrate-copy-start", vmUuid: "vm", volumeUuids: ["d1"] },
      { hostUuid: a.uuid, event: "migrate-copy-end", vmUuid: "vm", outcome: "succeeded" },
      { hostUuid: b.uuid, event: "command", command: "host/ping" },
    ]);
    expect(entries.every((e, i) => i === 0 || (e.seq === entries[i - 1]!.seq + 1 && e.atMs >= entries[i - 1]!.atMs))).toBe(true);
  });

  it("is served over the control endpoint: GET /timeline?since=, POST /timeline/clear", async () => {
    sim.clearTimeline();
    await post(sim.host(0).url, "host/ping");
    await post(sim.host(1).url, "host/ping");
    const all = await request(`${sim.controlUrl!}/timeline`, "GET");
    expect(all.status).toBe(200);
    expect(all.body.entries.map((e: any) => e.hostUuid)).toEqual([sim.host(0).uuid, sim.host(1).uuid]);
    const since = await request(`${sim.controlUrl!}/timeline?since=${all.body.entries[0].seq}`, "GET");
    expect(since.body.entries).toEqual([all.body.entries[1]]);
    expect((await request(`${sim.controlUrl!}/timeline?since=-1`, "GET")).status).toBe(400);
    expect((await request(`${sim.controlUrl!}/timeline/clear`, "POST")).status).toBe(200);
    expect((await request(`${sim.controlUrl!}/timeline`, "GET")).body.entries).toEqual([]);
  });
});
