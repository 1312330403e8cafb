import { randomUUID } from "node:crypto";
import { HashRing } from "@stratum/hash-ring";
import { VmState } from "@stratum/proto/stratum/compute/v1/vm_pb";
import { afterAll, beforeAll, expect, it } from "vitest";
import { Code } from "@stratum/core";
import { GIB, startComputeStack, type ComputeStack } from "./harness";
import { settle, untilVmState } from "./watch";

/**
 * The join race ZStack documents and leaves open: a replica joins, a VM moves to it on the ring
 * while its old owner is in the middle of an operation on it. The new owner must not act on the
 * VM until the old owner's operation has ended (hand-off): no call it serves and no takeover scan
 * touches it meanwhile, measured on agent-sim's command timeline (no command for the VM from a
 * second sender while the first one's is in flight).
 */
let stack: ComputeStack;
let hostUuid: string;
beforeAll(async () => {
  stack = await startComputeStack({ replicas: 1, hosts: 1 });
  hostUuid = (await stack.addSimHosts(8, 16n))[0]!;
});
afterAll(() => stack?.stop());

/** A VM UUID that compute-1 will own once it has joined compute-0's ring. */
function movesToJoiner(): string {
  const ring = new HashRing();
  ring.add("compute-0");
  ring.add("compute-1");
  for (;;) {
    const uuid = randomUUID();
    if (ring.ownerOf(uuid) === "compute-1") return uuid;
  }
}

it("a VM that moves to a joining replica mid-operation is handed over only after the old owner's operation ended", async () => {
  const uuid = movesToJoiner();
  await settle(stack.vms, stack.vms.createVm({ uuid, name: "hand-off", cpu: 1, memoryBytes: GIB, hostUuid }), VmState.RUNNING);
  const agent = stack.sim.hosts[0]!;
  const hold = stack.sim.hold(0, "vm/stop");
  expect((await stack.clientsTo(0).vms.stopVm({ uuid })).vm!.state).toBe(VmState.STOPPING);
  const held = await hold.next(10_000); // compute-0's stop is in the hypervisor

  const joiner = await stack.addReplica();
  expect(stack.replicas[0]!.ctx.view.ownerOf("compute", uuid)?.replicaId).toBe("compute-1");
  // The new owner serves calls on the VM at once — and refuses to act on it while it is Stopping.
  const early = await stack.clientsTo(1).vms.startVm({ uuid }).catch((e: unknown) => e);
  expect(early).toMatchObject({ code: Code.FAILED_PRECONDITION, reason: "VM_BUSY", resources: { state: "Stopping" } });
  // Its takeover scan (on the ring change) leaves the VM alone: its actor, compute-0, holds a lease.
  expect(joiner.ctx.ownership.isLive(stack.replicas[0]!.ctx.ownership.incarnation())).toBe(true);
  const commandsWhileHeld = agent.inspect().log.filter((e) => e.fence?.startsWith(`vm:${uuid}=`)).length;

  held.release();
  await untilVmState(stack.vms, uuid, VmState.STOPPED); // the old owner finished its operation
  // Now the new owner acts on it.
  await settle(stack.vms, stack.clientsTo(1).vms.startVm({ uuid }), VmState.RUNNING);
  const [row] = await joiner.ctx.db.sql`SELECT last_actor FROM compute.vms WHERE uuid = ${uuid}`;
  expect(row!.last_actor).toBe(joiner.ctx.ownership.incarnation());

  const timeline = agent.inspect().log.filter((e) => e.fence?.startsWith(`vm:${uuid}=`));
  expect(commandsWhileHeld).toBe(1); // only the create's start finished before; the stop was held
  expect(timeline.map((e) => e.command)).toEqual(["vm/start", "vm/stop", "vm/start"]);
  const tokens = timeline.map((e) => Number(e.fence!.split("=")[1]));
  expect(tokens).toEqual([...tokens].sort((a, b) => a - b)); // each sender's token above the last
  expect(agent.inspect().fencing).toMatchObject({ refused: 0, overlaps: 0 });
  await stack.vms.destroyVm({ uuid });
});
