import { describe, expect, it } from "vitest";
import { ChainTaskQueue } from "./chain-task-queue";
import type { ChainTask, ChainTaskQueueOptions } from "./types";
import { deferred } from "./test-support";

const good: ChainTask<string> = { signature: "vm-1", name: "op", run: async () => "ok" };

function bad(overrides: Record<string, unknown>): ChainTask<string> {
  return { ...good, ...overrides } as unknown as ChainTask<string>;
}

describe("input validation", () => {
  const cases: Array<[string, Record<string, unknown>, ErrorConstructor, RegExp]> = [
    ["empty signature", { signature: "" }, TypeError, /task\.signature must be a non-empty string, got ""/],
    ["missing signature", { signature: undefined }, TypeError, /task\.signature/],
    ["non-string signature", { signature: 42 }, TypeError, /task\.signature must be a non-empty string, got 42/],
    ["empty name", { name: "" }, TypeError, /task\.name/],
    ["non-function run", { run: "go" }, TypeError, /task\.run must be a function, got "go"/],
    ["missing run", { run: undefined }, TypeError, /task\.run must be a function/],
    ["syncLevel 0", { syncLevel: 0 }, RangeError, /task\.syncLevel must be a positive integer, got 0/],
    ["syncLevel 1.5", { syncLevel: 1.5 }, RangeError, /task\.syncLevel must be a positive integer, got 1\.5/],
    ["syncLevel NaN", { syncLevel: Number.NaN }, RangeError, /task\.syncLevel/],
    ["syncLevel Infinity", { syncLevel: Number.POSITIVE_INFINITY }, RangeError, /task\.syncLevel/],
    ["syncLevel string", { syncLevel: "2" }, TypeError, /task\.syncLevel must be a positive integer, got "2"/],
    ["empty dedupKey", { dedupKey: "" }, TypeError, /task\.dedupKey/],
    ["pendingTimeoutMs 0", { pendingTimeoutMs: 0 }, RangeError, /task\.pendingTimeoutMs/],
    ["pendingTimeoutMs negative", { pendingTimeoutMs: -5 }, RangeError, /task\.pendingTimeoutMs/],
    ["executionTimeoutMs too large for setTimeout", { executionTimeoutMs: 2 ** 31 }, RangeError, /task\.executionTimeoutMs/],
    ["executionTimeoutMs NaN", { executionTimeoutMs: Number.NaN }, RangeError, /task\.executionTimeoutMs/],
    ["maxPending negative", { maxPending: -1 }, RangeError, /task\.maxPending/],
    ["maxPending fractional", { maxPending: 2.5 }, RangeError, /task\.maxPending/],
  ];

  it.each(cases)("rejects %s synchronously, naming the field, and changes nothing", async (_label, overrides, type, message) => {
    const q = new ChainTaskQueue();
    const gate = deferred();
    const busy = q.submit({ signature: "vm-1", name: "busy", run: () => gate.promise });
    const before = JSON.stringify(q.inspect().map((s) => ({ ...s, tasks: s.tasks.map((t) => t.name) })));
    expect(() => q.submit(bad(overrides))).toThrow(type);
    expect(() => q.submit(bad(overrides))).toThrow(message);
    expect(JSON.stringify(q.inspect().map((s) => ({ ...s, tasks: s.tasks.map((t) => t.name) })))).toBe(before);
    expect(q.size).toBe(1);
    gate.resolve();
    await busy;
    expect(q.signatureCount).toBe(0);
  });

  it("rejects a non-object task and a bad signal option", () => {
    const q = new ChainTaskQueue();
    expect(() => q.submit(null as unknown as ChainTask<void>)).toThrow(TypeError);
    expect(() => q.submit(good, { signal: {} as AbortSignal })).toThrow(/options\.signal must be an AbortSignal/);
    expect(q.size).toBe(0);
    expect(q.signatureCount).toBe(0);
  });

  it("validates queue options", () => {
    const make = (o: unknown) => () => new ChainTaskQueue(o as ChainTaskQueueOptions);
    expect(make({ pendingTimeoutMs: 0 })).toThrow(/options\.pendingTimeoutMs/);
    expect(make({ executionTimeoutMs: "1s" })).toThrow(TypeError);
    expect(make({ maxPending: -1 })).toThrow(/options\.maxPending/);
    expect(make(null)).toThrow(TypeError);
    expect(make({ pendingTimeoutMs: Number.POSITIVE_INFINITY, executionTimeoutMs: 5, maxPending: 0 })).not.toThrow();
  });

  it("accepts Infinity to disable a queue-wide timeout or bound for one task", async () => {
    const q = new ChainTaskQueue({ pendingTimeoutMs: 10, executionTimeoutMs: 10, maxPending: 1 });
    await expect(
      q.submit({ ...good, pendingTimeoutMs: Number.POSITIVE_INFINITY, executionTimeoutMs: Number.POSITIVE_INFINITY, maxPending: Number.POSITIVE_INFINITY }),
    ).resolves.toBe("ok");
  });
});
