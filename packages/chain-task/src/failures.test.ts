import { describe, expect, it } from "vitest";
import { ChainTaskQueue } from "./chain-task-queue";
import { deferred, flushMicrotasks } from "./test-support";

describe("task failures", () => {
  it("delivers a synchronous throw to the submitter and frees the slot", async () => {
    const q = new ChainTaskQueue();
    const boom = new Error("sync boom");
    const failed = q.submit({
      signature: "vm-1",
      name: "bad",
      run: () => {
        throw boom;
      },
    });
    const next = q.submit({ signature: "vm-1", name: "next", run: async () => "next ran" });
    await expect(failed).rejects.toBe(boom);
    expect(await next).toBe("next ran");
    expect(q.size).toBe(0);
    expect(q.signatureCount).toBe(0);
  });

  it("delivers an async rejection to the submitter and frees the slot", async () => {
    const q = new ChainTaskQueue();
    const boom = new Error("async boom");
    const gate = deferred();
    const failed = q.submit({
      signature: "vm-1",
      name: "bad",
      run: async () => {
        await gate.promise;
        throw boom;
      },
    });
    const next = q.submit({ signature: "vm-1", name: "next", run: async () => "next ran" });
    await flushMicrotasks();
    expect(q.runningCount("vm-1")).toBe(1);
    expect(q.pendingCount("vm-1")).toBe(1);
    gate.resolve();
    await expect(failed).rejects.toBe(boom);
    expect(await next).toBe("next ran");
    expect(q.size).toBe(0);
    expect(q.signatureCount).toBe(0);
  });

  it("frees the slot with syncLevel > 1 too", async () => {
    const q = new ChainTaskQueue();
    const results = Array.from({ length: 10 }, (_, i) =>
      q.submit({
        signature: "host-1",
        name: `t${i}`,
        syncLevel: 2,
        run: () => {
          if (i % 2 === 0) throw new Error(`fail ${i}`);
          return Promise.reject(new Error(`reject ${i}`));
        },
      }),
    );
    const settled = await Promise.allSettled(results);
    expect(settled.every((r) => r.status === "rejected")).toBe(true);
    expect(q.size).toBe(0);
    expect(q.signatureCount).toBe(0);
  });

  it("does not grow the stack over a long chain of synchronously failing tasks", async () => {
    const q = new ChainTaskQueue({ maxPending: Number.POSITIVE_INFINITY });
    const n = 50_000;
    // Queue them all behind a blocker, so that releasing it starts one long chain.
    const blocker = deferred();
    const results: Promise<unknown>[] = [q.submit({ signature: "vm-1", name: "blocker", run: () => blocker.promise })];
    for (let i = 0; i < n; i++) {
      results.push(
        q.submit({
          signature: "vm-1",
          name: "throws",
          run: () => {
            throw new RangeError("x");
          },
        }),
      );
    }
    blocker.resolve();
    const settled = await Promise.allSettled(results);
    expect(settled.filter((r) => r.status === "rejected" && r.reason instanceof RangeError)).toHaveLength(n);
    expect(q.size).toBe(0);
  });
});
