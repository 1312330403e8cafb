import { afterEach, describe, expect, it } from "vitest";
import { ChainTaskQueue } from "@stratum/chain-task";
import { Harness } from "../../rpc/src/echo.fixture";
import { createReplicaMetrics, type ReplicaMetrics } from "./replica-metrics";
import { startMetricsServer } from "./server";
import { parseMetrics, valueOf } from "./test-support";

const harness = new Harness();
const opened: ReplicaMetrics[] = [];
afterEach(async () => {
  for (const m of opened.splice(0)) m.close();
  await harness.close();
});

describe("createReplicaMetrics", () => {
  it("one registry per replica, every series labelled with service and replica, served over HTTP", async () => {
    const queue = new ChainTaskQueue();
    const metrics = createReplicaMetrics({ service: "compute", replicaId: "compute-1", queue, dbInUse: () => 2, dbPoolMax: 10 });
    const other = createReplicaMetrics({ service: "compute", replicaId: "compute-2", processMetrics: false });
    opened.push(metrics, other);
    const server = await harness.server({}, { interceptors: [metrics.rpcInterceptor] });
    await harness.client(`127.0.0.1:${server.port}`).echo({ message: "hi" });
    await queue.submit({ signature: "vm-1", name: "op", run: () => undefined });
    metrics.onAgentCall({ command: "/vm/start", outcome: "ok", durationMs: 5, attempts: 1 });

    const http = await startMetricsServer({ host: "127.0.0.1", port: 0, registry: metrics.registry });
    let text: string;
    try {
      text = await (await fetch(http.url)).text();
    } finally {
      await http.close();
    }
    const s = parseMetrics(text);
    expect(s.length).toBeGreaterThan(0);
    expect(s.filter((x) => x.labels["service"] !== "compute" || x.labels["replica"] !== "compute-1")).toEqual([]);
    expect(valueOf(s, "stratum_rpc_server_handled_total", { grpc_method: "Echo", grpc_code: "OK" })).toBe(1);
    expect(valueOf(s, "stratum_chain_tasks_total", { outcome: "ok" })).toBe(1);
    expect(valueOf(s, "stratum_agent_calls_total", { command: "/vm/start" })).toBe(1);
    expect(valueOf(s, "stratum_db_pool_in_use")).toBe(2);
    expect(valueOf(s, "stratum_db_pool_max")).toBe(10);
    expect(s.some((x) => x.name.startsWith("stratum_process_"))).toBe(true);

    // The other replica's registry saw none of it.
    const o = parseMetrics(await other.registry.metrics());
    expect(valueOf(o, "stratum_rpc_server_handled_total", { grpc_method: "Echo" })).toBeUndefined();
    expect(o.some((x) => x.name.startsWith("stratum_process_"))).toBe(false);
  });

  it("close() detaches from the queue and empties the registry", async () => {
    const queue = new ChainTaskQueue();
    const attached = new Set<object>();
    // The real queue, with its observe() watched: detaching is otherwise invisible.
    const watched = {
      get pendingSize() { return queue.pendingSize; },
      get runningSize() { return queue.runningSize; },
      get signatureCount() { return queue.signatureCount; },
      observe(observer: Parameters<ChainTaskQueue["observe"]>[0]) {
        const off = queue.observe(observer);
        attached.add(observer);
        return () => {
          attached.delete(observer);
          off();
        };
      },
    };
    const metrics = createReplicaMetrics({ service: "compute", replicaId: "r1", queue: watched, processMetrics: false });
    expect(attached.size).toBe(1);
    metrics.close();
    metrics.close();
    expect(attached.size).toBe(0);
    expect((await metrics.registry.metrics()).trim()).toBe("");
  });

  it("refuses malformed options naming them", () => {
    expect(() => createReplicaMetrics({ service: "", replicaId: "r" })).toThrow(/service must be a non-empty string/);
    expect(() => createReplicaMetrics({ service: "s", replicaId: undefined as never })).toThrow(/replicaId must be a non-empty string/);
    expect(() => createReplicaMetrics({ service: "s", replicaId: "r", queue: {} as never })).toThrow(/queue must be a ChainTaskQueue/);
    expect(() => createReplicaMetrics({ service: "s", replicaId: "r", dbPoolMax: -1 })).toThrow(/dbPoolMax must be a positive integer/);
    expect(() => createReplicaMetrics({ service: "s", replicaId: "r", rings: [""] })).toThrow(/rings must be an array/);
  });
});
