import { AsyncLocalStorage } from "node:async_hooks";
import { describe, expect, it } from "vitest";
import { currentWork, runWithWork } from "@stratum/core";
import { ChainTaskQueue } from "./chain-task-queue";
import { deferred } from "./test-support";

describe("async context", () => {
  it("a queued task runs in its submitter's work scope, not in the one of the task that freed the slot", async () => {
    const q = new ChainTaskQueue();
    const gate = deferred();
    const seen: Array<string | undefined> = [];
    const first = runWithWork({ requestId: "req-1" }, () =>
      q.submit({
        signature: "vm-1",
        name: "first",
        run: async () => {
          seen.push(currentWork()?.requestId);
          await gate.promise;
          seen.push(currentWork()?.requestId);
        },
      }),
    );
    // Queued behind "first": it is started from first's completion, in first's context.
    const second = runWithWork({ requestId: "req-2" }, () =>
      q.submit({ signature: "vm-1", name: "second", run: () => void seen.push(currentWork()?.requestId) }),
    );
    // And one submitted outside any scope sees none, even though req-2's completion starts it.
    const third = q.submit({ signature: "vm-1", name: "third", run: () => void seen.push(currentWork()?.requestId ?? "none") });
    gate.resolve();
    await Promise.all([first, second, third]);
    expect(seen).toEqual(["req-1", "req-1", "req-2", "none"]);
  });

  it("carries any AsyncLocalStorage, also through a timed (closure-bound) task", async () => {
    const als = new AsyncLocalStorage<string>();
    const q = new ChainTaskQueue({ executionTimeoutMs: 60_000 });
    const gate = deferred();
    const seen: Array<string | undefined> = [];
    const a = als.run("a", () => q.submit({ signature: "s", name: "a", syncLevel: 2, run: () => gate.promise }));
    const b = als.run("b", () => q.submit({ signature: "s", name: "b", run: () => void seen.push(als.getStore()) }));
    gate.resolve();
    await Promise.all([a, b]);
    expect(seen).toEqual(["b"]);
  });
});
