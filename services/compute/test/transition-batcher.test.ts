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
  store = new VmStore(stack.replicas[0]!.ctx.db as never, () => "test@0");
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
