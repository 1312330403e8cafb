import { afterEach, describe, expect, it } from "vitest";
import { startAgentSim, type AgentSim } from "./index";
import { post, vmSpec } from "./test-support";

let sim: AgentSim | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

describe("fencing tokens", () => {
  it("refuses a command whose token is older than the newest seen for its resource, with 409 FENCED, and runs nothing", async () => {
    sim = await startAgentSim();
    const host = sim.host(0);
    expect((await post(host.url, "vm/start", vmSpec("vm-1"), { fence: "vm:vm-1=5" })).status).toBe(200);
    const stale = await post(host.url, "vm/stop", { vmUuid: "vm-1" }, { fence: "vm:vm-1=4", taskId: "stop-stale" });
    expect(stale.status).toBe(409);
    expect(stale.body.error.code).toBe("FENCED");
    expect(stale.body.error.message).toContain("fencing token 4 for vm:vm-1 is older than 5");
    expect(host.inspect().vms[0]!.state).toBe("running");
    // The same token again (the same owner's next command) and a newer one pass; another resource is independent.
    expect((await post(host.url, "vm/reboot", { vmUuid: "vm-1" }, { fence: "vm:vm-1=5" })).status).toBe(200);
    expect((await post(host.url, "vm/start", vmSpec("vm-2"), { fence: "vm:vm-2=1" })).status).toBe(200);
    expect((await post(host.url, "vm/stop", { vmUuid: "vm-1" }, { fence: "vm:vm-1=9" })).status).toBe(200);
    expect(host.inspect().fencing).toEqual({ refused: 1, overlaps: 0, resources: 2 });
    expect(host.inspect().log.find((e) => e.taskId === "stop-stale")).toMatchObject({ outcome: 409, fence: "vm:vm-1=4" });
  });

  it("runs a newer token only after the older command still executing on the resource ended, and counts the overlap", async () => {
    sim = await startAgentSim();
    const host = sim.host(0);
    const hold = host.hold("vm/start");
    const old = post(host.url, "vm/start", vmSpec("vm-1"), { fence: "vm:vm-1=1" });
    const held = await hold.next(5_000);
    // The new owner asks what runs while the old owner's start is still in the hypervisor.
    let answered = false;
    const query = post(host.url, "host/vms", {}, { fence: "vm:vm-1=2" }).then((r) => ((answered = true), r));
    await new Promise((r) => setTimeout(r, 100));
    expect(answered).toBe(false);
    held.release();
    expect((await old).status).toBe(200);
    const seen = await query;
    expect(seen.status).toBe(200);
    expect(seen.body.vms.find((v: { vmUuid: string }) => v.vmUuid === "vm-1")?.state).toBe("running");
    expect(host.inspect().fencing.overlaps).toBe(1);
  });

  it("refuses a malformed token with 400 INVALID_FENCING_TOKEN", async () => {
    sim = await startAgentSim();
    const r = await post(sim.host(0).url, "vm/start", vmSpec("vm-1"), { fence: "vm-1" });
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe("INVALID_FENCING_TOKEN");
    expect(sim.host(0).inspect().vms).toHaveLength(0);
  });
});
