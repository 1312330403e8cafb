import { describe, expect, it } from "vitest";
import { ChainTaskQueue } from "@stratum/chain-task";
import { Code, StratumError } from "@stratum/core";
import { fromQueueError } from "./errors";

describe("fromQueueError", () => {
  it("turns queue refusals into StratumErrors a client can act on, naming the signature", async () => {
    const queue = new ChainTaskQueue({ maxPending: 0 });
    let release!: () => void;
    const running = queue.submit({ signature: "vm-1", name: "hold", run: () => new Promise<void>((r) => (release = r)) });
    const full = await queue.submit({ signature: "vm-1", name: "second", run: () => undefined }).catch(fromQueueError);
    expect(full).toBeInstanceOf(StratumError);
    expect(full).toMatchObject({ code: Code.RESOURCE_EXHAUSTED, reason: "TOO_MANY_PENDING_OPERATIONS", resources: { signature: "vm-1" } });
    release();
    await running;
    await queue.close();
    const closed = await queue.submit({ signature: "vm-2", name: "late", run: () => undefined }).catch(fromQueueError);
    expect(closed).toMatchObject({ code: Code.UNAVAILABLE, reason: "REPLICA_STOPPING" });
  });

  it("passes anything else through", () => {
    const e = new Error("x");
    expect(fromQueueError(e)).toBe(e);
  });
});
