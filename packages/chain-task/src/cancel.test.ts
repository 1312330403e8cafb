import { getEventListeners } from "node:events";
import { describe, expect, it, vi } from "vitest";
import { ChainTaskQueue } from "./chain-task-queue";
import { ChainTaskError } from "./errors";
import { deferred, flushMicrotasks, track } from "./test-support";

describe("cancellation of a pending task", () => {
  it("removes it from the queue, rejects with CANCELLED (cause kept) and never runs it", async () => {
    const q = new ChainTaskQueue();
    const block = deferred();
    const first = q.submit({ signature: "vm-1", name: "block", run: () => block.promise });
    const controller = new AbortController();
    const run = vi.fn(async () => "should not run");
    const cancelled = track(q.submit({ signature: "vm-1", name: "reboot-vm", run }, { signal: controller.signal }));
    const after = q.submit({ signature: "vm-1", name: "after", run: async () => "after ran" });
    expect(q.pendingCount("vm-1")).toBe(2);
    const reason = new Error("client went away");
    controller.abort(reason);
    await flushMicrotasks();
    expect(cancelled.state).toBe("rejected");
    const error = cancelled.reason as ChainTaskError;
    expect(error).toBeInstanceOf(ChainTaskError);
    expect(error.code).toBe("CANCELLED");
    expect(error.cause).toBe(reason);
    expect(error.taskName).toBe("reboot-vm");
    expect(error.signature).toBe("vm-1");
    expect(q.pendingCount("vm-1")).toBe(1);
    block.resolve();
    await first;
    expect(await after).toBe("after ran");
    expect(run).not.toHaveBeenCalled();
    expect(q.signatureCount).toBe(0);
  });

  it("rejects at once when the signal is already aborted, queueing nothing", async () => {
    const q = new ChainTaskQueue();
    const run = vi.fn(async () => {});
    const p = q.submit({ signature: "vm-1", name: "x", run }, { signal: AbortSignal.abort("nope") });
    await expect(p).rejects.toMatchObject({ code: "CANCELLED", cause: "nope" });
    expect(run).not.toHaveBeenCalled();
    expect(q.signatureCount).toBe(0);
  });

  it("removes its abort listener once the task settled, so a long-lived signal does not pile up listeners", async () => {
    const q = new ChainTaskQueue();
    const requestScope = new AbortController();
    for (let i = 0; i < 50; i++) {
      await q.submit({ signature: "vm-1", name: "x", run: async () => {} }, { signal: requestScope.signal });
    }
    const block = deferred();
    const running = q.submit({ signature: "vm-1", name: "b", run: () => block.promise }, { signal: requestScope.signal });
    const pending = q.submit({ signature: "vm-1", name: "p", run: async () => {} }, { signal: requestScope.signal });
    expect(getEventListeners(requestScope.signal, "abort")).toHaveLength(2);
    block.resolve();
    await Promise.all([running, pending]);
    expect(getEventListeners(requestScope.signal, "abort")).toHaveLength(0);
  });
});

describe("cancellation of a running task", () => {
  it("forwards the abort to ctx.signal; the promise settles with what the task does", async () => {
    const q = new ChainTaskQueue();
    const controller = new AbortController();
    let ctxSignal: AbortSignal | undefined;
    const p = q.submit(
      {
        signature: "vm-1",
        name: "migrate",
        run: (ctx) =>
          new Promise<string>((_, reject) => {
            ctxSignal = ctx.signal;
            ctx.signal.addEventListener("abort", () => reject(new Error("stopped: " + String(ctx.signal.reason))));
          }),
      },
      { signal: controller.signal },
    );
    const next = track(q.submit({ signature: "vm-1", name: "next", run: async () => "next" }));
    expect(ctxSignal?.aborted).toBe(false);
    controller.abort("user cancel");
    expect(ctxSignal?.aborted).toBe(true);
    expect(ctxSignal?.reason).toBe("user cancel");
    await expect(p).rejects.toThrow("stopped: user cancel");
    await flushMicrotasks();
    expect(next).toMatchObject({ state: "fulfilled", value: "next" });
  });

  it("keeps the slot until the task settles, and delivers its result if it ignores the abort", async () => {
    const q = new ChainTaskQueue();
    const controller = new AbortController();
    const gate = deferred<string>();
    const p = track(q.submit({ signature: "vm-1", name: "stubborn", run: () => gate.promise }, { signal: controller.signal }));
    let nextRan = false;
    const next = q.submit({
      signature: "vm-1",
      name: "next",
      run: async () => {
        nextRan = true;
      },
    });
    controller.abort();
    await flushMicrotasks();
    expect(p.state).toBe("pending");
    expect(nextRan).toBe(false);
    expect(q.runningCount("vm-1")).toBe(1);
    gate.resolve("finished anyway");
    await next;
    expect(p).toMatchObject({ state: "fulfilled", value: "finished anyway" });
  });
});

describe("cancellation with dedup", () => {
  it("cancelling one sharer of a pending task leaves the shared work to the others", async () => {
    const q = new ChainTaskQueue();
    const block = deferred();
    const first = q.submit({ signature: "vm-1", name: "block", run: () => block.promise });
    const run = vi.fn(async () => "shared result");
    const ca = new AbortController();
    const cb = new AbortController();
    const a = track(q.submit({ signature: "vm-1", name: "sync", dedupKey: "k", run }, { signal: ca.signal }));
    const b = track(q.submit({ signature: "vm-1", name: "sync", dedupKey: "k", run }, { signal: cb.signal }));
    const c = q.submit({ signature: "vm-1", name: "sync", dedupKey: "k", run }); // no signal
    ca.abort(); // the first submitter, whose task object is the one that runs
    await flushMicrotasks();
    expect((a.reason as ChainTaskError).code).toBe("CANCELLED");
    expect(b.state).toBe("pending");
    expect(q.pendingCount("vm-1")).toBe(1);
    block.resolve();
    await first;
    expect(await c).toBe("shared result");
    await flushMicrotasks();
    expect(b).toMatchObject({ state: "fulfilled", value: "shared result" });
    expect(run).toHaveBeenCalledTimes(1);
  });

  it("removes the pending task (it never runs) once every sharer cancelled", async () => {
    const q = new ChainTaskQueue();
    const block = deferred();
    const first = q.submit({ signature: "vm-1", name: "block", run: () => block.promise });
    const run = vi.fn(async () => "x");
    const ca = new AbortController();
    const cb = new AbortController();
    const a = track(q.submit({ signature: "vm-1", name: "sync", dedupKey: "k", run }, { signal: ca.signal }));
    const b = track(q.submit({ signature: "vm-1", name: "sync", dedupKey: "k", run }, { signal: cb.signal }));
    ca.abort();
    expect(q.pendingCount("vm-1")).toBe(1);
    cb.abort();
    expect(q.pendingCount("vm-1")).toBe(0);
    await flushMicrotasks();
    expect(a.state).toBe("rejected");
    expect(b.state).toBe("rejected");
    // The key is free again: a new submission queues fresh work instead of joining a dead task.
    const fresh = q.submit({ signature: "vm-1", name: "sync", dedupKey: "k", run: async () => "fresh" });
    block.resolve();
    await first;
    expect(await fresh).toBe("fresh");
    expect(run).not.toHaveBeenCalled();
  });

  it("aborts a running shared task's signal only when every sharer aborted", async () => {
    const q = new ChainTaskQueue();
    const block = deferred();
    const first = q.submit({ signature: "vm-1", name: "block", run: () => block.promise });
    let ctxSignal: AbortSignal | undefined;
    const gate = deferred<string>();
    const run = (ctx: { signal: AbortSignal }) => {
      ctxSignal = ctx.signal;
      return gate.promise;
    };
    const ca = new AbortController();
    const cb = new AbortController();
    const a = q.submit({ signature: "vm-1", name: "sync", dedupKey: "k", run }, { signal: ca.signal });
    const b = q.submit({ signature: "vm-1", name: "sync", dedupKey: "k", run }, { signal: cb.signal });
    block.resolve();
    await first;
    await flushMicrotasks();
    expect(ctxSignal?.aborted).toBe(false);
    ca.abort("a");
    ca.signal.dispatchEvent(new Event("abort")); // a repeated event from one submitter is one vote
    expect(ctxSignal?.aborted).toBe(false);
    cb.abort("b");
    expect(ctxSignal?.aborted).toBe(true);
    expect(ctxSignal?.reason).toBe("b");
    gate.resolve("done");
    expect(await Promise.all([a, b])).toEqual(["done", "done"]);
  });
});
