import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ChainTaskQueue } from "./chain-task-queue";
import { ChainTaskError } from "./errors";
import type { TaskContext } from "./types";
import { deferred, flushMicrotasks, track } from "./test-support";

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe("pending timeout", () => {
  it("fails a task that waited too long, without running it, naming task and signature", async () => {
    const q = new ChainTaskQueue({ pendingTimeoutMs: 100 });
    const block = deferred<string>();
    const first = q.submit({ signature: "vm-1", name: "long-op", run: () => block.promise });
    let ran = false;
    const waiting = track(
      q.submit({
        signature: "vm-1",
        name: "stop-vm",
        run: async () => {
          ran = true;
        },
      }),
    );
    await vi.advanceTimersByTimeAsync(99);
    expect(waiting.state).toBe("pending");
    await vi.advanceTimersByTimeAsync(1);
    expect(waiting.state).toBe("rejected");
    const error = waiting.reason as ChainTaskError;
    expect(error).toBeInstanceOf(ChainTaskError);
    expect(error.code).toBe("PENDING_TIMEOUT");
    expect(error.signature).toBe("vm-1");
    expect(error.taskName).toBe("stop-vm");
    expect(error.limit).toBe(100);
    expect(error.message).toContain('"stop-vm"');
    expect(error.message).toContain('"vm-1"');
    expect(q.pendingCount("vm-1")).toBe(0);
    // The first task is unaffected (its own wait was 0), and the expired one never runs.
    block.resolve("done");
    expect(await first).toBe("done");
    await flushMicrotasks();
    expect(ran).toBe(false);
    expect(q.signatureCount).toBe(0);
  });

  it("does not apply to a task that started in time, and a per-task value overrides the queue's", async () => {
    const q = new ChainTaskQueue({ pendingTimeoutMs: 50 });
    const block = deferred();
    const first = track(q.submit({ signature: "vm-1", name: "first", run: () => block.promise }));
    const patient = track(
      q.submit({ signature: "vm-1", name: "patient", pendingTimeoutMs: Number.POSITIVE_INFINITY, run: async () => "ok" }),
    );
    const hasty = track(q.submit({ signature: "vm-1", name: "hasty", pendingTimeoutMs: 10, run: async () => "no" }));
    await vi.advanceTimersByTimeAsync(10);
    expect((hasty.reason as ChainTaskError).code).toBe("PENDING_TIMEOUT");
    await vi.advanceTimersByTimeAsync(1000);
    expect(first.state).toBe("pending"); // running: the pending timeout no longer applies
    expect(patient.state).toBe("pending");
    block.resolve();
    await flushMicrotasks();
    expect(first.state).toBe("fulfilled");
    expect(patient).toMatchObject({ state: "fulfilled", value: "ok" });
  });
});

describe("execution timeout", () => {
  it("frees the slot, rejects naming the task, aborts ctx.signal and lets the next task run", async () => {
    const q = new ChainTaskQueue({ executionTimeoutMs: 1000 });
    let signal: AbortSignal | undefined;
    let abortSeenAt = -1;
    const hung = track(
      q.submit({
        signature: "vm-1",
        name: "hung-op",
        run: (ctx: TaskContext) => {
          signal = ctx.signal;
          signal.addEventListener("abort", () => {
            abortSeenAt = Date.now();
          });
          return new Promise<never>(() => {}); // never settles
        },
      }),
    );
    const next = track(q.submit({ signature: "vm-1", name: "next", run: async () => "next ran" }));
    const startedAt = Date.now();
    await vi.advanceTimersByTimeAsync(999);
    expect(hung.state).toBe("pending");
    expect(next.state).toBe("pending");
    expect(signal?.aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(hung.state).toBe("rejected");
    const error = hung.reason as ChainTaskError;
    expect(error.code).toBe("EXECUTION_TIMEOUT");
    expect(error.taskName).toBe("hung-op");
    expect(error.signature).toBe("vm-1");
    expect(error.limit).toBe(1000);
    expect(error.message).toContain('"hung-op"');
    expect(signal?.aborted).toBe(true);
    expect(signal?.reason).toBe(error);
    expect(abortSeenAt - startedAt).toBe(1000);
    expect(next).toMatchObject({ state: "fulfilled", value: "next ran" });
    expect(q.size).toBe(0);
    expect(q.signatureCount).toBe(0);
  });

  it("hands an already-aborted signal to a task that reads it only after the timeout", async () => {
    const q = new ChainTaskQueue();
    const gate = deferred();
    let late: AbortSignal | undefined;
    const p = track(
      q.submit({
        signature: "vm-1",
        name: "lazy-reader",
        executionTimeoutMs: 20,
        run: async (ctx) => {
          await gate.promise;
          late = ctx.signal;
          return "late result";
        },
      }),
    );
    await vi.advanceTimersByTimeAsync(20);
    expect((p.reason as ChainTaskError).code).toBe("EXECUTION_TIMEOUT");
    gate.resolve();
    await flushMicrotasks();
    expect(late?.aborted).toBe(true);
    expect((late?.reason as ChainTaskError).code).toBe("EXECUTION_TIMEOUT");
    // The late result is ignored: the submitter already got the timeout.
    expect(p.state).toBe("rejected");
  });

  it("ignores a late settlement of the timed-out task (no double free of the slot)", async () => {
    const q = new ChainTaskQueue({ executionTimeoutMs: 10 });
    const zombie = deferred<string>();
    const first = track(q.submit({ signature: "vm-1", name: "zombie", run: () => zombie.promise }));
    const second = deferred<string>();
    const secondStarted = vi.fn();
    const b = track(
      q.submit({
        signature: "vm-1",
        name: "second",
        executionTimeoutMs: Number.POSITIVE_INFINITY,
        run: () => {
          secondStarted();
          return second.promise;
        },
      }),
    );
    let thirdStarted = false;
    const c = track(
      q.submit({
        signature: "vm-1",
        name: "third",
        run: async () => {
          thirdStarted = true;
        },
      }),
    );
    await vi.advanceTimersByTimeAsync(10);
    expect(first.state).toBe("rejected");
    expect(secondStarted).toHaveBeenCalledTimes(1);
    zombie.resolve("too late"); // must not free "second"'s slot
    await flushMicrotasks();
    expect(thirdStarted).toBe(false);
    expect(q.runningCount("vm-1")).toBe(1);
    second.resolve("second done");
    await vi.advanceTimersByTimeAsync(0);
    expect(b).toMatchObject({ state: "fulfilled", value: "second done" });
    expect(c.state).toBe("fulfilled");
    expect(thirdStarted).toBe(true);
  });
});

describe("timers", () => {
  it("creates no timer when no timeout is configured, and clears timers of finished tasks", async () => {
    const plain = new ChainTaskQueue();
    const gate = deferred();
    const a = plain.submit({ signature: "vm-1", name: "a", run: () => gate.promise });
    const b = plain.submit({ signature: "vm-1", name: "b", run: async () => {} });
    expect(vi.getTimerCount()).toBe(0);
    gate.resolve();
    await Promise.all([a, b]);

    const timed = new ChainTaskQueue({ pendingTimeoutMs: 1000, executionTimeoutMs: 1000 });
    const gate2 = deferred();
    const c = timed.submit({ signature: "vm-1", name: "c", run: () => gate2.promise });
    const d = timed.submit({ signature: "vm-1", name: "d", run: async () => {} });
    expect(vi.getTimerCount()).toBe(2); // c's execution timer, d's pending timer
    gate2.resolve();
    await Promise.all([c, d]);
    expect(vi.getTimerCount()).toBe(0);
  });
});
