import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, expect, it } from "vitest";
import { VmStore } from "../src/store/vm-store";
import { startComputeStack, type ComputeStack } from "./harness";

let stack: ComputeStack;
let store: VmStore;
beforeAll(async () => {
  // One big host, as its agent reports it: the capacity offered may not exceed it.
  stack = await startComputeStack({ replicas: 1, hosts: [{ cpuNum: 1000, memoryBytes: 1000 * 1024 ** 3 }] });
  await stack.addSimHosts(1000, 1000n);
  store = new VmStore(stack.replicas[0]!.ctx.db as never, stack.replicas[0]!.ctx.ownership.incarnation);
});
afterAll(() => stack?.stop());

const place = async () => (await store.insertPlaced({ uuid: randomUUID(), name: "b", cpu: 1, memory: 1 << 20, clientRequestId: null }, undefined))!;

it("concurrent transitions each get their own outcome: the row when its condition held, nothing otherwise", async () => {
  const vms = await Promise.all(Array.from({ length: 50 }, place));
  const results = await Promise.all(
    vms.map((vm, i) => (i % 2 === 0 ? store.transition(vm.uuid, "Created", "Starting", i % 4 === 0 ? "why" : undefined) : store.transition(vm.uuid, "Running", "Stopping"))),
  );
  results.forEach((row, i) => {
    if (i % 2 === 0) {
      expect(row).toMatchObject({ uuid: vms[i]!.uuid, state: "Starting", lastError: i % 4 === 0 ? "why" : "" });
      expect(row!.updatedAt).toBeInstanceOf(Date);
    } else {
      expect(row).toBeUndefined(); // it was Created, not Running: nothing changed
    }
  });
  for (const [i, vm] of vms.entries()) expect((await store.get(vm.uuid))!.state).toBe(i % 2 === 0 ? "Starting" : "Created");
});

it("every write is fenced: a writer without a lease places nothing, and moves no VM; one with a lease cannot move a VM another live lease holder is working on, until that lease is gone", async () => {
  const { sql } = stack.replicas[0]!.ctx.db;
  // Two writers whose leases the test holds (no keeper renews them behind its back).
  await sql`INSERT INTO compute.leases (holder, replica_id, expires_at) VALUES ('mine@1', 'mine', now() + interval '1 minute'), ('other@1', 'other', now() + interval '1 minute')`;
  const mine = new VmStore(stack.replicas[0]!.ctx.db as never, () => "mine@1");
  const other = new VmStore(stack.replicas[0]!.ctx.db as never, () => "other@1");
  const vm = (await mine.insertPlaced({ uuid: randomUUID(), name: "fenced", cpu: 1, memory: 1 << 20, clientRequestId: null }, undefined))!;
  expect(vm).toMatchObject({ state: "Created", lastActor: "mine@1" }); // in the middle of its create

  const leaseless = new VmStore(stack.replicas[0]!.ctx.db as never, () => "ghost@1");
  const err = await leaseless.insertPlaced({ uuid: randomUUID(), name: "ghost", cpu: 1, memory: 1 << 20, clientRequestId: null }, undefined).catch((e) => e);
  expect(err).toMatchObject({ reason: "LEASE_NOT_HELD" });
  expect(await leaseless.transition(vm.uuid, "Created", "Starting")).toBeUndefined();

  // "other@1" holds a lease, but the VM is mine's operation: not its to move, nor to claim.
  expect(await other.transition(vm.uuid, "Created", "Starting")).toBeUndefined();
  expect(await other.claim(vm.uuid, "Created")).toBeUndefined();

  // mine's lease lapses (as if it had been paused): now the VM can be taken over — and then
  // mine, even with its lease back, cannot finish the operation it started.
  await sql`UPDATE compute.leases SET expires_at = now() - interval '1 second' WHERE holder = 'mine@1'`;
  const claimed = await other.claim(vm.uuid, "Created");
  expect(claimed).toMatchObject({ state: "Created", lastActor: "other@1", fence: vm.fence + 1 });
  await sql`UPDATE compute.leases SET expires_at = now() + interval '1 minute' WHERE holder = 'mine@1'`;
  expect(await mine.transition(vm.uuid, "Created", "Starting")).toBeUndefined();
  expect(await other.transition(vm.uuid, "Created", "Starting")).toMatchObject({ state: "Starting", lastActor: "other@1", fence: vm.fence + 2 });
  await sql`DELETE FROM compute.leases WHERE holder IN ('mine@1', 'other@1')`;
});
