import { DEFAULT_SHUTDOWN_GRACE_MS } from "@stratum/rpc";

/**
 * The numbers of a graceful stop, which must fit inside each other or a stop abandons a VM
 * mid-operation (the agent acted, the database never heard):
 *
 *     SIGTERM → leave the ring, NOT_SERVING
 *             → calls in flight drain           ≤ callDrainMs (the gRPC server's grace, 10 s)
 *             → running operations finish       ≤ taskTimeoutMs (the chain-task execution timeout,
 *                                                 itself above the longest agent command a task
 *                                                 sends, its retries and its cleanup)
 *             → clients, NATS, Postgres close   ≤ closeMarginMs (5 s)
 *     force exit at forceExitMs = the sum; the orchestrator's grace (Kubernetes
 *     `terminationGracePeriodSeconds`, compose `stop_grace_period`) must exceed it plus any
 *     preStop delay — `deploy/checks` asserts it from these same numbers.
 *
 * Queued operations that have not started are refused at once (UNAVAILABLE `REPLICA_STOPPING`),
 * so their callers retry on the new owner instead of waiting for this replica.
 */
export interface ShutdownBudget {
  readonly callDrainMs: number;
  readonly taskTimeoutMs: number;
  readonly closeMarginMs: number;
  readonly forceExitMs: number;
}

/** Default execution timeout of a service's chain tasks. */
export const DEFAULT_TASK_TIMEOUT_MS = 120_000;
const CLOSE_MARGIN_MS = 5_000;

export function shutdownBudget(taskTimeoutMs: number = DEFAULT_TASK_TIMEOUT_MS): ShutdownBudget {
  return { callDrainMs: DEFAULT_SHUTDOWN_GRACE_MS, taskTimeoutMs, closeMarginMs: CLOSE_MARGIN_MS, forceExitMs: DEFAULT_SHUTDOWN_GRACE_MS + taskTimeoutMs + CLOSE_MARGIN_MS };
}
