import { describe, expect, it } from "vitest";
import { ChainTaskQueue } from "./chain-task-queue";
import { DEFAULT_MAX_PENDING } from "./defaults";
import { ChainTaskError, isChainTaskError } from "./errors";
import { deferred } from "./test-support";

describe("maxPending", () => {
  it("rejects past the bound with QUEUE_FULL naming signature and bound, and queues nothing", async () => {
    const q = new ChainTaskQueue({ maxPending: 2 });
    const block = deferred();
    const ran: string[] = [];
    const task = (name: string) => ({
      signature: "vm-1",
      name,
      run: async () => {
        ran.push(name);
      },
    });
    const first = q.submit({ signature: "vm-1", name: "running", run: () => block.promise });
    const p1 = q.submit(task("p1"));
    const p2 = q.submit(task("p2"));
    const error = await q.submit(task("p3")).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ChainTaskError);
    expect(isChainTaskError(error, "QUEUE_FULL")).toBe(true);
    const e = error as ChainTaskError;
    expect(e.signature).toBe("vm-1");
    expect(e.limit).toBe(2);
    expect(e.taskName).toBe("p3");
    expect(e.message).toContain('"vm-1"');
    expect(e.message).toContain("maxPending 2");
    expect(q.pendingCount("vm-1")).toBe(2);
    // Other signatures have their own bound.
    expect(await q.submit({ signature: "vm-2", name: "other", run: async () => "ok" })).toBe("ok");
    block.resolve();
    await Promise.all([first, p1, p2]);
    expect(ran).toEqual(["p1", "p2"]);
  });

  it("lets a task override the bound for itself", async () => {
    const q = new ChainTaskQueue({ maxPending: 1 });
    const block = deferred();
    const first = q.submit({ signature: "vm-1", name: "running", run: () => block.promise });
    const p1 = q.submit({ signature: "vm-1", name: "p1", run: async () => {} });
    const urgent = q.submit({ signature: "vm-1", name: "urgent", maxPending: 5, run: async () => "urgent" });
    const strict = q.submit({ signature: "vm-1", name: "strict", maxPending: 0, run: async () => {} });
    await expect(strict).rejects.toMatchObject({ code: "QUEUE_FULL", limit: 0 });
    block.resolve();
    await Promise.all([first, p1]);
    expect(await urgent).toBe("urgent");
  });

  it("never rejects a task that can start at once, even with maxPending 0", async () => {
    const q = new ChainTaskQueue({ maxPending: 0 });
    const block = deferred();
    const a = q.submit({ signature: "host-1", name: "a", syncLevel: 2, run: () => block.promise });
    const b = q.submit({ signature: "host-1", name: "b", syncLevel: 2, run: () => block.promise });
    const c = q.submit({ signature: "host-1", name: "c", syncLevel: 2, run: async () => {} });
    await expect(c).rejects.toMatchObject({ code: "QUEUE_FULL" });
    block.resolve();
    await Promise.all([a, b]);
  });

  it(`defaults to ${DEFAULT_MAX_PENDING} pending tasks per signature`, async () => {
    const q = new ChainTaskQueue();
    const block = deferred();
    const first = q.submit({ signature: "vm-1", name: "running", run: () => block.promise });
    const accepted: Promise<void>[] = [];
    for (let i = 0; i < DEFAULT_MAX_PENDING; i++) accepted.push(q.submit({ signature: "vm-1", name: "t", run: async () => {} }));
    await expect(q.submit({ signature: "vm-1", name: "one-too-many", run: async () => {} })).rejects.toMatchObject({
      code: "QUEUE_FULL",
      limit: DEFAULT_MAX_PENDING,
    });
    block.resolve();
    await Promise.all([first, ...accepted]);
  });
});
