import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { VmState } from "@stratum/proto/stratum/compute/v1/vm_pb";
import { Code, StratumError } from "@stratum/core";
import { kill9, ownedBy, startChildReplica } from "./child-replica";
import { GIB, startComputeStack, type ComputeStack } from "./harness";
import { settle, untilVmState } from "./watch";

/**
 * A replica that dies mid-operation (kill -9 of a real process, while the agent holds its
 * command) leaves the VM in a transient state; its new owner asks the agent and finishes or rolls
 * back. Replica 0 runs in-process; replica 1 is a child process, so it can really be killed.
 */
let stack: ComputeStack;
let hostUuid: string;
beforeAll(async () => {
  stack = await startComputeStack({ replicas: 1, hosts: 1 });
  hostUuid = (await stack.addSimHosts(8, 16n))[0]!;
});
afterAll(() => stack?.stop());

const startChild = () => startChildReplica(stack);
const ownedByChild = () => ownedBy(stack);

async function vmOf(uuid: string) {
  return (await stack.vms.getVm({ uuid })).vm!;
}

async function hostCpuUsed(): Promise<number> {
  return (await stack.hosts.getHost({ uuid: hostUuid })).host!.cpuUsed;
}

describe("takeover of VMs a dead replica left mid-operation", () => {
  it("a create killed while the agent starts the VM ends Running, as the agent says, with its capacity held", async () => {
    const child = await startChild();
    const uuid = ownedByChild();
    const before = await hostCpuUsed();
    const hold = stack.sim.hold(0, "vm/start");
    // Accepted by compute-1 before its agent call.
    expect((await stack.vms.createVm({ uuid, name: "orphan-start", cpu: 1, memoryBytes: GIB, hostUuid })).vm!.state).toBe(VmState.CREATED);
    const held = await hold.next(10_000);
    await kill9(child);
    held.release(); // the agent finishes the start nobody waits for any more
    const vm = await untilVmState(stack.vms, uuid, VmState.RUNNING); // the new owner finishes it
    expect(vm.lastError).toContain("replica compute-1 stopped while the VM was Starting");
    expect(vm.lastError).toContain("reports it running");
    expect(await hostCpuUsed()).toBe(before + 1);
    expect(stack.sim.hosts[0]!.inspect().vms.find((v) => v.vmUuid === uuid)?.state).toBe("running");
    await stack.vms.destroyVm({ uuid });
  });

  it("a stop killed before the agent acted ends Running again, as the agent says", async () => {
    let child = await startChild();
    const uuid = ownedByChild();
    await settle(stack.vms, stack.vms.createVm({ uuid, name: "orphan-stop", cpu: 1, memoryBytes: GIB, hostUuid }), VmState.RUNNING);
    const hold = stack.sim.hold(0, "vm/stop");
    expect((await stack.vms.stopVm({ uuid })).vm!.state).toBe(VmState.STOPPING);
    const held = await hold.next(10_000);
    await kill9(child);
    held.release({ kind: "http500", message: "never reached the hypervisor" });
    // The new owner rolls the stop back, as the agent has it.
    expect((await untilVmState(stack.vms, uuid, VmState.RUNNING)).lastError).toContain("stopped while the VM was Stopping");
    child = await startChild(); // a new incarnation: its own VMs are not taken from it
    await stack.vms.destroyVm({ uuid });
    // Destroyed before the child goes: the next test counts the host's capacity from here.
    await untilVmState(stack.vms, uuid, VmState.DESTROYED);
    await kill9(child);
  });

  it("a destroy killed halfway is completed by the new owner and the capacity released", async () => {
    const child = await startChild();
    const uuid = ownedByChild();
    const before = await hostCpuUsed();
    await settle(stack.vms, stack.vms.createVm({ uuid, name: "orphan-destroy", cpu: 1, memoryBytes: GIB, hostUuid }), VmState.RUNNING);
    const hold = stack.sim.hold(0, "vm/destroy");
    expect((await stack.vms.destroyVm({ uuid })).vm!.state).toBe(VmState.DESTROYING);
    const held = await hold.next(10_000);
    await kill9(child);
    held.release({ kind: "reset", phase: "before" }); // the agent never destroyed it
    await untilVmState(stack.vms, uuid, VmState.DESTROYED); // the new owner completes the destroy
    expect(await hostCpuUsed()).toBe(before);
    expect(stack.sim.hosts[0]!.inspect().vms.find((v) => v.vmUuid === uuid)).toBeUndefined();
  });
});

describe("a retry after the owner died", () => {
  it("gets the create's one outcome: the VM first accepted, which the takeover brings to Running, started once", async () => {
    const child = await startChild();
    const uuid = ownedByChild();
    const clientRequestId = `create-${uuid}`;
    const hold = stack.sim.hold(0, "vm/start");
    const first = (await stack.vms.createVm({ uuid, name: "retried-create", cpu: 1, memoryBytes: GIB, hostUuid, clientRequestId })).vm!;
    const held = await hold.next(10_000);
    await kill9(child);
    held.release(); // the agent starts the VM; nobody hears the answer
    // The client's retry (say it lost the answer), same request id: the first accepted VM, from
    // the request's record — or, had compute-1 died before recording it, from the VM itself once
    // the dead holder's lease is gone and the VM is settled by its new owner.
    let retried: unknown;
    for (let attempt = 0; attempt < 200; attempt++) {
      retried = await stack.vms.createVm({ uuid, name: "retried-create", cpu: 1, memoryBytes: GIB, hostUuid, clientRequestId }).catch((e) => e);
      if (!(retried instanceof StratumError && retried.code === Code.UNAVAILABLE)) break; // owner unreachable, then in progress
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(retried).toMatchObject({ vm: { uuid, clientRequestId } });
    expect([first.state, VmState.STARTING, VmState.RUNNING]).toContain((retried as { vm: { state: VmState } }).vm.state);
    await untilVmState(stack.vms, uuid, VmState.RUNNING);
    expect(stack.sim.hosts[0]!.inspect().commands["vm/start"]!.executed).toBeGreaterThanOrEqual(1);
    const starts = stack.sim.hosts[0]!.inspect().log.filter((e) => e.command === "vm/start" && e.fence?.startsWith(`vm:${uuid}=`) && e.outcome === 200 && !e.deduplicated);
    expect(starts).toHaveLength(1);
    await stack.vms.destroyVm({ uuid });
  });
});
