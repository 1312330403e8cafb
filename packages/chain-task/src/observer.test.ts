import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ChainTaskQueue } from "./chain-task-queue";
import { isChainTaskError } from "./errors";
import { deferred, flushMicrotasks } from "./test-support";
import type { ChainTaskObserver, TaskEndInfo, TaskStartInfo } from "./types";

function recorder() {
  const starts: TaskStartInfo[] = [];
  const ends: TaskEndInfo[] = [];
  const observer: ChainTaskObserver = {
    onTaskStart: (info) => starts.push(info),
    onTaskEnd: (info) => ends.push(info),
  };
  return { observer, starts, ends };
}

const swallow = (p: Promise<unknown>) => p.catch((e: unknown) => e);

describe("observer", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("is told each start with the time the task waited, and each end with its outcome and run time", async () => {
    const { observer, starts, ends } = recorder();
    const q = new ChainTaskQueue({ observer });
    const first = deferred<string>();
    const a = q.submit({ signature: "vm-1", name: "a", run: () => first.promise });
    const b = swallow(q.submit({ signature: "vm-1", name: "b", run: () => Promise.reject(new Error("boom")) }));
    expect(starts).toEqual([{ signature: "vm-1", name: "a", waitedMs: 0 }]);
    await vi.advanceTimersByTimeAsync(250);
    first.resolve("done");
    expect(await a).toBe("done");
    await b;
    expect(starts).toEqual([
      { signature: "vm-1", name: "a", waitedMs: 0 },
      { signature: "vm-1", name: "b", waitedMs: 250 },
    ]);
    expect(ends).toEqual([
      { signature: "vm-1", name: "a", outcome: "ok", waitedMs: 0, ranMs: 250 },
      { signature: "vm-1", name: "b", outcome: "failed", waitedMs: 250, ranMs: 0 },
    ]);
  });

  it("reports tasks that never ran: pending timeout, cancelled, closed, queue full", async () => {
    const { observer, starts, ends } = recorder();
    const q = new ChainTaskQueue();
    const off = q.observe(observer);
    const gate = deferred();
    const running = q.submit({ signature: "s", name: "running", run: () => gate.promise });
    const timedOut = swallow(q.submit({ signature: "s", name: "late", run: () => undefined, pendingTimeoutMs: 100 }));
    const controller = new AbortController();
    const cancelled = swallow(q.submit({ signature: "s", name: "cancel-me", run: () => undefined }, { signal: controller.signal }));
    const full = await swallow(q.submit({ signature: "s", name: "too-many", run: () => undefined, maxPending: 2 }));
    expect(isChainTaskError(full, "QUEUE_FULL")).toBe(true);
    controller.abort();
    await cancelled;
    await vi.advanceTimersByTimeAsync(100);
    await timedOut;
    const closedOne = swallow(q.submit({ signature: "s", name: "closed-by-close", run: () => undefined }));
    const closing = q.close();
    await closedOne;
    gate.resolve();
    await running;
    await closing;
    expect(starts.map((s) => s.name)).toEqual(["running"]);
    expect(ends.map((e) => [e.name, e.outcome, e.ranMs])).toEqual([
      ["too-many", "queue_full", 0],
      ["cancel-me", "cancelled", 0],
      ["late", "pending_timeout", 0],
      ["closed-by-close", "closed", 0],
      ["running", "ok", 100],
    ]);
    expect(ends.find((e) => e.name === "late")?.waitedMs).toBe(100);
    off();
    await swallow(q.submit({ signature: "s", name: "after-off", run: () => undefined }));
    expect(ends).toHaveLength(5);
  });

  it("reports an execution timeout when the slot is freed, not when the task's code ends", async () => {
    const { observer, ends } = recorder();
    const q = new ChainTaskQueue({ observer, executionTimeoutMs: 50 });
    const never = deferred();
    const outcome = swallow(q.submit({ signature: "s", name: "stuck", run: () => never.promise }));
    await vi.advanceTimersByTimeAsync(50);
    expect(isChainTaskError(await outcome, "EXECUTION_TIMEOUT")).toBe(true);
    expect(ends).toEqual([{ signature: "s", name: "stuck", outcome: "execution_timeout", waitedMs: 0, ranMs: 50 }]);
    never.resolve();
    await flushMicrotasks();
    expect(ends).toHaveLength(1);
  });

  it("tells several observers; a throwing hook neither breaks the queue nor the other observers", async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.message);
    process.on("warning", onWarning);
    try {
      const q = new ChainTaskQueue({ observer: { onTaskStart: () => { throw new Error("hook bug"); } } });
      const { observer, ends } = recorder();
      q.observe(observer);
      expect(await q.submit({ signature: "s", name: "t", run: () => 42 })).toBe(42);
      expect(ends.map((e) => e.outcome)).toEqual(["ok"]);
      expect(q.size).toBe(0);
      await vi.waitFor(() => expect(warnings.some((w) => w.includes("onTaskStart threw: hook bug"))).toBe(true));
    } finally {
      process.off("warning", onWarning);
    }
  });

  it("refuses a malformed observer, naming it", () => {
    expect(() => new ChainTaskQueue({ observer: 1 as never })).toThrow(/options\.observer must be an object/);
    expect(() => new ChainTaskQueue().observe({ onTaskEnd: "x" } as never)).toThrow(/observer\.onTaskEnd must be a function/);
  });
});
