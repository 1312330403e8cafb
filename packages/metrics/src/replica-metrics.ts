import { Registry, collectDefaultMetrics } from "prom-client";
import type { ServerInterceptor } from "@stratum/rpc";
import { agentCallMetrics, type AgentCallObserver } from "./agent-metrics";
import { dbPoolMetrics, type DbInUse } from "./db-metrics";
import { membershipMetrics, type MembershipSource } from "./membership-metrics";
import { chainTaskQueueMetrics, type ObservableQueue } from "./queue-metrics";
import { createRpcMetrics, rpcMetricsInterceptor } from "./rpc-metrics";

export interface ReplicaMetricsOptions {
  /** The replica's service (`compute`): default label `service` on every series. */
  service: string;
  /** The replica's id: default label `replica` on every series. */
  replicaId: string;
  /** The replica's chain-task queue: depth gauges, wait/run histograms, outcomes. */
  queue?: ObservableQueue;
  /** The membership view: ring epoch and live replicas of `rings` (and of any service it reports). */
  view?: MembershipSource;
  /** Services whose rings to report from the first scrape on. Default: `[service]`. */
  rings?: readonly string[];
  /** Connections of the replica's DB pool in use, read at scrape time (see {@link pgBackendsInUse}). */
  dbInUse?: DbInUse;
  /** The DB pool's size, exported beside `dbInUse` so "in use / max" needs no config lookup. */
  dbPoolMax?: number;
  /** Node process metrics (CPU, memory, event-loop lag, GC; prom-client's defaults). Default true. */
  processMetrics?: boolean;
}

export interface ReplicaMetrics {
  /** The replica's registry: serve it with `startMetricsServer({ registry })`. */
  readonly registry: Registry;
  /** Put first in the gRPC server's `interceptors`. */
  readonly rpcInterceptor: ServerInterceptor;
  /** Pass as the agent client's `onCall`. */
  readonly onAgentCall: AgentCallObserver;
  /** Detaches from the queue and the view and empties the registry. Idempotent. */
  close(): void;
}

/**
 * The one entry point for the runtime: a registry of its own per replica (never prom-client's
 * global one, so two replicas in one process, as in tests and the devstack, do not mix), with
 * every Stratum metric registered and the `service` and `replica` default labels set.
 *
 * @throws TypeError naming the option when one is malformed; nothing is registered then.
 */
export function createReplicaMetrics(options: ReplicaMetricsOptions): ReplicaMetrics {
  if (typeof options !== "object" || options === null) throw new TypeError("replica metrics: options must be an object");
  const { service, replicaId, queue, view, dbInUse, dbPoolMax } = options;
  if (typeof service !== "string" || service === "") throw new TypeError("replica metrics: service must be a non-empty string");
  if (typeof replicaId !== "string" || replicaId === "") throw new TypeError("replica metrics: replicaId must be a non-empty string");
  const rings = options.rings ?? [service];
  if (!Array.isArray(rings) || rings.some((r) => typeof r !== "string" || r === "")) throw new TypeError("replica metrics: rings must be an array of service names");
  if (queue !== undefined && typeof queue?.observe !== "function") throw new TypeError("replica metrics: queue must be a ChainTaskQueue");
  if (view !== undefined && typeof view?.onChange !== "function") throw new TypeError("replica metrics: view must be a MembershipView");
  if (dbInUse !== undefined && typeof dbInUse !== "function") throw new TypeError("replica metrics: dbInUse must be a function");
  if (dbPoolMax !== undefined && !(Number.isInteger(dbPoolMax) && dbPoolMax > 0)) throw new TypeError(`replica metrics: dbPoolMax must be a positive integer, got ${String(dbPoolMax)}`);

  const registry = new Registry();
  registry.setDefaultLabels({ service, replica: replicaId });
  if (options.processMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: "stratum_process_" });
  const rpcInterceptor = rpcMetricsInterceptor(createRpcMetrics(registry));
  const onAgentCall = agentCallMetrics(registry);
  const detach: Array<() => void> = [];
  if (queue !== undefined) detach.push(chainTaskQueueMetrics(registry, queue));
  if (view !== undefined) detach.push(membershipMetrics(registry, view, rings));
  if (dbInUse !== undefined) dbPoolMetrics(registry, dbInUse, dbPoolMax);
  return {
    registry,
    rpcInterceptor,
    onAgentCall,
    close() {
      for (const off of detach.splice(0)) off();
      registry.clear();
    },
  };
}
