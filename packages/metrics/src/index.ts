/**
 * Prometheus metrics of one Stratum replica: RPCs, the chain-task queue, agent calls, the DB
 * pool and the membership rings, in one registry per replica, and the `/metrics` endpoint.
 * Metric names and labels: README.md.
 */
export { createReplicaMetrics } from "./replica-metrics";
export type { ReplicaMetrics, ReplicaMetricsOptions } from "./replica-metrics";
export { startMetricsServer } from "./server";
export type { MetricsServer, MetricsServerOptions } from "./server";
export { createRpcMetrics, rpcMetricsInterceptor } from "./rpc-metrics";
export type { RpcMetrics } from "./rpc-metrics";
export { chainTaskQueueMetrics } from "./queue-metrics";
export type { ObservableQueue } from "./queue-metrics";
export { agentCallMetrics } from "./agent-metrics";
export type { AgentCallEvent, AgentCallObserver } from "./agent-metrics";
export { dbPoolMetrics, pgBackendsInUse } from "./db-metrics";
export type { DbInUse, SqlQuery } from "./db-metrics";
export { membershipMetrics } from "./membership-metrics";
export type { MembershipSource } from "./membership-metrics";
export { AGENT_SECONDS, RPC_SECONDS, TASK_SECONDS } from "./buckets";
