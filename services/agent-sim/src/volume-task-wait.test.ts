import { once } from "node:events";
import { VOLUME_TASK_WAIT_MAX_MS } from "@stratum/agent-protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAgentSim, type AgentSim } from "./index";
import { post, request } from "./test-support";

let sim: AgentSim;
let a: string;

beforeAll(async () => {
  // A cancelled task takes "forever" to exit, so each test decides when it does (finish): the
  // order of events is forced, not left to a timer.
  sim = await startAgentSim({ volumeTaskCancelDelayMs: 600_000, controlPort: 0 });
  a = sim.host(0).url;
});
afterAll(() => sim.close());

const runner = () => sim.host(0).state.volumeTasks;

/**
 * Sends a wait and resolves once the agent has registered it as pending (or it has answered);
 * the reply is wrapped so that awaiting this does not await the reply too.
 */
async function pendingWait(body: unknown): Promise<{ reply: ReturnType<typeof post> }> {
  const registered = once(runner().events, "waiting");
  const reply = post(a, "volume/task/wait", body);
  await Promise.race([registered, reply]);
  return { reply };
}

describe("volume/task/wait", () => {
  it("answers at once when no task of those kinds runs on those volumes", async () => {
    await post(a, "volume/task/start", { volumeUuid: "w0", kind: "snapshot", taskUuid: "w0-sn", durationMs: 600_000 });
    const reply = await post(a, "volume/task/wait", { volumeUuids: ["w0", "w0-other"], kinds: ["backup"], timeoutMs: VOLUME_TASK_WAIT_MAX_MS });
    expect(reply.status).toBe(200);
    expect(reply.body).toEqual({ exited: true, running: [] });
    expect(runner().pendingWaits).toBe(0);
    sim.host(0).finishVolumeTask("w0-sn");
  });

  it("answers when the backup exits, not before; a snapshot on the same volume does not block it", async () => {
    await post(a, "volume/task/start", { volumeUuid: "w1", kind: "backup", taskUuid: "w1-bk", durationMs: 600_000 });
    await post(a, "volume/task/start", { volumeUuid: "w1", kind: "snapshot", taskUuid: "w1-sn", durationMs: 600_000 });
    const events: string[] = [];
    runner().events.on("exit", (t) => events.push(`exit ${t.taskUuid}`));
    const { reply: wait } = await pendingWait({ volumeUuids: ["w1"], kinds: ["backup"], timeoutMs: VOLUME_TASK_WAIT_MAX_MS });
    void wait.then(() => events.push("wait answered"));
    expect(runner().pendingWaits).toBe(1);

    const finished = await request(`${sim.controlUrl!}/hosts/0/volume-tasks/w1-bk/finish`, "POST", {});
    expect(finished.body.task.state).toBe("succeeded");
    const reply = await wait;
    expect(reply.body).toEqual({ exited: true, running: [] });
    expect(events).toEqual(["exit w1-bk", "wait answered"]);
    // The snapshot still runs: it never blocked the wait for backups.
    expect((await post(a, "volume/task/status", { volumeUuid: "w1", kind: "snapshot" })).body.tasks.map((t: any) => t.state)).toEqual(["running"]);
    runner().events.removeAllListeners("exit");
    sim.host(0).finishVolumeTask("w1-sn");
  });

  it("a wait without kinds waits for every kind, across the volumes it names", async () => {
    await post(a, "volume/task/start", { volumeUuid: "w2a", kind: "backup", taskUuid: "w2-bk", durationMs: 600_000 });
    await post(a, "volume/task/start", { volumeUuid: "w2b", kind: "resize", taskUuid: "w2-rs", durationMs: 600_000 });
    const { reply: wait } = await pendingWait({ volumeUuids: ["w2a", "w2b"], timeoutMs: VOLUME_TASK_WAIT_MAX_MS });
    sim.host(0).finishVolumeTask("w2-bk");
    // One of two exited: still pending.
    expect(runner().pendingWaits).toBe(1);
    sim.host(0).finishVolumeTask("w2-rs", "failed");
    expect((await wait).body).toEqual({ exited: true, running: [] });
  });

  it("a cancelled backup is still running while it is cancelling; the wait answers after it really exits", async () => {
    await post(a, "volume/task/start", { volumeUuid: "w3", kind: "backup", taskUuid: "w3-bk", durationMs: 600_000 });
    const { reply: wait } = await pendingWait({ volumeUuids: ["w3"], kinds: ["backup"], timeoutMs: VOLUME_TASK_WAIT_MAX_MS });
    let answered = false;
    void wait.then(() => (answered = true));
    expect((await post(a, "volume/task/cancel", { taskUuid: "w3-bk" })).body.task.state).toBe("cancelling");
    // The wait is pending while the task is cancelling (the agent holds it, not just the client).
    expect((await post(a, "volume/task/status", { taskUuid: "w3-bk" })).body.tasks[0].state).toBe("cancelling");
    expect(runner().pendingWaits).toBe(1);
    expect(answered).toBe(false);

    // The delayed exit of the cancel (forced now rather than after the delay).
    sim.host(0).finishVolumeTask("w3-bk", "cancelled");
    expect((await wait).body).toEqual({ exited: true, running: [] });
    expect(runner().get("w3-bk")?.state).toBe("cancelled");
  });

  it("with a real cancel delay, the wait is answered by the delayed exit itself", async () => {
    const slow = await startAgentSim({ volumeTaskCancelDelayMs: 50 });
    try {
      const url = slow.host(0).url;
      const tasks = slow.host(0).state.volumeTasks;
      const order: string[] = [];
      tasks.events.on("exit", (t) => order.push(`exit ${t.state}`));
      await post(url, "volume/task/start", { volumeUuid: "v", kind: "backup", taskUuid: "t", durationMs: 600_000 });
      const registered = once(tasks.events, "waiting");
      const wait = post(url, "volume/task/wait", { volumeUuids: ["v"], kinds: ["backup"], timeoutMs: VOLUME_TASK_WAIT_MAX_MS });
      await registered;
      const cancel = await post(url, "volume/task/cancel", { taskUuid: "t" });
      order.push(`cancel answered ${cancel.body.task.state}`);
      const reply = await wait;
      order.push("wait answered");
      expect(reply.body).toEqual({ exited: true, running: [] });
      // "cancel answered" and "exit" are both before "wait answered"; the exit is the cancel's delayed one.
      expect(order.indexOf("exit cancelled")).toBeGreaterThanOrEqual(0);
      expect(order.indexOf("exit cancelled")).toBeLessThan(order.indexOf("wait answered"));
      expect(order.indexOf("cancel answered cancelling")).toBeLessThan(order.indexOf("wait answered"));
    } finally {
      await slow.close();
    }
  });

  it("at the timeout answers exited=false with the tasks still running", async () => {
    await post(a, "volume/task/start", { volumeUuid: "w4", kind: "backup", taskUuid: "w4-bk", durationMs: 600_000, backupStorageUuid: "bs" });
    await post(a, "volume/task/cancel", { taskUuid: "w4-bk" });
    const reply = await post(a, "volume/task/wait", { volumeUuids: ["w4"], kinds: ["backup", "snapshot"], timeoutMs: 20 });
    expect(reply.status).toBe(200);
    expect(reply.body.exited).toBe(false);
    expect(reply.body.running).toEqual([expect.objectContaining({ taskUuid: "w4-bk", volumeUuid: "w4", kind: "backup", state: "cancelling", args: { backupStorageUuid: "bs" } })]);
    // timeoutMs 0 is a check: same answer, no wait registered.
    expect((await post(a, "volume/task/wait", { volumeUuids: ["w4"], timeoutMs: 0 })).body).toMatchObject({ exited: false, running: [{ taskUuid: "w4-bk" }] });
    expect(runner().pendingWaits).toBe(0);
    sim.host(0).finishVolumeTask("w4-bk", "cancelled");
  });

  it("a host stop answers pending waits (its tasks failed), leaving none behind", async () => {
    const other = await startAgentSim();
    try {
      const url = other.host(0).url;
      const tasks = other.host(0).state.volumeTasks;
      await post(url, "volume/task/start", { volumeUuid: "v", kind: "backup", taskUuid: "t", durationMs: 600_000 });
      const registered = once(tasks.events, "waiting");
      const wait = post(url, "volume/task/wait", { volumeUuids: ["v"], timeoutMs: VOLUME_TASK_WAIT_MAX_MS }).catch((err: unknown) => err);
      await registered;
      await other.host(0).stop();
      expect(tasks.pendingWaits).toBe(0);
      expect(tasks.get("t")?.state).toBe("failed");
      await wait; // the connection died with the agent; either way it is over
    } finally {
      await other.close();
    }
  });

  it("taskUuids: waits for the named tasks wherever they run, alone or with volumeUuids (a task matching either counts)", async () => {
    await post(a, "volume/task/start", { volumeUuid: "t1a", kind: "backup", taskUuid: "t1-a", durationMs: 600_000 });
    await post(a, "volume/task/start", { volumeUuid: "t1b", kind: "backup", taskUuid: "t1-b", durationMs: 600_000 });
    await post(a, "volume/task/start", { volumeUuid: "t1c", kind: "backup", taskUuid: "t1-c", durationMs: 600_000 });
    // Unknown and other-kind tasks do not block; a named task of another kind is filtered by kinds too.
    expect((await post(a, "volume/task/wait", { taskUuids: ["nope"], timeoutMs: 0 })).body).toEqual({ exited: true, running: [] });
    expect((await post(a, "volume/task/wait", { taskUuids: ["t1-a"], kinds: ["snapshot"], timeoutMs: 0 })).body).toEqual({ exited: true, running: [] });

    const { reply: wait } = await pendingWait({ taskUuids: ["t1-a"], volumeUuids: ["t1b"], timeoutMs: VOLUME_TASK_WAIT_MAX_MS });
    // t1-c is on neither: its exit changes nothing.
    sim.host(0).finishVolumeTask("t1-c");
    sim.host(0).finishVolumeTask("t1-a");
    expect(runner().pendingWaits).toBe(1);
    const check = await post(a, "volume/task/wait", { taskUuids: ["t1-a"], volumeUuids: ["t1b"], timeoutMs: 0 });
    expect(check.body.running.map((t: any) => t.taskUuid)).toEqual(["t1-b"]);
    sim.host(0).finishVolumeTask("t1-b", "failed");
    expect((await wait).body).toEqual({ exited: true, running: [] });
    expect(runner().pendingWaits).toBe(0);

    // Named alone (volumeUuids empty is fine when taskUuids names one): answered by that task's exit.
    await post(a, "volume/task/start", { volumeUuid: "t1d", kind: "backup", taskUuid: "t1-d", durationMs: 600_000 });
    const { reply: byTask } = await pendingWait({ volumeUuids: [], taskUuids: ["t1-d"], timeoutMs: VOLUME_TASK_WAIT_MAX_MS });
    sim.host(0).finishVolumeTask("t1-d");
    expect((await byTask).body).toEqual({ exited: true, running: [] });
  });

  it("bad input is a 400 naming the field, and waits for nothing", async () => {
    const cases: Array<[unknown, string, string]> = [
      [{ timeoutMs: 10 }, "MISSING_FIELD", "volumeUuids"],
      [{ volumeUuids: [], timeoutMs: 10 }, "INVALID_FIELD", "volumeUuids"],
      [{ volumeUuids: "w5", timeoutMs: 10 }, "INVALID_FIELD", "volumeUuids"],
      [{ volumeUuids: ["w5", 7], timeoutMs: 10 }, "INVALID_FIELD", "volumeUuids[1]"],
      [{ volumeUuids: ["w5"], kinds: [], timeoutMs: 10 }, "INVALID_FIELD", "kinds"],
      [{ volumeUuids: ["w5"], kinds: ["Backup"], timeoutMs: 10 }, "INVALID_FIELD", "kinds[0]"],
      [{ volumeUuids: ["w5"] }, "MISSING_FIELD", "timeoutMs"],
      [{ volumeUuids: ["w5"], timeoutMs: "10" }, "INVALID_FIELD", "timeoutMs"],
      [{ volumeUuids: ["w5"], timeoutMs: -1 }, "INVALID_FIELD", "timeoutMs"],
      [{ volumeUuids: ["w5"], timeoutMs: VOLUME_TASK_WAIT_MAX_MS + 1 }, "INVALID_FIELD", "timeoutMs"],
      [{ volumeUuids: ["w5"], timeoutMs: 1.5 }, "INVALID_FIELD", "timeoutMs"],
      [{ volumeUuids: ["w5"], kind: "backup", timeoutMs: 10 }, "INVALID_FIELD", "kind"],
      [{ volumeUuids: [], taskUuids: [], timeoutMs: 10 }, "INVALID_FIELD", "volumeUuids"],
      [{ taskUuids: [], timeoutMs: 10 }, "INVALID_FIELD", "taskUuids"],
      [{ taskUuids: "w5-bk", timeoutMs: 10 }, "INVALID_FIELD", "taskUuids"],
      [{ taskUuids: ["w5-bk", ""], timeoutMs: 10 }, "INVALID_FIELD", "taskUuids[1]"],
      [{ taskUuids: Array.from({ length: 257 }, (_, i) => `t${i}`), timeoutMs: 10 }, "INVALID_FIELD", "taskUuids"],
    ];
    await post(a, "volume/task/start", { volumeUuid: "w5", kind: "backup", taskUuid: "w5-bk", durationMs: 600_000 });
    for (const [body, code, field] of cases) {
      const reply = await post(a, "volume/task/wait", body);
      expect(reply.status, JSON.stringify(body)).toBe(400);
      expect(reply.body.error.code, JSON.stringify(body)).toBe(code);
      expect(reply.body.error.message, JSON.stringify(body)).toContain(`field: ${field}`);
    }
    expect(runner().pendingWaits).toBe(0);
    sim.host(0).finishVolumeTask("w5-bk");
  });
});

describe("task kinds", () => {
  it("start requires a valid kind; status filters by kind and refuses a malformed one", async () => {
    expect((await post(a, "volume/task/start", { volumeUuid: "k1" })).body.error).toMatchObject({ code: "MISSING_FIELD", message: "missing field: kind" });
    for (const kind of ["Backup", "back up", 7, "x".repeat(65)]) {
      const reply = await post(a, "volume/task/start", { volumeUuid: "k1", kind });
      expect(reply.status, String(kind)).toBe(400);
      expect(reply.body.error.message).toContain("field: kind");
    }
    expect(runner().list({ volumeUuid: "k1", includeFinished: true })).toEqual([]);

    await post(a, "volume/task/start", { volumeUuid: "k1", kind: "backup", taskUuid: "k1-bk", durationMs: 600_000 });
    await post(a, "volume/task/start", { volumeUuid: "k1", kind: "resize", taskUuid: "k1-rs", durationMs: 600_000 });
    expect((await post(a, "volume/task/status", { volumeUuid: "k1", kind: "resize" })).body.tasks.map((t: any) => t.taskUuid)).toEqual(["k1-rs"]);
    expect((await post(a, "volume/task/status", { volumeUuid: "k1", kind: "Resize" })).body.error.code).toBe("INVALID_FIELD");
    expect((await post(a, "volume/task/status", { volumeUuid: "k1", includeFinished: "yes" })).body.error.message).toContain("field: includeFinished");
    sim.host(0).finishVolumeTask("k1-bk");
    sim.host(0).finishVolumeTask("k1-rs");
  });
});
