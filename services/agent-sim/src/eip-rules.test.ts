import { afterEach, describe, expect, it } from "vitest";
import { startAgentSim, type AgentSim, type SimHost } from "./index";
import { post, request, vmSpec } from "./test-support";

let sim: AgentSim | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

/** A host with VM vm-1 (vNIC nic-1) holding eip-1, VM vm-2 (nic-2) holding eip-2, and eip-0 applied without a VM. */
async function hostWithRules(options: { controlPort?: number } = {}) {
  sim = await startAgentSim({ hosts: 1, ...options });
  const host = sim.host(0);
  await post(host.url, "vm/start", vmSpec("vm-1", { nics: [{ nicUuid: "nic-1", ip: "10.0.0.1" }] }));
  await post(host.url, "vm/start", vmSpec("vm-2", { nics: [{ nicUuid: "nic-2", ip: "10.0.0.2" }] }));
  // Applied out of uuid order: the list answers by eip uuid.
  expect((await post(host.url, "eip/apply", { eipUuid: "eip-2", vip: "172.16.0.2", guestIp: "10.0.0.2", nicUuid: "nic-2", vmUuid: "vm-2" })).status).toBe(200);
  expect((await post(host.url, "eip/apply", { eipUuid: "eip-1", vip: "172.16.0.1", guestIp: "10.0.0.1", nicUuid: "nic-1", vmUuid: "vm-1" })).status).toBe(200);
  expect((await post(host.url, "eip/apply", { eipUuid: "eip-0", vip: "172.16.0.9", guestIp: "10.0.0.9", nicUuid: "nic-x" })).status).toBe(200);
  return host;
}

const EIP_0 = { eipUuid: "eip-0", vip: "172.16.0.9", guestIp: "10.0.0.9", nicUuid: "nic-x" };
const EIP_1 = { eipUuid: "eip-1", vip: "172.16.0.1", guestIp: "10.0.0.1", nicUuid: "nic-1", vmUuid: "vm-1" };
const EIP_2 = { eipUuid: "eip-2", vip: "172.16.0.2", guestIp: "10.0.0.2", nicUuid: "nic-2", vmUuid: "vm-2" };

/**
 * Stops the agent and checks it is down before anything else: the failed call also makes the
 * client drop its keep-alive socket to the dead agent, which it would otherwise reuse once.
 */
async function stopAgent(host: SimHost, stop: () => Promise<unknown> = () => host.stop()): Promise<void> {
  await stop();
  await expect(post(host.url, "host/ping")).rejects.toThrow();
  expect(host.listening).toBe(false);
}

const listed = async (url: string, body: unknown = {}) => {
  const reply = await post(url, "eip/list", body);
  expect(reply.status).toBe(200);
  return reply.body.eips;
};

describe("eip/list", () => {
  it("lists the applied rules by eip uuid, as the protocol names them, and honours the vmUuid filter", async () => {
    const host = await hostWithRules();
    // toEqual: no sim bookkeeping (appliedAt) and no vmUuid on a rule applied without one.
    expect(await listed(host.url)).toEqual([EIP_0, EIP_1, EIP_2]);
    expect(await listed(host.url, { vmUuid: "vm-2" })).toEqual([EIP_2]);
    expect(await listed(host.url, { vmUuid: "vm-unknown" })).toEqual([]);
    // A re-apply replaces the rule: the list shows what the host has now.
    await post(host.url, "eip/apply", { ...EIP_1, guestIp: "10.0.0.11" });
    expect(await listed(host.url, { vmUuid: "vm-1" })).toEqual([{ ...EIP_1, guestIp: "10.0.0.11" }]);
  });

  it("no longer lists a released rule", async () => {
    const host = await hostWithRules();
    expect((await post(host.url, "eip/release", { eipUuid: "eip-1" })).body.found).toBe(true);
    expect(await listed(host.url)).toEqual([EIP_0, EIP_2]);
    expect(await listed(host.url, { vmUuid: "vm-1" })).toEqual([]);
  });

  it("refuses a filter it does not understand instead of listing everything", async () => {
    const host = await hostWithRules();
    const misspelt = await post(host.url, "eip/list", { vmUUID: "vm-1" });
    expect(misspelt).toMatchObject({ status: 400, body: { error: { code: "INVALID_FIELD", message: "unknown field: vmUUID (eip/list takes vmUuid)" } } });
    expect((await post(host.url, "eip/list", { vmUuid: 7 })).body.error.message).toBe("invalid field: vmUuid must be a string");
    expect((await post(host.url, "eip/list", { vmUuid: "" })).body.error.message).toBe("invalid field: vmUuid must be a non-empty string");
  });

  it("is retried without a task id and never deduplicated into a stale answer", async () => {
    const host = await hostWithRules();
    expect(await listed(host.url)).toHaveLength(3);
    await post(host.url, "eip/release", { eipUuid: "eip-0" });
    expect(await listed(host.url)).toEqual([EIP_1, EIP_2]);
    expect(host.inspect().commands["eip/list"]).toMatchObject({ executed: 2, deduplicated: 0 });
  });
});

describe("a restart that loses the EIP rules", () => {
  it("start({ loseEipRules: true }) after a stop drops the rules but keeps VMs and vNICs", async () => {
    const host = await hostWithRules();
    const before = host.inspect();
    await stopAgent(host);
    await host.start({ loseEipRules: true });
    const after = host.inspect();
    expect(after.facts.bootId).not.toBe(before.facts.bootId);
    expect(after.eips).toEqual([]);
    expect(await listed(host.url)).toEqual([]);
    expect(after.vms).toEqual(before.vms);
    expect(after.nics).toEqual(before.nics);
    // The NAT table is usable again: the management plane re-applies what its database says.
    expect((await post(host.url, "eip/apply", EIP_1)).status).toBe(200);
    expect(await listed(host.url)).toEqual([EIP_1]);
  });

  it("a plain restart keeps the rules (they live in the hypervisor)", async () => {
    const host = await hostWithRules();
    await stopAgent(host);
    await host.start();
    expect(await listed(host.url)).toEqual([EIP_0, EIP_1, EIP_2]);
  });

  it("refuses loseEipRules on a running host and changes nothing", async () => {
    const host = await hostWithRules();
    await expect(host.start({ loseEipRules: true })).rejects.toThrow(/is running: stop it before/);
    expect(await listed(host.url)).toEqual([EIP_0, EIP_1, EIP_2]);
    await host.start(); // a plain start of a running host stays a no-op
    expect(host.listening).toBe(true);
  });

  it("clearEipRules() drops the rules at once, without a restart, and keeps VMs and vNICs", async () => {
    const host = await hostWithRules();
    const before = host.inspect();
    expect(host.clearEipRules()).toBe(3);
    const after = host.inspect();
    expect(after.eips).toEqual([]);
    expect(after.facts.bootId).toBe(before.facts.bootId);
    expect(after.vms).toEqual(before.vms);
    expect(after.nics).toEqual(before.nics);
    expect(host.clearEipRules()).toBe(0);
  });
});

describe("control routes", () => {
  it("POST /hosts/:h/start with { loseEipRules: true } drops the rules; without it keeps them", async () => {
    const host = await hostWithRules({ controlPort: 0 });
    const control = sim!.controlUrl!;
    const nicsBefore = host.inspect().nics;
    await stopAgent(host, () => request(`${control}/hosts/0/stop`, "POST"));
    expect((await request(`${control}/hosts/0/start`, "POST")).status).toBe(200);
    expect(await listed(host.url)).toEqual([EIP_0, EIP_1, EIP_2]);

    await stopAgent(host, () => request(`${control}/hosts/0/stop`, "POST"));
    expect((await request(`${control}/hosts/${host.uuid}/start`, "POST", { loseEipRules: true })).status).toBe(200);
    expect(await listed(host.url)).toEqual([]);
    expect(host.inspect().vms.map((v) => v.vmUuid).sort()).toEqual(["vm-1", "vm-2"]);
    expect(host.inspect().nics).toEqual(nicsBefore);
  });

  it("refuses a bad start body with a message naming the field, and leaves the host stopped", async () => {
    const host = await hostWithRules({ controlPort: 0 });
    const control = sim!.controlUrl!;
    await stopAgent(host, () => request(`${control}/hosts/0/stop`, "POST"));
    const misspelt = await request(`${control}/hosts/0/start`, "POST", { loseEipRule: true });
    expect(misspelt).toMatchObject({ status: 400, body: { error: { message: "unknown field: loseEipRule (start takes loseEipRules)" } } });
    const notBoolean = await request(`${control}/hosts/0/start`, "POST", { loseEipRules: "yes" });
    expect(notBoolean).toMatchObject({ status: 400, body: { error: { message: "invalid field: loseEipRules must be a boolean" } } });
    expect(host.listening).toBe(false);
    expect(host.inspect().eips).toHaveLength(3);
    // On a running host a start that would lose the rules is a conflict, not a silent no-op.
    await request(`${control}/hosts/0/start`, "POST");
    const running = await request(`${control}/hosts/0/start`, "POST", { loseEipRules: true });
    expect(running).toMatchObject({ status: 409, body: { error: { code: "HOST_RUNNING" } } });
    expect(await listed(host.url)).toHaveLength(3);
  });

  it("POST /hosts/:h/eips/clear drops the rules of that host only and says how many", async () => {
    sim = await startAgentSim({ hosts: 2, controlPort: 0 });
    const [h0, h1] = [sim.host(0), sim.host(1)];
    await post(h0.url, "eip/apply", EIP_0);
    await post(h0.url, "eip/apply", EIP_1);
    await post(h1.url, "eip/apply", EIP_2);
    const cleared = await request(`${sim.controlUrl!}/hosts/${h0.uuid}/eips/clear`, "POST");
    expect(cleared).toMatchObject({ status: 200, body: { cleared: 2 } });
    expect(await listed(h0.url)).toEqual([]);
    expect(await listed(h1.url)).toEqual([EIP_2]);
    expect((await request(`${sim.controlUrl!}/hosts/0/eips/clear`, "POST")).body).toEqual({ cleared: 0 });
    expect((await request(`${sim.controlUrl!}/hosts/9/eips/clear`, "POST")).status).toBe(404);
  });
});
