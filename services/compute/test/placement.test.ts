import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, expect, it } from "vitest";
import { VmStore } from "../src/store/vm-store";
import { startComputeStack, type ComputeStack } from "./harness";
import { until } from "./until";

let stack: ComputeStack;
beforeAll(async () => {
  stack = await startComputeStack({ replicas: 1, hosts: 2 });
  await stack.addSimHosts(8, 16n);
});
afterAll(() => stack?.stop());

it("placement waits for hosts locked by concurrent reservations instead of reporting no capacity", async () => {
  const db = stack.replicas[0]!.ctx.db;
  const store = new VmStore(db as never, stack.replicas[0]!.ctx.ownership.incarnation);
  // Another transaction holds every host row, as concurrent creates do for an instant.
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  let locked!: () => void;
  const hostsLocked = new Promise<void>((r) => (locked = r));
  const holder = db.sql.begin(async (tx) => {
    await tx`SELECT uuid FROM compute.hosts FOR UPDATE`;
    locked();
    await released;
  });
  await hostsLocked;

  const placing = store.insertPlaced({ uuid: randomUUID(), name: "waits", cpu: 1, memory: 1 << 30, clientRequestId: null }, undefined);
  let settled = false;
  void placing.finally(() => (settled = true));
  await until(async () => {
    const [row] = await db.sql`SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()`;
    return settled || (row?.n as number) > 0;
  }, "the placement to wait for the host locks");
  expect(settled).toBe(false);
  release();
  await holder;
  const vm = await placing;
  expect(vm?.hostUuid).toBeTruthy();
});

it("concurrent placements share one transaction and still fill the hosts exactly, no more", async () => {
  const db = stack.replicas[0]!.ctx.db;
  const store = new VmStore(db as never, stack.replicas[0]!.ctx.ownership.incarnation);
  const [before] = await db.sql`SELECT sum(cpu_capacity - cpu_used)::int AS free FROM compute.hosts`;
  const free = before!.free as number;
  const results = await Promise.all(
    Array.from({ length: free + 5 }, (_, i) => store.insertPlaced({ uuid: randomUUID(), name: `fill-${i}`, cpu: 1, memory: 1 << 20, clientRequestId: null }, undefined)),
  );
  expect(results.filter((r) => r !== undefined)).toHaveLength(free);
  const hosts = await db.sql`SELECT cpu_used, cpu_capacity FROM compute.hosts`;
  for (const h of hosts) expect(h.cpu_used).toBe(h.cpu_capacity);
  // Spread over both hosts, by free memory.
  expect(new Set(results.filter((r) => r).map((r) => r!.hostUuid)).size).toBe(2);
  await db.sql`UPDATE compute.vms SET state = 'Destroyed', host_uuid = NULL WHERE name LIKE 'fill-%'`;
  await db.sql`UPDATE compute.hosts SET cpu_used = 0, memory_used = 0`;
});

it("a batch with a duplicate id gives each caller its own outcome", async () => {
  const store = new VmStore(stack.replicas[0]!.ctx.db as never, stack.replicas[0]!.ctx.ownership.incarnation);
  const taken = randomUUID();
  await store.insertPlaced({ uuid: taken, name: "first", cpu: 1, memory: 1 << 20, clientRequestId: null }, undefined);
  const [dup, ok1, ok2] = await Promise.allSettled([
    store.insertPlaced({ uuid: taken, name: "again", cpu: 1, memory: 1 << 20, clientRequestId: null }, undefined),
    store.insertPlaced({ uuid: randomUUID(), name: "fine-1", cpu: 1, memory: 1 << 20, clientRequestId: null }, undefined),
    store.insertPlaced({ uuid: randomUUID(), name: "fine-2", cpu: 1, memory: 1 << 20, clientRequestId: null }, undefined),
  ]);
  expect(dup).toMatchObject({ status: "rejected", reason: { reason: "VM_ALREADY_EXISTS" } });
  expect(ok1).toMatchObject({ status: "fulfilled", value: { name: "fine-1" } });
  expect(ok2).toMatchObject({ status: "fulfilled", value: { name: "fine-2" } });
});
