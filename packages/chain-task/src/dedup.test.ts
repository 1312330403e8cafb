import { describe, expect, it, vi } from "vitest";
import { ChainTaskQueue } from "./chain-task-queue";
import { deferred, flushMicrotasks } from "./test-support";

describe("dedup (coalescing of pending work)", () => {
  it("shares one pending task's result among submitters with the same key", async () => {
    const q = new ChainTaskQueue();
    const block = deferred();
    const first = q.submit({ signature: "vm-1", name: "block", run: () => block.promise });
    const run = vi.fn(async () => ({ synced: true }));
    const a = q.submit({ signature: "vm-1", name: "sync-state", dedupKey: "sync", run });
    const b = q.submit({ signature: "vm-1", name: "sync-state", dedupKey: "sync", run });
    const c = q.submit({ signature: "vm-1", name: "sync-state", dedupKey: "sync", run });
    expect(q.pendingCount("vm-1")).toBe(1);
    expect(q.size).toBe(2);
    block.resolve();
    await first;
    const [ra, rb, rc] = await Promise.all([a, b, c]);
    expect(run).toHaveBeenCalledTimes(1);
    expect(ra).toEqual({ synced: true });
    expect(rb).toBe(ra); // the very same result object
    expect(rc).toBe(ra);
  });

  it("shares a failure too", async () => {
    const q = new ChainTaskQueue();
    const block = deferred();
    void q.submit({ signature: "vm-1", name: "block", run: () => block.promise });
    const boom = new Error("boom");
    const run = vi.fn(async () => {
      throw boom;
    });
    const a = q.submit({ signature: "vm-1", name: "x", dedupKey: "k", run });
    const b = q.submit({ signature: "vm-1", name: "x", dedupKey: "k", run });
    block.resolve();
    await expect(a).rejects.toBe(boom);
    await expect(b).rejects.toBe(boom);
    expect(run).toHaveBeenCalledTimes(1);
  });

  it("does not join a running task, another key, or another signature", async () => {
    const q = new ChainTaskQueue();
    const gate = deferred();
    const run = vi.fn(async () => {
      await gate.promise;
    });
    // Starts at once (idle signature): running, so the next same-key task must queue behind it.
    const running = q.submit({ signature: "vm-1", name: "x", dedupKey: "k", run });
    const afterRunning = q.submit({ signature: "vm-1", name: "x", dedupKey: "k", run });
    const otherKey = q.submit({ signature: "vm-1", name: "x", dedupKey: "other", run });
    const otherSig = q.submit({ signature: "vm-2", name: "x", dedupKey: "k", run });
    const noKey = q.submit({ signature: "vm-1", name: "x", run });
    expect(q.pendingCount("vm-1")).toBe(3);
    await flushMicrotasks();
    expect(run).toHaveBeenCalledTimes(2); // vm-1's first and vm-2's
    gate.resolve();
    await Promise.all([running, afterRunning, otherKey, otherSig, noKey]);
    expect(run).toHaveBeenCalledTimes(5);
  });

  it("stops coalescing once the shared task has started", async () => {
    const q = new ChainTaskQueue();
    const block = deferred();
    void q.submit({ signature: "vm-1", name: "block", run: () => block.promise });
    const gate = deferred();
    const run = vi.fn(() => gate.promise);
    const a = q.submit({ signature: "vm-1", name: "x", dedupKey: "k", run });
    block.resolve();
    await flushMicrotasks();
    expect(run).toHaveBeenCalledTimes(1); // a is running now
    const b = q.submit({ signature: "vm-1", name: "x", dedupKey: "k", run });
    expect(q.pendingCount("vm-1")).toBe(1);
    gate.resolve();
    await Promise.all([a, b]);
    expect(run).toHaveBeenCalledTimes(2);
  });

  it("does not count coalesced submissions against maxPending", async () => {
    const q = new ChainTaskQueue({ maxPending: 1 });
    const block = deferred();
    void q.submit({ signature: "vm-1", name: "block", run: () => block.promise });
    const a = q.submit({ signature: "vm-1", name: "x", dedupKey: "k", run: async () => 1 });
    const b = q.submit({ signature: "vm-1", name: "x", dedupKey: "k", run: async () => 2 });
    block.resolve();
    expect(await Promise.all([a, b])).toEqual([1, 1]);
  });
});
