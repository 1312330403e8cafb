import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { VmState } from "@stratum/proto/stratum/compute/v1/vm_pb";
import { Code, StratumError } from "@stratum/core";
import { GIB, startComputeStack, type ComputeStack } from "./harness";
import { until } from "./until";

let stack: ComputeStack;
let hostUuids: string[];

beforeAll(async () => {
  // A short vm/start deadline so the "agent hangs" case fails in half a second, not two minutes.
  stack = await startComputeStack({ replicas: 2, hosts: 3, compute: { agent: { commands: { "vm/start": { timeoutMs: 500 } } } } });
  hostUuids = await stack.addSimHosts(8, 32n);
});
afterAll(() => stack?.stop());
afterEach(() => {
  for (const h of stack.sim.hosts) h.clearFaults();
});

const host = async (uuid: string) => (await stack.hosts.getHost({ uuid })).host!;
const simHost = (i: number) => stack.sim.hosts[i]!;

/** Creates a VM on host `i` expecting failure; returns the error and the VM it left behind. */
async function failedCreate(i: number, name: string) {
  const err = await stack.vms.createVm({ name, cpu: 2, memoryBytes: 2n * GIB, hostUuid: hostUuids[i]! }).catch((e) => e);
  expect(err).toBeInstanceOf(StratumError);
  const vm = (await stack.vms.getVm({ uuid: err.resources.vmUuid })).vm!;
  return { err, vm };
}

describe("agent faults during create", () => {
  it("a 500 on start leaves the VM in Error with the agent's error, capacity released", async () => {
    const before = await host(hostUuids[0]!);
    simHost(0).injectFault({ command: "vm/start", kind: "http500", message: "libvirt: out of disk" });
    const { err, vm } = await failedCreate(0, "fails-500");
    expect(err.reason).toBe("AGENT_ERROR");
    expect(err.message).toContain("vm/start");
    expect(err.message).toContain(simHost(0).url);
    expect(err.message).toContain("out of disk");
    expect(vm.state).toBe(VmState.ERROR);
    expect(vm.hostUuid).toBe("");
    expect(vm.lastError).toContain("out of disk");
    expect((await host(hostUuids[0]!)).cpuUsed).toBe(before.cpuUsed);
    expect(simHost(0).inspect().vms.find((v) => v.vmUuid === vm.uuid)).toBeUndefined();
  });

  it("an agent that hangs past the timeout leaves the VM in Error, capacity released", async () => {
    const before = await host(hostUuids[1]!);
    simHost(1).injectFault({ command: "vm/start", kind: "hang" });
    const { err, vm } = await failedCreate(1, "hangs");
    expect(err.code).toBe(Code.DEADLINE_EXCEEDED);
    expect(err.message).toContain("vm/start");
    expect(err.message).toContain(simHost(1).url);
    expect(vm.state).toBe(VmState.ERROR);
    expect((await host(hostUuids[1]!)).cpuUsed).toBe(before.cpuUsed);
  });

  it("a connection reset on every attempt leaves the VM in Error, capacity released", async () => {
    const before = await host(hostUuids[2]!);
    simHost(2).injectFault({ command: "vm/start", kind: "reset" });
    const { err, vm } = await failedCreate(2, "resets");
    expect(err.code).toBe(Code.UNAVAILABLE);
    expect(err.message).toContain("vm/start");
    expect(vm.state).toBe(VmState.ERROR);
    expect((await host(hostUuids[2]!)).cpuUsed).toBe(before.cpuUsed);
  });

  it("a start the agent ran but never answered is undone on the agent, capacity released", async () => {
    const before = await host(hostUuids[1]!);
    simHost(1).injectFault({ command: "vm/start", kind: "hang", phase: "after", times: 1 });
    const { err, vm } = await failedCreate(1, "hangs-after");
    expect(err.code).toBe(Code.DEADLINE_EXCEEDED);
    expect(vm.state).toBe(VmState.ERROR);
    expect(simHost(1).inspect().vms.find((v) => v.vmUuid === vm.uuid)).toBeUndefined();
    expect((await host(hostUuids[1]!)).cpuUsed).toBe(before.cpuUsed);
  });

  it("when the cleanup fails too, the VM keeps its host and capacity until a destroy reaches the agent", async () => {
    const before = await host(hostUuids[1]!);
    simHost(1).injectFault({ command: "vm/start", kind: "hang", phase: "after", times: 1 });
    simHost(1).injectFault({ command: "vm/destroy", kind: "http500", times: 1 });
    const { vm } = await failedCreate(1, "undo-fails");
    expect(vm.state).toBe(VmState.ERROR);
    expect(vm.hostUuid).toBe(hostUuids[1]);
    expect(vm.lastError).toContain("destroy the VM to clean up");
    expect(simHost(1).inspect().vms.find((v) => v.vmUuid === vm.uuid)?.state).toBe("running");
    expect((await host(hostUuids[1]!)).cpuUsed).toBe(before.cpuUsed + 2);
    await stack.vms.destroyVm({ uuid: vm.uuid });
    expect(simHost(1).inspect().vms.find((v) => v.vmUuid === vm.uuid)).toBeUndefined();
    expect((await host(hostUuids[1]!)).cpuUsed).toBe(before.cpuUsed);
  });

  it("a reset after the agent acted is retried under the same task id and the VM runs once", async () => {
    simHost(2).injectFault({ command: "vm/start", kind: "reset", phase: "after", times: 1 });
    const { vm } = await stack.vms.createVm({ name: "reset-once", cpu: 1, memoryBytes: GIB, hostUuid: hostUuids[2]! });
    expect(vm!.state).toBe(VmState.RUNNING);
    const starts = simHost(2).inspect().log.filter((l) => l.command === "vm/start" && (l as { body?: { vmUuid?: string } }).body?.vmUuid === vm!.uuid);
    expect(simHost(2).inspect().vms.find((v) => v.vmUuid === vm!.uuid)?.state).toBe("running");
    expect(starts.length).toBeLessThanOrEqual(2); // the repeat is answered from the first execution
    await stack.vms.destroyVm({ uuid: vm!.uuid });
  });
});

describe("agent faults on a running VM", () => {
  it("a failed stop returns the VM to Running with the error recorded", async () => {
    const { vm } = await stack.vms.createVm({ name: "stop-fails", cpu: 1, memoryBytes: GIB, hostUuid: hostUuids[0]! });
    simHost(0).injectFault({ command: "vm/stop", kind: "http500", message: "guest did not shut down" });
    const err = await stack.vms.stopVm({ uuid: vm!.uuid }).catch((e) => e);
    expect(err).toMatchObject({ reason: "AGENT_ERROR", resources: { vmUuid: vm!.uuid } });
    const after = (await stack.vms.getVm({ uuid: vm!.uuid })).vm!;
    expect(after.state).toBe(VmState.RUNNING);
    expect(after.lastError).toContain("guest did not shut down");
    simHost(0).clearFaults();
    expect((await stack.vms.stopVm({ uuid: vm!.uuid })).vm!.lastError).toBe("");
    await stack.vms.destroyVm({ uuid: vm!.uuid });
  });
});

describe("caller deadlines", () => {
  it("a caller that gives up does not undo what the agent did: the operation completes and the database agrees", async () => {
    const { vm } = await stack.vms.createVm({ name: "slow-stop", cpu: 1, memoryBytes: GIB, hostUuid: hostUuids[2]! });
    simHost(2).injectFault({ command: "vm/stop", kind: "slow", delayMs: 600, times: 1 });
    const err = await stack.vms.stopVm({ uuid: vm!.uuid }, { timeoutMs: 150 }).catch((e) => e);
    expect(err).toMatchObject({ code: Code.DEADLINE_EXCEEDED });
    await until(async () => (await stack.vms.getVm({ uuid: vm!.uuid })).vm!.state === VmState.STOPPED, "the stop to complete");
    expect(simHost(2).inspect().vms.find((v) => v.vmUuid === vm!.uuid)?.state).toBe("stopped");
    await stack.vms.destroyVm({ uuid: vm!.uuid });
  });
});

describe("serialization and capacity", () => {
  it("operations on one VM queue behind each other on its owner (forced with a held agent reply)", async () => {
    const { vm } = await stack.vms.createVm({ name: "serial", cpu: 1, memoryBytes: GIB, hostUuid: hostUuids[1]! });
    const owner = stack.replicas.find((r) => r.ctx.membership()!.owns(vm!.uuid))!;
    const hold = simHost(1).hold("vm/stop", { times: 1 });
    const stopping = stack.vms.stopVm({ uuid: vm!.uuid });
    const held = await hold.next(5_000);
    const rebooting = stack.clientsTo(1).vms.rebootVm({ uuid: vm!.uuid }).catch((e) => e);
    // The reboot is queued behind the stop under vm-<uuid>, not run beside it.
    await until(() => owner.ctx.queue.inspect().some((s) => s.signature === `vm-${vm!.uuid}` && s.pending === 1), "reboot queued behind stop");
    expect((await stack.vms.getVm({ uuid: vm!.uuid })).vm!.state).toBe(VmState.STOPPING);
    held.release();
    expect((await stopping).vm!.state).toBe(VmState.STOPPED);
    // When the reboot runs, the VM is Stopped: refused, naming that state.
    expect(await rebooting).toMatchObject({ code: Code.FAILED_PRECONDITION, resources: { state: "Stopped" } });
    await stack.vms.destroyVm({ uuid: vm!.uuid });
  });

  it("concurrent creates never over-commit a host", async () => {
    // 3 hosts × 8 CPU, some already used by earlier tests: fill what is left, and then some.
    const free = (await stack.hosts.listHosts({})).hosts.reduce((n, h) => n + (h.cpuCapacity - h.cpuUsed), 0);
    const results = await Promise.allSettled(Array.from({ length: free + 10 }, (_, i) => stack.clientsTo(i % 2).vms.createVm({ name: `fill-${i}`, cpu: 1, memoryBytes: GIB })));
    const ok = results.filter((r) => r.status === "fulfilled");
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
    expect(ok).toHaveLength(free);
    expect(refused).toHaveLength(10);
    for (const r of refused) expect(r.reason).toMatchObject({ code: Code.RESOURCE_EXHAUSTED, reason: "NO_HOST_CAPACITY" });
    for (const h of (await stack.hosts.listHosts({})).hosts) expect(h.cpuUsed).toBe(h.cpuCapacity);
    for (const r of ok) await stack.vms.destroyVm({ uuid: (r as PromiseFulfilledResult<{ vm?: { uuid: string } }>).value.vm!.uuid });
  });
});
