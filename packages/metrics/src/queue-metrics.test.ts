import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { Registry } from "prom-client";
import { ChainTaskQueue } from "@stratum/chain-task";
import { chainTaskQueueMetrics } from "./queue-metrics";
import { parseMetrics, valueOf } from "./test-support";

function gate() {
  let open!: () => void;
  const promise = new Promise<void>((r) => (open = r));
  return { promise, open };
}

describe("chain-task queue metrics", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("reads depth and busy signatures at scrape time, and times the wait of each started task", async () => {
    const registry = new Registry();
    const queue = new ChainTaskQueue();
    chainTaskQueueMetrics(registry, queue);
    const scrape = async () => parseMetrics(await registry.metrics());
    const first = gate();
    const other = gate();
    const done = [
      queue.submit({ signature: "vm-1", name: "first", run: () => first.promise }),
      queue.submit({ signature: "vm-1", name: "second", run: () => undefined }),
      queue.submit({ signature: "vm-1", name: "third", run: () => Promise.reject(new Error("boom")) }).catch(() => "failed"),
      queue.submit({ signature: "vm-2", name: "other", run: () => other.promise }),
    ];
    let s = await scrape();
    expect(valueOf(s, "stratum_chain_task_queue_tasks", { state: "pending" })).toBe(2);
    expect(valueOf(s, "stratum_chain_task_queue_tasks", { state: "running" })).toBe(2);
    expect(valueOf(s, "stratum_chain_task_queue_signatures")).toBe(2);
    await vi.advanceTimersByTimeAsync(300);
    first.open();
    other.open();
    await Promise.all(done);
    s = await scrape();
    expect(valueOf(s, "stratum_chain_task_queue_tasks", { state: "pending" })).toBe(0);
    expect(valueOf(s, "stratum_chain_task_queue_tasks", { state: "running" })).toBe(0);
    expect(valueOf(s, "stratum_chain_task_queue_signatures")).toBe(0);
    // Two started at once, two waited 300 ms behind "first".
    expect(valueOf(s, "stratum_chain_task_wait_seconds_count")).toBe(4);
    expect(valueOf(s, "stratum_chain_task_wait_seconds_bucket", { le: "0.1" })).toBe(2);
    expect(valueOf(s, "stratum_chain_task_wait_seconds_bucket", { le: "0.5" })).toBe(4);
    expect(valueOf(s, "stratum_chain_task_wait_seconds_sum")).toBeCloseTo(0.6, 6);
    expect(valueOf(s, "stratum_chain_tasks_total", { outcome: "ok" })).toBe(3);
    expect(valueOf(s, "stratum_chain_tasks_total", { outcome: "failed" })).toBe(1);
    expect(valueOf(s, "stratum_chain_task_run_seconds_count", { outcome: "ok" })).toBe(3);
    expect(valueOf(s, "stratum_chain_task_run_seconds_sum", { outcome: "ok" })).toBeCloseTo(0.6, 6);
  });

  it("counts tasks that never ran by why, without a run time", async () => {
    const registry = new Registry();
    const queue = new ChainTaskQueue();
    const detach = chainTaskQueueMetrics(registry, queue);
    const hold = gate();
    const running = queue.submit({ signature: "s", name: "hold", run: () => hold.promise });
    const late = queue.submit({ signature: "s", name: "late", run: () => undefined, pendingTimeoutMs: 10 }).catch(() => "timed out");
    await vi.advanceTimersByTimeAsync(10);
    await late;
    hold.open();
    await running;
    detach();
    await queue.submit({ signature: "s", name: "unseen", run: () => undefined });
    const s = parseMetrics(await registry.metrics());
    expect(valueOf(s, "stratum_chain_tasks_total", { outcome: "pending_timeout" })).toBe(1);
    expect(valueOf(s, "stratum_chain_tasks_total", { outcome: "ok" })).toBe(1);
    expect(valueOf(s, "stratum_chain_task_run_seconds_count", { outcome: "pending_timeout" })).toBeUndefined();
    expect(valueOf(s, "stratum_chain_task_wait_seconds_count")).toBe(1);
  });
});
