import { setMaxListeners } from "node:events";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { describe, expect, it } from "vitest";
import { ChainTaskQueue } from "./chain-task-queue";
import { deferred } from "./test-support";

/**
 * A forced-GC function even when the worker was not started with --expose-gc: the flag can be
 * set at runtime, and a fresh context then exposes `gc`. Undefined if the runtime refuses.
 */
function getGc(): (() => void) | undefined {
  const existing = (globalThis as { gc?: () => void }).gc;
  if (typeof existing === "function") return existing;
  try {
    setFlagsFromString("--expose-gc");
    const gc: unknown = runInNewContext("gc");
    return typeof gc === "function" ? (gc as () => void) : undefined;
  } catch {
    return undefined;
  }
}

function heapAfterGc(gc: () => void): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

describe("memory", () => {
  it("returns to baseline after 100,000 distinct signatures", async () => {
    const q = new ChainTaskQueue();
    const gc = getGc();
    // Warm up the code paths so JIT artefacts do not count as growth.
    await Promise.all(Array.from({ length: 1000 }, (_, i) => q.submit({ signature: `warm-${i}`, name: "w", run: async () => {} })));
    const before = gc ? heapAfterGc(gc) : 0;

    const n = 100_000;
    const gate = deferred();
    let all: Promise<void>[] | null = new Array<Promise<void>>(n);
    // Every signature gets a running task and a pending one, plus some with a dedup key and a
    // signal, so every kind of per-signature state is created.
    const controller = new AbortController();
    setMaxListeners(0, controller.signal); // one signal shared by 10,000 submissions on purpose
    for (let i = 0; i < n; i++) {
      const signature = `vm-${i.toString(16).padStart(8, "0")}-0000-4000-8000-000000000000`;
      all[i] = q.submit({ signature, name: "op", run: () => gate.promise });
      if (i % 10 === 0) {
        void q.submit({ signature, name: "sync", dedupKey: "sync", run: async () => {} }, { signal: controller.signal });
      }
    }
    expect(q.signatureCount).toBe(n);
    const peak = gc ? heapAfterGc(gc) : 0;
    gate.resolve();
    await Promise.all(all);
    all = null; // the test's own promises must not count as retained by the queue
    await new Promise((r) => setImmediate(r));

    expect(q.signatureCount).toBe(0);
    expect(q.size).toBe(0);
    expect(q.inspect()).toEqual([]);
    if (gc) {
      const after = heapAfterGc(gc);
      const retained = after - before;
      const held = peak - before;
      // While busy the queue held well over 100 bytes per signature; once idle almost nothing
      // remains (bound: 1 MB, i.e. 10 bytes per signature, far below what a leaked entry costs).
      expect(held).toBeGreaterThan(100 * n);
      expect(retained).toBeLessThan(1_000_000);
    }
  });

  it("does not let a ctx kept by user code pin the finished task object", async () => {
    const gc = getGc();
    expect(gc, "a forced GC (the heap check would prove nothing without one)").toBeDefined();
    if (!gc) return;
    const q = new ChainTaskQueue();
    let kept: unknown;
    let ref: WeakRef<object> | undefined;
    await (async () => {
      const task = { signature: "vm-1", name: "op", payload: new Array(1000).fill(1), run: async (ctx: unknown) => void (kept = ctx) };
      ref = new WeakRef(task);
      await q.submit(task);
    })();
    await new Promise((r) => setImmediate(r));
    gc();
    expect(kept).toBeDefined();
    expect(ref?.deref()).toBeUndefined();
  });
});
