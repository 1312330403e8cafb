import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, expect, it } from "vitest";
import { VmStore } from "../src/store/vm-store";
import { startComputeStack, type ComputeStack } from "./harness";
import { until } from "./until";

let stack: ComputeStack;
let store: VmStore;
beforeAll(async () => {
  stack = await startComputeStack({ replicas: 1, hosts: 1 });
  await stack.addSimHosts(1000, 1000n);
  store = new VmStore(stack.replicas[0]!.ctx.db as never);
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

it("two transitions of one VM in the same turn apply one after the other: the second is not sent before the first returns", async () => {
  const vm = await place();
  const sql = stack.replicas[0]!.ctx.db.sql;
  // Hold the VM's row so the first statement blocks where we can see it.
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  let locked!: () => void;
  const rowLocked = new Promise<void>((r) => (locked = r));
  const holder = sql.begin(async (tx) => {
    await tx`SELECT 1 FROM compute.vms WHERE uuid = ${vm.uuid} FOR UPDATE`;
    locked();
    await released;
  });
  await rowLocked;
  const both = Promise.all([store.transition(vm.uuid, "Created", "Starting"), store.transition(vm.uuid, "Starting", "Running")]);
  const waitingUpdates = async () =>
    ((await sql`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND state = 'active' AND query LIKE '%UPDATE compute.vms AS v%' AND pid <> pg_backend_pid()`)[0]!.n as number);
  await until(async () => (await waitingUpdates()) >= 1, "the first update to wait for the row");
  // Give a wrongly scheduled second statement every chance to go out.
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  expect(await waitingUpdates()).toBe(1);
  release();
  await holder;
  const [first, second] = await both;
  expect(first?.state).toBe("Starting");
  expect(second?.state).toBe("Running");
});
