import { afterEach, describe, expect, it } from "vitest";
import { startAgentSim, type AgentSim } from "./index";
import { causeCode, post, request, vmSpec } from "./test-support";

let sim: AgentSim | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

describe("hold until released", () => {
  it("holds a request, lets the test await its arrival, and runs it on release", async () => {
    sim = await startAgentSim({ hosts: 2 });
    const [a, b] = [sim.host(0), sim.host(1)];
    await post(a.url, "vm/start", vmSpec("vm-1"));
    const hold = a.hold("eip/apply");
    const apply = post(a.url, "eip/apply", { eipUuid: "eip-1", vip: "172.16.0.1", guestIp: "10.0.0.1", nicUuid: "nic-1" }, { taskId: "apply-1" });
    const held = await hold.next(5_000);
    expect(held).toMatchObject({ command: "eip/apply", taskId: "apply-1", hostUuid: a.uuid, body: { eipUuid: "eip-1" } });
    // Interleave: the VM migrates away while the apply is in flight.
    expect((await post(a.url, "vm/migrate", { vmUuid: "vm-1", targetHostUuid: b.uuid })).status).toBe(200);
    expect(a.inspect().eips).toHaveLength(0);
    held.release();
    expect((await apply).status).toBe(200);
    expect(a.inspect().eips).toHaveLength(1);
  });

  it("release with a fault: the held request fails that way", async () => {
    sim = await startAgentSim();
    const host = sim.host(0);
    const hold = host.hold("vm/start", { times: 2 });
    const first = post(host.url, "vm/start", vmSpec("vm-1"));
    const second = post(host.url, "vm/start", vmSpec("vm-2")).catch((e: unknown) => e);
    const r1 = await hold.next(5_000);
    const r2 = await hold.next(5_000);
    expect([r1.body, r2.body].map((b: any) => b.vmUuid).sort()).toEqual(["vm-1", "vm-2"]);
    const byVm = new Map([r1, r2].map((r) => [(r.body as { vmUuid: string }).vmUuid, r]));
    byVm.get("vm-1")!.release({ kind: "http500", message: "no" });
    byVm.get("vm-2")!.release({ kind: "reset" });
    expect(await first).toMatchObject({ status: 500, body: { error: { message: "no" } } });
    expect(causeCode(await second)).toBe("ECONNRESET");
    expect(host.inspect().vms).toHaveLength(0);
  });

  it("a hold is exhausted after `times`; later requests pass", async () => {
    sim = await startAgentSim();
    const host = sim.host(0);
    const hold = host.hold("host/ping");
    const held = post(host.url, "host/ping");
    const arrived = await hold.next(5_000); // the first request is the held one, whatever the timing
    expect((await post(host.url, "host/ping")).status).toBe(200);
    arrived.release();
    expect((await held).status).toBe(200);
  });

  it("next() times out when nothing arrives", async () => {
    sim = await startAgentSim();
    await expect(sim.host(0).hold("host/ping").next(50)).rejects.toThrow(/no host\/ping request arrived/);
  });

  it("cancel releases held requests normally", async () => {
    sim = await startAgentSim();
    const host = sim.host(0);
    const hold = host.hold("host/ping");
    const held = post(host.url, "host/ping");
    await hold.next(5_000);
    hold.cancel();
    expect((await held).status).toBe(200);
  });

  it("works over the control endpoint: create, long-poll the arrival, release with a fault", async () => {
    sim = await startAgentSim({ controlPort: 0 });
    const control = sim.controlUrl!;
    const host = sim.host(0);
    const created = await request(`${control}/hosts/${host.uuid}/holds`, "POST", { command: "vm/stop" });
    const holdId = created.body.holdId as string;
    const early = await request(`${control}/holds/${holdId}/next?timeoutMs=50`, "POST");
    expect(early.status).toBe(408);
    const stop = post(host.url, "vm/stop", { vmUuid: "v" });
    const arrived = await request(`${control}/holds/${holdId}/next?timeoutMs=5000`, "POST");
    expect(arrived.body).toMatchObject({ command: "vm/stop", body: { vmUuid: "v" }, hostUuid: host.uuid });
    const released = await request(`${control}/held/${arrived.body.id}/release`, "POST", { fault: { kind: "http500", status: 502 } });
    expect(released.status).toBe(200);
    expect((await stop).status).toBe(502);
    expect((await request(`${control}/held/${arrived.body.id}/release`, "POST", {})).status).toBe(404);
  });

  it("a held request ends when the sim closes", async () => {
    sim = await startAgentSim();
    const host = sim.host(0);
    const hold = host.hold("host/ping");
    const held = post(host.url, "host/ping").catch((e: unknown) => e);
    await hold.next(5_000); // it is held, not merely on its way
    await sim.close();
    sim = undefined;
    expect(await held).toBeInstanceOf(Error);
  });
});
