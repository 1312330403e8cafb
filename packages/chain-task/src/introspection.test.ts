import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ChainTaskQueue } from "./chain-task-queue";
import { deferred } from "./test-support";

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe("inspect and counters", () => {
  it("lists busy signatures with each task's name, state and age", async () => {
    const q = new ChainTaskQueue();
    expect(q.inspect()).toEqual([]);
    const gateVm = deferred();
    const gateHost = deferred();
    const start = q.submit({ signature: "vm-1", name: "start-vm", run: () => gateVm.promise });
    await vi.advanceTimersByTimeAsync(250);
    const stop = q.submit({ signature: "vm-1", name: "stop-vm", run: async () => {} });
    const sync1 = q.submit({ signature: "vm-1", name: "sync-vm", dedupKey: "sync", run: async () => {} });
    const sync2 = q.submit({ signature: "vm-1", name: "sync-vm", dedupKey: "sync", run: async () => {} });
    const ping = q.submit({ signature: "host-1", name: "ping", syncLevel: 2, run: () => gateHost.promise });
    await vi.advanceTimersByTimeAsync(100);

    const snapshot = q.inspect();
    expect(snapshot).toEqual([
      {
        signature: "vm-1",
        running: 1,
        pending: 2,
        tasks: [
          { name: "start-vm", state: "running", ageMs: 350, runningMs: 350, syncLevel: 1, waiters: 1 },
          { name: "stop-vm", state: "pending", ageMs: 100, runningMs: 0, syncLevel: 1, waiters: 1 },
          { name: "sync-vm", state: "pending", ageMs: 100, runningMs: 0, syncLevel: 1, waiters: 2 },
        ],
      },
      {
        signature: "host-1",
        running: 1,
        pending: 0,
        tasks: [{ name: "ping", state: "running", ageMs: 100, runningMs: 100, syncLevel: 2, waiters: 1 }],
      },
    ]);
    expect(q.size).toBe(4);
    expect(q.pendingSize).toBe(2);
    expect(q.runningSize).toBe(2);
    expect(q.signatureCount).toBe(2);
    expect(q.pendingCount("vm-1")).toBe(2);
    expect(q.runningCount("vm-1")).toBe(1);
    expect(q.pendingCount("vm-unknown")).toBe(0);
    expect(q.runningCount("vm-unknown")).toBe(0);

    gateVm.resolve();
    await start;
    await vi.advanceTimersByTimeAsync(0);
    await Promise.all([stop, sync1, sync2]);
    const after = q.inspect();
    expect(after.map((s) => s.signature)).toEqual(["host-1"]);
    gateHost.resolve();
    await ping;
    expect(q.inspect()).toEqual([]);
    expect(q.size).toBe(0);
    expect(q.signatureCount).toBe(0);
  });

  it("reports runningMs separately from the time spent waiting", async () => {
    const q = new ChainTaskQueue();
    const gate1 = deferred();
    const gate2 = deferred();
    const a = q.submit({ signature: "vm-1", name: "a", run: () => gate1.promise });
    const b = q.submit({ signature: "vm-1", name: "b", run: () => gate2.promise });
    await vi.advanceTimersByTimeAsync(40);
    gate1.resolve();
    await a;
    await vi.advanceTimersByTimeAsync(15);
    expect(q.inspect()[0]?.tasks).toEqual([{ name: "b", state: "running", ageMs: 55, runningMs: 15, syncLevel: 1, waiters: 1 }]);
    gate2.resolve();
    await b;
  });
});
