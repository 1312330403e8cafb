import { afterEach, describe, expect, it } from "vitest";
import { startAgentSim, type AgentSim } from "./index";
import { TaskCache } from "./task-cache";
import { causeCode, post, vmSpec } from "./test-support";

let sim: AgentSim | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

describe("task-id dedup (X-Task-Id)", () => {
  it("a repeated task id is answered from the first execution, not run twice", async () => {
    sim = await startAgentSim();
    const url = sim.host(0).url;
    const first = await post(url, "vm/start", vmSpec("vm-1"), { taskId: "t-1" });
    await post(url, "vm/stop", { vmUuid: "vm-1" });
    const repeat = await post(url, "vm/start", vmSpec("vm-1"), { taskId: "t-1" });
    expect(repeat).toMatchObject({ status: 200, body: first.body });
    expect(sim.host(0).inspect().vms[0]!.state).toBe("stopped"); // the repeat did not start it again
    expect(sim.host(0).inspect().commands["vm/start"]).toMatchObject({ received: 2, executed: 1, deduplicated: 1 });
  });

  it("an error answer is remembered too", async () => {
    sim = await startAgentSim();
    const url = sim.host(0).url;
    const first = await post(url, "vm/reboot", { vmUuid: "ghost" }, { taskId: "t-err" });
    await post(url, "vm/start", vmSpec("ghost"));
    expect(await post(url, "vm/reboot", { vmUuid: "ghost" }, { taskId: "t-err" })).toMatchObject({ status: 404, body: first.body });
  });

  it("a concurrent duplicate waits for the running first execution and gets its answer", async () => {
    sim = await startAgentSim({ latency: { commands: { "vm/start": 200 } } });
    const url = sim.host(0).url;
    const [a, b] = await Promise.all([
      post(url, "vm/start", vmSpec("vm-2"), { taskId: "t-2" }),
      post(url, "vm/start", vmSpec("vm-2"), { taskId: "t-2" }),
    ]);
    expect(a).toMatchObject({ status: 200, body: { alreadyRunning: false } });
    expect(b.body).toEqual(a.body);
    expect(sim.host(0).inspect().commands["vm/start"]).toMatchObject({ received: 2, executed: 1, deduplicated: 1 });
  });

  it("the same task id for another command is 409 TASK_ID_CONFLICT", async () => {
    sim = await startAgentSim();
    const url = sim.host(0).url;
    await post(url, "vm/start", vmSpec("vm-3"), { taskId: "t-3" });
    const reply = await post(url, "vm/stop", { vmUuid: "vm-3" }, { taskId: "t-3" });
    expect(reply.status).toBe(409);
    expect(reply.body.error.code).toBe("TASK_ID_CONFLICT");
  });

  it("the same task id with another body is 409 TASK_ID_CONFLICT, and the second request does not run", async () => {
    sim = await startAgentSim();
    const url = sim.host(0).url;
    await post(url, "eip/apply", { eipUuid: "e-1", vip: "10.0.0.1", guestIp: "192.168.0.1", nicUuid: "n-1" }, { taskId: "t-body" });
    const reply = await post(url, "eip/apply", { eipUuid: "e-2", vip: "10.0.0.2", guestIp: "192.168.0.2", nicUuid: "n-2" }, { taskId: "t-body" });
    expect(reply.status).toBe(409);
    expect(reply.body.error.code).toBe("TASK_ID_CONFLICT");
    // Key order does not make a body different.
    const again = await post(url, "eip/apply", { nicUuid: "n-1", guestIp: "192.168.0.1", vip: "10.0.0.1", eipUuid: "e-1" }, { taskId: "t-body" });
    expect(again.status).toBe(200);
    expect(sim.host(0).inspect().eips.map((e) => e.eipUuid)).toEqual(["e-1"]);
  });

  it("task ids are per host", async () => {
    sim = await startAgentSim({ hosts: 2 });
    await post(sim.host(0).url, "vm/start", vmSpec("vm-4"), { taskId: "t-4" });
    await post(sim.host(1).url, "vm/start", vmSpec("vm-4"), { taskId: "t-4" });
    expect(sim.host(1).inspect().commands["vm/start"]!.executed).toBe(1);
  });

  it("a reset before execution forgets the task id: the retry runs the command once", async () => {
    sim = await startAgentSim();
    const url = sim.host(0).url;
    sim.host(0).injectFault({ command: "vm/start", kind: "reset", times: 1 });
    const err = await post(url, "vm/start", vmSpec("vm-5"), { taskId: "t-5" }).catch((e: unknown) => e);
    expect(causeCode(err)).toBe("ECONNRESET");
    expect(sim.host(0).inspect().vms).toHaveLength(0);
    expect((await post(url, "vm/start", vmSpec("vm-5"), { taskId: "t-5" })).status).toBe(200);
    expect(sim.host(0).inspect().commands["vm/start"]).toMatchObject({ received: 2, executed: 1, deduplicated: 0 });
  });

  it("a reset after execution keeps the answer: the retry gets it without running again", async () => {
    sim = await startAgentSim();
    const url = sim.host(0).url;
    sim.host(0).injectFault({ command: "vm/start", kind: "reset", phase: "after", times: 1 });
    const err = await post(url, "vm/start", vmSpec("vm-6"), { taskId: "t-6" }).catch((e: unknown) => e);
    expect(causeCode(err)).toBe("ECONNRESET");
    expect(sim.host(0).inspect().vms).toHaveLength(1); // it ran
    const retry = await post(url, "vm/start", vmSpec("vm-6"), { taskId: "t-6" });
    expect(retry).toMatchObject({ status: 200, body: { alreadyRunning: false } });
    expect(sim.host(0).inspect().commands["vm/start"]).toMatchObject({ received: 2, executed: 1, deduplicated: 1 });
  });
});

describe("TaskCache bounds", () => {
  it("evicts the least recently used answered entries beyond maxEntries, never running ones", async () => {
    const cache = new TaskCache({ maxEntries: 2 });
    const running = cache.claim("running", "c");
    for (const id of ["a", "b", "c"]) {
      const o = cache.claim(id, "c");
      if (o.kind === "owner") o.settle({ status: 200, body: id });
    }
    expect(cache.size).toBe(2);
    expect(cache.claim("running", "c").kind).toBe("duplicate");
    expect(cache.claim("c", "c").kind).toBe("duplicate");
    expect(cache.claim("a", "c").kind).toBe("owner");
    if (running.kind === "owner") running.drop();
  });

  it("forgets answered entries after the TTL", () => {
    let now = 0;
    const cache = new TaskCache({ ttlMs: 1000, now: () => now });
    const o = cache.claim("x", "c");
    if (o.kind === "owner") o.settle({ status: 200, body: {} });
    now = 999;
    expect(cache.claim("x", "c").kind).toBe("duplicate");
    now = 1000;
    expect(cache.claim("x", "c").kind).toBe("owner");
  });
});
