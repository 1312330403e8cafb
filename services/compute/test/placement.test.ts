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
  const store = new VmStore(db as never);
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

  const placing = store.insertPlaced({ uuid: randomUUID(), name: "waits", cpu: 1, memory: 1 << 30, clientRequestId: null, requestHash: "" }, undefined);
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
