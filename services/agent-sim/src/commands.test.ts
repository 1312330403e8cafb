import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAgentSim, type AgentSim } from "./index";
import { post, vmSpec } from "./test-support";

let sim: AgentSim;
let a: string;
let b: string;

beforeAll(async () => {
  sim = await startAgentSim({ hosts: 2 });
  a = sim.host(0).url;
  b = sim.host(1).url;
});
afterAll(() => sim.close());

describe("host commands", () => {
  it("connect returns the host facts and records the caller's host uuid", async () => {
    const reply = await post(a, "host/connect", { hostUuid: "mn-host-1" });
    expect(reply.status).toBe(200);
    expect(reply.body).toMatchObject({ hostUuid: sim.host(0).uuid, hypervisorType: "KVM", agentVersion: expect.any(String), cpuNum: expect.any(Number), memoryBytes: expect.any(Number), bootId: expect.any(String) });
    expect(sim.host(0).inspect().connection).toMatchObject({ hostUuid: "mn-host-1", count: 1 });
  });

  it("ping answers the host uuid and boot id; a restart changes the boot id, keeps VMs, forgets task ids, fails volume tasks", async () => {
    const before = await post(b, "host/ping");
    expect(before.body).toMatchObject({ hostUuid: sim.host(1).uuid });
    await post(b, "vm/start", vmSpec("vm-r"), { taskId: "start-r" });
    await post(b, "volume/task/start", { volumeUuid: "v", kind: "backup", taskUuid: "bk-r", durationMs: 60_000 });
    await sim.host(1).stop();
    await expect(post(b, "host/ping")).rejects.toThrow();
    await sim.host(1).start();
    const after = await post(b, "host/ping");
    expect(sim.host(1).url).toBe(b);
    expect(after.body.bootId).not.toBe(before.body.bootId);
    expect(sim.host(1).inspect().vms.map((v) => v.vmUuid)).toEqual(["vm-r"]);
    expect(sim.host(1).inspect().volumeTasks.find((t) => t.taskUuid === "bk-r")?.state).toBe("failed");
    await post(b, "vm/start", vmSpec("vm-r"), { taskId: "start-r" });
    expect(sim.host(1).inspect().commands["vm/start"]).toMatchObject({ executed: 2, deduplicated: 0 });
  });

  it("vms lists what the hypervisor runs and in which state", async () => {
    await post(a, "vm/start", vmSpec("vm-l1"));
    await post(a, "vm/start", vmSpec("vm-l2"));
    await post(a, "vm/stop", { vmUuid: "vm-l2" });
    const reply = await post(a, "host/vms");
    expect(reply.body.vms).toEqual(expect.arrayContaining([{ vmUuid: "vm-l1", state: "running" }, { vmUuid: "vm-l2", state: "stopped" }]));
  });
});

describe("request validation", () => {
  it("unknown command is 404 UNKNOWN_COMMAND", async () => {
    const reply = await post(a, "vm/teleport", { vmUuid: "x" });
    expect(reply.status).toBe(404);
    expect(reply.body.error).toMatchObject({ code: "UNKNOWN_COMMAND", message: expect.stringContaining("vm/teleport") });
  });

  it("malformed JSON is 400 MALFORMED_JSON", async () => {
    const reply = await post(a, "vm/start", "{not json");
    expect(reply.status).toBe(400);
    expect(reply.body.error.code).toBe("MALFORMED_JSON");
  });

  it("a non-object body is 400 INVALID_BODY", async () => {
    const reply = await post(a, "vm/start", "[1,2]");
    expect(reply.status).toBe(400);
    expect(reply.body.error.code).toBe("INVALID_BODY");
  });

  it("a missing field is 400 naming the field", async () => {
    const reply = await post(a, "vm/start", { vmUuid: "vm-x", cpuNum: 1 });
    expect(reply.status).toBe(400);
    expect(reply.body.error).toEqual({ code: "MISSING_FIELD", message: "missing field: memoryBytes" });
  });

  it("a mistyped field is 400 naming the field", async () => {
    const reply = await post(a, "vm/start", { vmUuid: "vm-x", cpuNum: "two", memoryBytes: 1 });
    expect(reply.status).toBe(400);
    expect(reply.body.error).toMatchObject({ code: "INVALID_FIELD", message: expect.stringContaining("cpuNum") });
  });

  it("GET on a command is 405", async () => {
    const res = await fetch(`${a}/host/ping`);
    expect(res.status).toBe(405);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("METHOD_NOT_ALLOWED");
  });

  it("an invalid task id header is 400", async () => {
    const reply = await post(a, "host/ping", {}, { taskId: "has spaces" });
    expect(reply.status).toBe(400);
    expect(reply.body.error.code).toBe("INVALID_TASK_ID");
  });
});

describe("vm commands", () => {
  it("start creates an unknown VM running, and is a no-op on a running one", async () => {
    const first = await post(a, "vm/start", vmSpec("vm-1", { nics: [{ nicUuid: "nic-1", mac: "fa:16:3e:00:00:01", ip: "10.0.0.5" }] }));
    expect(first.status).toBe(200);
    expect(first.body).toEqual({ vmUuid: "vm-1", state: "running", alreadyRunning: false });
    const again = await post(a, "vm/start", vmSpec("vm-1"));
    expect(again.body.alreadyRunning).toBe(true);
    const state = sim.host(0).inspect();
    expect(state.vms.find((v) => v.vmUuid === "vm-1")).toMatchObject({ state: "running", cpuNum: 2, memoryBytes: 2 * 1024 ** 3 });
    expect(state.nics.find((n) => n.nicUuid === "nic-1")).toMatchObject({ vmUuid: "vm-1", ip: "10.0.0.5" });
  });

  it("stop is idempotent, also for an unknown VM", async () => {
    await post(a, "vm/start", vmSpec("vm-2"));
    expect((await post(a, "vm/stop", { vmUuid: "vm-2" })).body).toEqual({ vmUuid: "vm-2", state: "stopped", found: true });
    expect((await post(a, "vm/stop", { vmUuid: "vm-2" })).status).toBe(200);
    expect((await post(a, "vm/stop", { vmUuid: "never-existed" })).body).toMatchObject({ state: "stopped", found: false });
    expect(sim.host(0).inspect().vms.find((v) => v.vmUuid === "vm-2")?.state).toBe("stopped");
  });

  it("reboot needs a running VM", async () => {
    expect((await post(a, "vm/reboot", { vmUuid: "ghost" })).status).toBe(404);
    await post(a, "vm/start", vmSpec("vm-3"));
    expect((await post(a, "vm/reboot", { vmUuid: "vm-3" })).status).toBe(200);
    await post(a, "vm/stop", { vmUuid: "vm-3" });
    const reply = await post(a, "vm/reboot", { vmUuid: "vm-3" });
    expect(reply.status).toBe(409);
    expect(reply.body.error.code).toBe("VM_NOT_RUNNING");
  });

  it("destroy removes the VM and its vNICs, and succeeds when it is gone", async () => {
    await post(a, "vm/start", vmSpec("vm-4", { nics: [{ nicUuid: "nic-4" }] }));
    expect((await post(a, "vm/destroy", { vmUuid: "vm-4" })).body).toMatchObject({ found: true });
    expect((await post(a, "vm/destroy", { vmUuid: "vm-4" })).body).toMatchObject({ found: false });
    const state = sim.host(0).inspect();
    expect(state.vms.some((v) => v.vmUuid === "vm-4")).toBe(false);
    expect(state.nics.some((n) => n.nicUuid === "nic-4")).toBe(false);
  });

  it("migrate moves the VM and its vNICs to the target named by URL or uuid; EIP rules stay", async () => {
    await post(a, "vm/start", vmSpec("vm-5", { nics: [{ nicUuid: "nic-5", ip: "10.0.0.9" }] }));
    await post(a, "eip/apply", { eipUuid: "eip-5", vip: "172.16.0.5", guestIp: "10.0.0.9", nicUuid: "nic-5" });
    const reply = await post(a, "vm/migrate", { vmUuid: "vm-5", targetAgentUrl: `${b}/` });
    expect(reply.status).toBe(200);
    expect(reply.body).toMatchObject({ sourceHostUuid: sim.host(0).uuid, targetHostUuid: sim.host(1).uuid });
    const [src, dst] = [sim.host(0).inspect(), sim.host(1).inspect()];
    expect(src.vms.some((v) => v.vmUuid === "vm-5")).toBe(false);
    expect(dst.vms.find((v) => v.vmUuid === "vm-5")).toMatchObject({ state: "running", migratedFrom: sim.host(0).uuid });
    expect(dst.nics.find((n) => n.nicUuid === "nic-5")).toMatchObject({ vmUuid: "vm-5" });
    expect(src.eips.some((e) => e.eipUuid === "eip-5")).toBe(true);

    const back = await post(b, "vm/migrate", { vmUuid: "vm-5", targetHostUuid: sim.host(0).uuid });
    expect(back.status).toBe(200);
    expect(sim.host(0).inspect().vms.some((v) => v.vmUuid === "vm-5")).toBe(true);
  });

  it("migrate rejects a missing target, an unknown target, the same host, and an unknown VM", async () => {
    await post(a, "vm/start", vmSpec("vm-6"));
    expect((await post(a, "vm/migrate", { vmUuid: "vm-6" })).body.error.message).toBe("missing field: targetHostUuid");
    expect((await post(a, "vm/migrate", { vmUuid: "vm-6", targetHostUuid: "nope" })).body.error.code).toBe("TARGET_HOST_NOT_FOUND");
    expect((await post(a, "vm/migrate", { vmUuid: "vm-6", targetAgentUrl: a })).status).toBe(400);
    expect((await post(a, "vm/migrate", { vmUuid: "ghost", targetAgentUrl: b })).body.error.code).toBe("VM_NOT_FOUND");
  });

  it("migrate to a host whose agent is down fails and leaves the VM where it was", async () => {
    await post(a, "vm/start", vmSpec("vm-7"));
    await sim.host(1).stop();
    try {
      const reply = await post(a, "vm/migrate", { vmUuid: "vm-7", targetHostUuid: sim.host(1).uuid });
      expect(reply.status).toBe(503);
      expect(reply.body.error.code).toBe("TARGET_HOST_UNREACHABLE");
      expect(sim.host(0).inspect().vms.find((v) => v.vmUuid === "vm-7")?.state).toBe("running");
    } finally {
      await sim.host(1).start();
    }
  });
});

describe("nic and eip commands", () => {
  it("nic/apply needs the VM on the host; release is idempotent", async () => {
    expect((await post(a, "nic/apply", { nicUuid: "nic-9", vmUuid: "ghost" })).status).toBe(404);
    await post(a, "vm/start", vmSpec("vm-9"));
    expect((await post(a, "nic/apply", { nicUuid: "nic-9", vmUuid: "vm-9", ip: "10.0.0.10" })).status).toBe(200);
    expect(sim.host(0).inspect().nics.find((n) => n.nicUuid === "nic-9")).toMatchObject({ vmUuid: "vm-9", ip: "10.0.0.10" });
    expect((await post(a, "nic/release", { nicUuid: "nic-9" })).body.found).toBe(true);
    expect((await post(a, "nic/release", { nicUuid: "nic-9" })).body.found).toBe(false);
  });

  it("eip rules are keyed by eip uuid: apply replaces, a taken vip is refused, release is idempotent", async () => {
    const rule = { eipUuid: "eip-1", vip: "172.16.0.1", guestIp: "10.0.0.1", nicUuid: "nic-a" };
    expect((await post(a, "eip/apply", rule)).status).toBe(200);
    expect((await post(a, "eip/apply", { ...rule, guestIp: "10.0.0.2" })).status).toBe(200);
    expect(sim.host(0).inspect().eips.filter((e) => e.eipUuid === "eip-1")).toEqual([expect.objectContaining({ guestIp: "10.0.0.2" })]);
    const clash = await post(a, "eip/apply", { ...rule, eipUuid: "eip-2" });
    expect(clash.status).toBe(409);
    expect(clash.body.error.code).toBe("VIP_IN_USE");
    expect((await post(a, "eip/apply", { eipUuid: "eip-3", vip: "1.1.1.1", nicUuid: "n" })).body.error.message).toBe("missing field: guestIp");
    expect((await post(a, "eip/release", { eipUuid: "eip-1" })).body.found).toBe(true);
    expect((await post(a, "eip/release", { eipUuid: "eip-1" })).body.found).toBe(false);
  });
});

describe("volume chain tasks", () => {
  it("a task runs for its duration then succeeds", async () => {
    const started = await post(a, "volume/task/start", { volumeUuid: "vol-1", kind: "snapshot", durationMs: 100 });
    expect(started.body.task).toMatchObject({ volumeUuid: "vol-1", kind: "snapshot", state: "running" });
    const taskUuid = started.body.task.taskUuid as string;
    const done = await sim.host(0).waitForVolumeTaskExit(taskUuid);
    expect(done.state).toBe("succeeded");
    expect((await post(a, "volume/task/status", { taskUuid })).body.tasks[0].state).toBe("succeeded");
  });

  it("cancel stops one task; status filters by volume and kind", async () => {
    const backup = await post(a, "volume/task/start", { volumeUuid: "vol-2", kind: "backup", taskUuid: "bk-1", durationMs: 60_000, backupStorageUuid: "bs-1" });
    await post(a, "volume/task/start", { volumeUuid: "vol-2", kind: "snapshot", taskUuid: "sn-1", durationMs: 60_000 });
    expect(backup.body.task.args).toEqual({ backupStorageUuid: "bs-1" });
    expect((await post(a, "volume/task/status", { volumeUuid: "vol-2", kind: "backup" })).body.tasks.map((t: any) => t.taskUuid)).toEqual(["bk-1"]);
    expect((await post(a, "volume/task/cancel", { taskUuid: "bk-1" })).body.task.state).toBe("cancelled");
    expect((await post(a, "volume/task/cancel", { taskUuid: "bk-1" })).status).toBe(200);
    const running = (await post(a, "volume/task/status", { volumeUuid: "vol-2" })).body.tasks;
    expect(running.map((t: any) => t.taskUuid)).toEqual(["sn-1"]);
    expect((await post(a, "volume/task/cancel", { taskUuid: "nope" })).body.error.code).toBe("VOLUME_TASK_NOT_FOUND");
    sim.host(0).finishVolumeTask("sn-1");
  });

  it("start with a known task uuid returns it; with other arguments it conflicts", async () => {
    await post(a, "volume/task/start", { volumeUuid: "vol-3", kind: "backup", taskUuid: "bk-3", durationMs: 60_000 });
    expect((await post(a, "volume/task/start", { volumeUuid: "vol-3", kind: "backup", taskUuid: "bk-3" })).body.task.taskUuid).toBe("bk-3");
    expect((await post(a, "volume/task/start", { volumeUuid: "vol-4", kind: "backup", taskUuid: "bk-3" })).status).toBe(409);
    sim.host(0).finishVolumeTask("bk-3", "failed");
    expect((await post(a, "volume/task/status", { taskUuid: "bk-3" })).body.tasks[0].state).toBe("failed");
  });

  it("with a cancel delay, a cancelled task is `cancelling` until it exits", async () => {
    const slow = await startAgentSim({ volumeTaskCancelDelayMs: 150 });
    try {
      const url = slow.host(0).url;
      await post(url, "volume/task/start", { volumeUuid: "v", kind: "backup", taskUuid: "t", durationMs: 60_000 });
      expect((await post(url, "volume/task/cancel", { taskUuid: "t" })).body.task.state).toBe("cancelling");
      expect((await slow.host(0).waitForVolumeTaskExit("t")).state).toBe("cancelled");
    } finally {
      await slow.close();
    }
  });
});

describe("inspection", () => {
  it("counts commands received and executed, and keeps a log", async () => {
    const fresh = await startAgentSim();
    try {
      const url = fresh.host(0).url;
      await post(url, "host/ping");
      await post(url, "host/ping");
      await post(url, "vm/start", { vmUuid: "v" });
      const state = fresh.inspect()[0]!;
      expect(state.commands["host/ping"]).toEqual({ received: 2, executed: 2, deduplicated: 0, faulted: 0 });
      expect(state.commands["vm/start"]).toMatchObject({ received: 1, executed: 1 });
      expect(state.log.map((l) => [l.command, l.outcome])).toEqual([["host/ping", 200], ["host/ping", 200], ["vm/start", 400]]);
    } finally {
      await fresh.close();
    }
  });
});

describe("a handler that fails unexpectedly", () => {
  it("answers that request 500 and keeps serving", async () => {
    const sim = await startAgentSim({ commands: { "bad/answer": () => ({ n: 1n }) as never } });
    try {
      const url = sim.host(0).url;
      const reply = await post(url, "bad/answer");
      expect(reply.status).toBe(500);
      expect((await post(url, "host/ping")).status).toBe(200);
    } finally {
      await sim.close();
    }
  });
});
