import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { VmState } from "@stratum/proto/stratum/compute/v1/vm_pb";
import { Code, StratumError } from "@stratum/core";
import { GIB, startComputeStack, type ComputeStack } from "./harness";
import { until } from "./until";
import { settle, untilVmState } from "./watch";

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

/**
 * Creates a VM on host `i` whose start will fail: the create is accepted all the same (the agent
 * acts after the answer), and WatchVm shows it end in Error; returns the VM as the watch saw it
 * end and as GetVm reads it after.
 */
async function failedCreate(i: number, name: string) {
  const accepted = (await stack.vms.createVm({ name, cpu: 2, memoryBytes: 2n * GIB, hostUuid: hostUuids[i]! })).vm!;
  expect(accepted.state).toBe(VmState.CREATED);
  const watched = await untilVmState(stack.vms, accepted.uuid, VmState.ERROR);
  const vm = (await stack.vms.getVm({ uuid: accepted.uuid })).vm!;
  expect(vm).toEqual(watched);
  return { vm };
}

describe("agent faults during create", () => {
  it("a 500 on start leaves the VM in Error with the agent's error, capacity released", async () => {
    const before = await host(hostUuids[0]!);
    simHost(0).injectFault({ command: "vm/start", kind: "http500", message: "libvirt: out of disk" });
    const { vm } = await failedCreate(0, "fails-500");
    expect(vm.lastError).toContain("vm/start");
    expect(vm.lastError).toContain(simHost(0).url);
    expect(vm.state).toBe(VmState.ERROR);
    expect(vm.hostUuid).toBe("");
    expect(vm.lastError).toContain("out of disk");
    expect((await host(hostUuids[0]!)).cpuUsed).toBe(before.cpuUsed);
    expect(simHost(0).inspect().vms.find((v) => v.vmUuid === vm.uuid)).toBeUndefined();
  });

  it("an agent that hangs past the timeout leaves the VM in Error, capacity released", async () => {
    const before = await host(hostUuids[1]!);
    simHost(1).injectFault({ command: "vm/start", kind: "hang" });
    const { vm } = await failedCreate(1, "hangs");
    expect(vm.lastError).toContain("vm/start");
    expect(vm.lastError).toContain(simHost(1).url);
    expect(vm.lastError).toContain("no answer within");
    expect(vm.state).toBe(VmState.ERROR);
    expect((await host(hostUuids[1]!)).cpuUsed).toBe(before.cpuUsed);
  });

  it("a connection reset on every attempt leaves the VM in Error, capacity released", async () => {
    const before = await host(hostUuids[2]!);
    simHost(2).injectFault({ command: "vm/start", kind: "reset" });
    const { vm } = await failedCreate(2, "resets");
    expect(vm.lastError).toContain("vm/start");
    expect(vm.state).toBe(VmState.ERROR);
    expect((await host(hostUuids[2]!)).cpuUsed).toBe(before.cpuUsed);
  });

  it("a start the agent ran but never answered is undone on the agent, capacity released", async () => {
    const before = await host(hostUuids[1]!);
    simHost(1).injectFault({ command: "vm/start", kind: "hang", phase: "after", times: 1 });
    const { vm } = await failedCreate(1, "hangs-after");
    expect(vm.lastError).toContain("no answer within");
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
    await settle(stack.vms, stack.vms.destroyVm({ uuid: vm.uuid }), VmState.DESTROYED);
    expect(simHost(1).inspect().vms.find((v) => v.vmUuid === vm.uuid)).toBeUndefined();
    expect((await host(hostUuids[1]!)).cpuUsed).toBe(before.cpuUsed);
  });

  it("a reset after the agent acted is retried under the same task id and the VM runs once", async () => {
    simHost(2).injectFault({ command: "vm/start", kind: "reset", phase: "after", times: 1 });
    const vm = await settle(stack.vms, stack.vms.createVm({ name: "reset-once", cpu: 1, memoryBytes: GIB, hostUuid: hostUuids[2]! }), VmState.RUNNING);
    const starts = simHost(2).inspect().log.filter((l) => l.command === "vm/start" && (l as { body?: { vmUuid?: string } }).body?.vmUuid === vm.uuid);
    expect(simHost(2).inspect().vms.find((v) => v.vmUuid === vm.uuid)?.state).toBe("running");
    expect(starts.length).toBeLessThanOrEqual(2); // the repeat is answered from the first execution
    await settle(stack.vms, stack.vms.destroyVm({ uuid: vm.uuid }), VmState.DESTROYED);
  });
});

describe("agent faults on a running VM", () => {
  it("a failed stop returns the VM to Running with the error recorded", async () => {
    const vm = await settle(stack.vms, stack.vms.createVm({ name: "stop-fails", cpu: 1, memoryBytes: GIB, hostUuid: hostUuids[0]! }), VmState.RUNNING);
    simHost(0).injectFault({ command: "vm/stop", kind: "http500", message: "guest did not shut down" });
    expect((await stack.vms.stopVm({ uuid: vm.uuid })).vm!.state).toBe(VmState.STOPPING);
    // Back to Running, with the agent's error (naming host and command) for every reader.
    const watched = await untilVmState(stack.vms, vm.uuid, VmState.RUNNING);
    expect(watched.lastError).toContain("guest did not shut down");
    expect(watched.lastError).toContain("vm/stop");
    expect((await stack.vms.getVm({ uuid: vm.uuid })).vm!).toEqual(watched);
    simHost(0).clearFaults();
    expect((await settle(stack.vms, stack.vms.stopVm({ uuid: vm.uuid }), VmState.STOPPED)).lastError).toBe("");
    await settle(stack.vms, stack.vms.destroyVm({ uuid: vm.uuid }), VmState.DESTROYED);
  });
});

describe("callers never wait on the agent", () => {
  it("a stop answers while the agent still holds it, and the work completes after: the database agrees with the agent", async () => {
    const vm = await settle(stack.vms, stack.vms.createVm({ name: "held-stop", cpu: 1, memoryBytes: GIB, hostUuid: hostUuids[2]! }), VmState.RUNNING);
    const hold = simHost(2).hold("vm/stop", { times: 1 });
    // A short deadline is plenty: the call waits for the accept only.
    expect((await stack.vms.stopVm({ uuid: vm.uuid }, { timeoutMs: 5_000 })).vm!.state).toBe(VmState.STOPPING);
    const held = await hold.next(5_000);
    expect((await stack.vms.getVm({ uuid: vm.uuid })).vm!.state).toBe(VmState.STOPPING);
    held.release();
    await untilVmState(stack.vms, vm.uuid, VmState.STOPPED);
    expect(simHost(2).inspect().vms.find((v) => v.vmUuid === vm.uuid)?.state).toBe("stopped");
    await settle(stack.vms, stack.vms.destroyVm({ uuid: vm.uuid }), VmState.DESTROYED);
  });
});

describe("serialization and capacity", () => {
  it("one operation at a time on a VM: a second is refused at once naming the first's state, never run beside it (forced with a held agent reply)", async () => {
    const vm = await settle(stack.vms, stack.vms.createVm({ name: "serial", cpu: 1, memoryBytes: GIB, hostUuid: hostUuids[1]! }), VmState.RUNNING);
    const owner = stack.replicas.find((r) => r.ctx.membership()!.owns(vm.uuid))!;
    const hold = simHost(1).hold("vm/stop", { times: 1 });
    await stack.vms.stopVm({ uuid: vm.uuid });
    const held = await hold.next(5_000);
    const rebooting = await stack.clientsTo(1).vms.rebootVm({ uuid: vm.uuid }).catch((e) => e);
    expect(rebooting).toMatchObject({ code: Code.FAILED_PRECONDITION, reason: "VM_BUSY", resources: { state: "Stopping" } });
    // Nothing was queued behind the stop: the stop's work is the VM's only task.
    expect(owner.ctx.queue.pendingCount(`vm-${vm.uuid}`)).toBe(0);
    held.release();
    await untilVmState(stack.vms, vm.uuid, VmState.STOPPED);
    // Once the stop has ended, the VM's state decides: Stopped, so a reboot is invalid.
    await expect(stack.clientsTo(1).vms.rebootVm({ uuid: vm.uuid })).rejects.toMatchObject({ code: Code.FAILED_PRECONDITION, reason: "VM_STATE_INVALID", resources: { state: "Stopped" } });
    expect(simHost(1).inspect().log.filter((l) => l.command === "vm/reboot" && l.fence?.startsWith(`vm:${vm.uuid}=`))).toEqual([]);
    await settle(stack.vms, stack.vms.destroyVm({ uuid: vm.uuid }), VmState.DESTROYED);
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
    for (const r of ok) {
      const uuid = (r as PromiseFulfilledResult<{ vm?: { uuid: string } }>).value.vm!.uuid;
      await untilVmState(stack.vms, uuid, VmState.RUNNING);
      await settle(stack.vms, stack.vms.destroyVm({ uuid }), VmState.DESTROYED);
    }
  });
});
