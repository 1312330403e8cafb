import { describe, expect, it, vi } from "vitest";
import { ChainTaskQueue } from "./chain-task-queue";
import { ChainTaskError } from "./errors";
import { deferred, flushMicrotasks, track } from "./test-support";

describe("close", () => {
  it("rejects pending tasks with CLOSED, waits for running ones, refuses new ones", async () => {
    const q = new ChainTaskQueue();
    const gate = deferred<string>();
    const running = track(q.submit({ signature: "vm-1", name: "running", run: () => gate.promise }));
    const run = vi.fn(async () => {});
    const pending = track(q.submit({ signature: "vm-1", name: "queued", run }));
    const pendingOther = track(q.submit({ signature: "vm-1", name: "queued-2", dedupKey: "k", run }));
    const sharer = track(q.submit({ signature: "vm-1", name: "queued-2", dedupKey: "k", run }));

    const closed = track(q.close());
    expect(q.closed).toBe(true);
    await flushMicrotasks();
    for (const t of [pending, pendingOther, sharer]) {
      expect(t.state).toBe("rejected");
      expect((t.reason as ChainTaskError).code).toBe("CLOSED");
    }
    expect((pending.reason as ChainTaskError).taskName).toBe("queued");
    expect(closed.state).toBe("pending"); // still waiting for the running task
    await expect(q.submit({ signature: "vm-2", name: "late", run })).rejects.toMatchObject({ code: "CLOSED", taskName: "late" });

    gate.resolve("finished");
    await flushMicrotasks();
    expect(running).toMatchObject({ state: "fulfilled", value: "finished" });
    expect(closed.state).toBe("fulfilled");
    expect(run).not.toHaveBeenCalled();
    expect(q.signatureCount).toBe(0);
    await expect(q.close()).resolves.toBeUndefined();
  });

  it("resolves at once when nothing runs", async () => {
    const q = new ChainTaskQueue();
    await expect(q.close()).resolves.toBeUndefined();
  });
});
