import type { ChildProcess } from "node:child_process";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { VmState } from "@stratum/proto/stratum/compute/v1/vm_pb";
import { kill9, outputOf, ownedBy, startChildReplica } from "./child-replica";
import { GIB, startComputeStack, type ComputeStack } from "./harness";
import { until } from "./until";
import { settle } from "./watch";

/**
 * A replica that lost ownership while paused (SIGSTOP past its membership TTL and its lease)
 * wakes up (SIGCONT) in the middle of an operation its successor has taken over: neither its
 * database writes nor its agent commands get through. compute-1 is a child process, so it can be
 * paused at the step the test chooses (while the agent holds its command).
 */
let stack: ComputeStack;
let hostUuid: string;
let child: ChildProcess | undefined;
beforeAll(async () => {
  stack = await startComputeStack({ replicas: 1, hosts: 1 });
  hostUuid = (await stack.addSimHosts(8, 16n))[0]!;
});
afterEach(async () => {
  if (child) await kill9(child);
  child = undefined;
});
afterAll(() => stack?.stop());

const vmOf = async (uuid: string) => (await stack.vms.getVm({ uuid })).vm!;
const agent = () => stack.sim.hosts[0]!;

async function runningVmOnChild(name: string): Promise<string> {
  child = await startChildReplica(stack);
  const uuid = ownedBy(stack);
  await settle(stack.vms, stack.vms.createVm({ uuid, name, cpu: 1, memoryBytes: GIB, hostUuid }), VmState.RUNNING);
  return uuid;
}

describe("fencing a replica that lost ownership while paused", () => {
  it("its agent command after the takeover is refused by the agent (409 FENCED) and the VM stays as the agent has it", async () => {
    const uuid = await runningVmOnChild("fenced-agent");
    const hold = stack.sim.hold(0, "vm/stop");
    // Accepted at once: the agent's work runs after the answer.
    expect((await stack.vms.stopVm({ uuid })).vm!.state).toBe(VmState.STOPPING);
    const held = await hold.next(10_000);
    child!.kill("SIGSTOP");
    // The stop never reached the hypervisor; the paused replica's client will retry it.
    held.release({ kind: "reset", phase: "before" });
    await until(async () => (await vmOf(uuid)).state === VmState.RUNNING, "the successor to take the VM over", 20_000);
    const taken = await vmOf(uuid);
    expect(taken.lastError).toContain("stopped while the VM was Stopping");

    child!.kill("SIGCONT"); // wakes up with its stop in flight, and retries it: with the old fence
    await until(() => agent().inspect().fencing.refused >= 1, "the agent to refuse the stale stop", 20_000);
    const refused = agent().inspect().log.filter((e) => e.command === "vm/stop" && e.outcome === 409);
    expect(refused).toHaveLength(1);
    expect(agent().inspect().vms.find((v) => v.vmUuid === uuid)?.state).toBe("running");
    // Nothing the stale replica did moved the VM: the database agrees with the agent.
    expect((await vmOf(uuid)).state).toBe(VmState.RUNNING);
    await stack.vms.destroyVm({ uuid });
  });

  it("its database write after the takeover matches nothing (the successor's claim moved the VM's actor on), and the caller's retry gets the operation's one outcome", async () => {
    const uuid = await runningVmOnChild("fenced-db");
    const stopHold = stack.sim.hold(0, "vm/stop");
    const direct = stack.clientsTo(0); // replica 0 forwards to the owner, compute-1
    const accepted = (await direct.vms.stopVm({ uuid, clientRequestId: `stop-${uuid}` })).vm!;
    expect(accepted.state).toBe(VmState.STOPPING);
    const heldStop = await stopHold.next(10_000);
    child!.kill("SIGSTOP");
    // The hypervisor stops the VM; the answer waits in the paused replica's socket.
    const queryHold = stack.sim.hold(0, "host/vms");
    heldStop.release();
    // The successor claims the VM and asks the agent what happened: held here, so the VM stays
    // Stopping, claimed by compute-0, while the old owner wakes up.
    const heldQuery = await queryHold.next(20_000);
    const claimed = await vmOf(uuid);
    expect(claimed.state).toBe(VmState.STOPPING);
    const actor = (await stack.replicas[0]!.ctx.db.sql`SELECT last_actor FROM compute.vms WHERE uuid = ${uuid}`)[0]!.last_actor as string;
    expect(actor).toBe(stack.replicas[0]!.ctx.ownership.incarnation());
    child!.kill("SIGCONT");
    // compute-1 reads the agent's 200 and writes Stopping → Stopped: the fence refuses it, and
    // it says so (its caller has had its answer: the stop accepted).
    await until(() => outputOf(child!).some((l) => l.includes("taken over by another replica")), "the woken replica to find its write fenced", 20_000);
    expect((await vmOf(uuid)).state).toBe(VmState.STOPPING);
    heldQuery.release();
    await until(async () => (await vmOf(uuid)).state === VmState.STOPPED, "the successor to settle the stop");
    const settled = await vmOf(uuid);
    expect(settled.lastError).toContain("reports it stopped");
    expect(agent().inspect().vms.find((v) => v.vmUuid === uuid)?.state).toBe("stopped");
    // The retry (same request id) gets the first outcome — the stop accepted — and runs nothing.
    const stopsBefore = agent().inspect().commands["vm/stop"]!.executed;
    const retried = (await stack.vms.stopVm({ uuid, clientRequestId: `stop-${uuid}` })).vm!;
    expect(retried.uuid).toBe(uuid);
    expect([VmState.STOPPING, VmState.STOPPED]).toContain(retried.state);
    expect(agent().inspect().commands["vm/stop"]!.executed).toBe(stopsBefore);
    await stack.vms.destroyVm({ uuid });
  });
});
