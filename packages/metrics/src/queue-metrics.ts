import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import type { ChainTaskQueue } from "@stratum/chain-task";
import { TASK_SECONDS } from "./buckets";

/** What the queue metrics read of a queue: its O(1) totals, and its observer hook. */
export type ObservableQueue = Pick<ChainTaskQueue, "pendingSize" | "runningSize" | "signatureCount" | "observe">;

/**
 * Registers the chain-task metrics of `queue` on `registry`: depth and busy signatures are read
 * at scrape time (O(1) counters the queue keeps), wait/run times and outcomes come from its
 * observer. No label carries a task name or signature: both contain resource uuids, and one
 * series per VM would swamp Prometheus. Returns the function that detaches from the queue.
 */
export function chainTaskQueueMetrics(registry: Registry, queue: ObservableQueue): () => void {
  const registers = [registry];
  new Gauge({
    name: "stratum_chain_task_queue_tasks",
    help: "Tasks in this replica's chain-task queue: state=pending (waiting for their signature) or running (holding a slot).",
    labelNames: ["state"],
    registers,
    collect() {
      this.set({ state: "pending" }, queue.pendingSize);
      this.set({ state: "running" }, queue.runningSize);
    },
  });
  new Gauge({
    name: "stratum_chain_task_queue_signatures",
    help: "Signatures (resources) with a pending or running task in this replica's chain-task queue.",
    registers,
    collect() {
      this.set(queue.signatureCount);
    },
  });
  const wait = new Histogram({
    name: "stratum_chain_task_wait_seconds",
    help: "Time from submission to start of chain tasks that started, in seconds (whole milliseconds).",
    buckets: TASK_SECONDS,
    registers,
  });
  const run = new Histogram({
    name: "stratum_chain_task_run_seconds",
    help: "Time from start to end of chain tasks, by outcome (ok, failed, execution_timeout), in seconds.",
    labelNames: ["outcome"],
    buckets: TASK_SECONDS,
    registers,
  });
  const ended = new Counter({
    name: "stratum_chain_tasks_total",
    help: "Chain tasks that left the queue, by outcome: ok, failed, execution_timeout; never ran: pending_timeout, cancelled, closed, queue_full.",
    labelNames: ["outcome"],
    registers,
  });
  return queue.observe({
    onTaskStart(info) {
      wait.observe(info.waitedMs / 1000);
    },
    onTaskEnd(info) {
      ended.inc({ outcome: info.outcome });
      if (info.outcome === "ok" || info.outcome === "failed" || info.outcome === "execution_timeout") {
        run.observe({ outcome: info.outcome }, info.ranMs / 1000);
      }
    },
  });
}
