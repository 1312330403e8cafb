/**
 * Histogram buckets, in seconds. Fixed per metric so that every replica's series aggregate
 * (Prometheus can only sum histograms whose buckets agree).
 */

/** RPC handling: a cached read answers in a millisecond, a VM create may take tens of seconds. */
export const RPC_SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** Chain-task wait and run: a free signature starts at once, a busy VM queues behind minutes of work. */
export const TASK_SECONDS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300];

/** Agent calls: a ping is milliseconds, a migration is minutes (retries included). */
export const AGENT_SECONDS = [0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900];
