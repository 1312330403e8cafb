import { once } from "node:events";
import { VOLUME_TASK_WAIT_MAX_MS } from "@stratum/agent-protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAgentSim, type AgentSim } from "./index";
import { post, request } from "./test-support";
import { VolumeTaskRunner } from "./volume-tasks";

const MiB = 1024 ** 2;
let sim: AgentSim;
let a: string;

beforeAll(async () => {
  // Chunks of 1 MiB; tests that drive chunks by hand use durations of minutes, so no chunk ends on its own.
  sim = await startAgentSim({ chunkBytes: MiB, controlPort: 0 });
  a = sim.host(0).url;
});
afterAll(() => sim.close());

const host = () => sim.host(0);

describe("byte tasks (sizeBytes)", () => {
  it("count their bytes in whole chunks, and report bytesTotal once succeeded", async () => {
    const start = await post(a, "volume/task/start", { volumeUuid: "b1", kind: "backup", taskUuid: "b1-bk", sizeBytes: 3 * MiB + 1, durationMs: 600_000 });
    expect(start.status).toBe(200);
    expect(start.body.task).toMatchObject({ state: "running", bytesDone: 0, bytesTotal: 3 * MiB + 1, args: { sizeBytes: 3 * MiB + 1 } });
    expect(host().endVolumeTaskChunk("b1-bk")).toMatchObject({ state: "running", bytesDone: MiB });
    expect(host().endVolumeTaskChunk("b1-bk")).toMatchObject({ state: "running", bytesDone: 2 * MiB });
    expect((await post(a, "volume/task/status", { taskUuid: "b1-bk" })).body.tasks[0]).toMatchObject({ state: "running", bytesDone: 2 * MiB });
    expect(host().endVolumeTaskChunk("b1-bk")).toMatchObject({ state: "running", bytesDone: 3 * MiB });
    // The fourth chunk holds the one byte left: the last chunk ends the task.
    expect(host().endVolumeTaskChunk("b1-bk")).toMatchObject({ state: "succeeded", bytesDone: 3 * MiB + 1 });
  });

  it("incremental moves ceil(sizeBytes / 8)", async () => {
    const start = await post(a, "volume/task/start", { volumeUuid: "b2", kind: "backup", taskUuid: "b2-bk", sizeBytes: 8 * MiB + 1, incremental: true, durationMs: 600_000 });
    expect(start.body.task).toMatchObject({ bytesDone: 0, bytesTotal: MiB + 1 });
    host().finishVolumeTask("b2-bk");
    expect(host().state.volumeTasks.get("b2-bk")).toMatchObject({ state: "succeeded", bytesDone: MiB + 1 });
  });

  it("a cancel takes effect at the end of the chunk in progress: cancelling until then, a wait pending", async () => {
    await post(a, "volume/task/start", { volumeUuid: "b3", kind: "backup", taskUuid: "b3-bk", sizeBytes: 10 * MiB, durationMs: 600_000 });
    host().endVolumeTaskChunk("b3-bk");
    const cancel = await post(a, "volume/task/cancel", { taskUuid: "b3-bk" });
    expect(cancel.body.task).toMatchObject({ state: "cancelling", bytesDone: MiB });
    const registered = once(host().state.volumeTasks.events, "waiting");
    const wait = post(a, "volume/task/wait", { taskUuids: ["b3-bk"], timeoutMs: VOLUME_TASK_WAIT_MAX_MS });
    await registered;
    // A second cancel changes nothing; the chunk still runs.
    expect((await post(a, "volume/task/cancel", { taskUuid: "b3-bk" })).body.task.state).toBe("cancelling");
    expect(host().state.volumeTasks.pendingWaits).toBe(1);
    // The chunk ends (over the control endpoint, as an out-of-process test would): cancelled, its bytes counted.
    const ended = await request(`${sim.controlUrl!}/hosts/0/volume-tasks/b3-bk/end-chunk`, "POST", {});
    expect(ended.body.task).toMatchObject({ state: "cancelled", bytesDone: 2 * MiB, bytesTotal: 10 * MiB });
    expect((await wait).body).toEqual({ exited: true, running: [] });
  });

  it("chunks end on their own over the duration (never sooner), and many tiny chunks do not take a tick each", async () => {
    const runner = new VolumeTaskRunner();
    try {
      // 4 chunks over 200 ms: a timer never fires early, so the last chunk cannot end before 200 ms.
      const began = performance.now();
      runner.start({ taskUuid: "t", volumeUuid: "v", kind: "backup", durationMs: 200, args: {}, bytes: { bytesTotal: 4 * MiB, chunkBytes: MiB } });
      expect(runner.get("t")).toMatchObject({ state: "running", bytesDone: 0 });
      expect(await runner.waitForExit("t")).toMatchObject({ state: "succeeded", bytesDone: 4 * MiB });
      expect(performance.now() - began).toBeGreaterThanOrEqual(199);

      // 100,000 chunks in 50 ms: done by the duration, not by 100,000 timer ticks.
      const again = performance.now();
      runner.start({ taskUuid: "many", volumeUuid: "v", kind: "backup", durationMs: 50, args: {}, bytes: { bytesTotal: 100_000, chunkBytes: 1 } });
      const done = await runner.waitForExit("many");
      expect(done).toMatchObject({ state: "succeeded", bytesDone: 100_000 });
      expect(performance.now() - again).toBeLessThan(2_000);
    } finally {
      runner.stop();
    }
  });

  it("the agent's death fails a copy in progress, keeping the bytes it had moved", async () => {
    const other = await startAgentSim({ chunkBytes: MiB });
    try {
      await post(other.host(0).url, "volume/task/start", { volumeUuid: "v", kind: "backup", taskUuid: "t", sizeBytes: 4 * MiB, durationMs: 600_000 });
      other.host(0).endVolumeTaskChunk("t");
      await other.host(0).stop();
      expect(other.host(0).state.volumeTasks.get("t")).toMatchObject({ state: "failed", bytesDone: MiB });
    } finally {
      await other.close();
    }
  });

  it("tasks without sizeBytes have no byte counts and behave as before", async () => {
    const start = await post(a, "volume/task/start", { volumeUuid: "b4", kind: "snapshot", taskUuid: "b4-sn", durationMs: 600_000 });
    expect(start.body.task).not.toHaveProperty("bytesDone");
    expect(start.body.task).not.toHaveProperty("bytesTotal");
    // Not a byte task: ending a chunk does nothing.
    expect(host().endVolumeTaskChunk("b4-sn")?.state).toBe("running");
    expect((await post(a, "volume/task/cancel", { taskUuid: "b4-sn" })).body.task.state).toBe("cancelled");
  });

  it("bad sizes are a 400 naming the field, and start nothing", async () => {
    const cases: Array<[Record<string, unknown>, string, string]> = [
      [{ sizeBytes: 0 }, "INVALID_FIELD", "sizeBytes"],
      [{ sizeBytes: -5 }, "INVALID_FIELD", "sizeBytes"],
      [{ sizeBytes: 1.5 }, "INVALID_FIELD", "sizeBytes"],
      [{ sizeBytes: "10" }, "INVALID_FIELD", "sizeBytes"],
      [{ sizeBytes: 10, incremental: "yes" }, "INVALID_FIELD", "incremental"],
      [{ incremental: true }, "MISSING_FIELD", "sizeBytes"],
    ];
    for (const [extra, code, field] of cases) {
      const reply = await post(a, "volume/task/start", { volumeUuid: "b5", kind: "backup", ...extra });
      expect(reply.status, JSON.stringify(extra)).toBe(400);
      expect(reply.body.error.code, JSON.stringify(extra)).toBe(code);
      expect(reply.body.error.message, JSON.stringify(extra)).toContain(`field: ${field}`);
    }
    expect(host().state.volumeTasks.list({ volumeUuid: "b5", includeFinished: true })).toEqual([]);
  });
});
