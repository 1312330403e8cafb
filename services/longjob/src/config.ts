import { envInt } from "@stratum/runtime";

/** Default of how long finished jobs are kept: 30 days. */
export const DEFAULT_JOB_RETENTION_MS = 30 * 24 * 3_600_000;
/** How often a replica removes finished jobs past their retention. */
export const DEFAULT_JOB_SWEEP_INTERVAL_MS = 3_600_000;

/** Longjob's own environment variables, read and checked with the runtime's. */
export const LONGJOB_ENV = {
  STRATUM_JOB_RETENTION_MS: envInt(`how long finished jobs are kept before they are removed (default ${DEFAULT_JOB_RETENTION_MS}: 30 days)`, DEFAULT_JOB_RETENTION_MS, 1_000, 10 * 365 * 24 * 3_600_000),
  STRATUM_JOB_SWEEP_INTERVAL_MS: envInt(`period of the removal of expired finished jobs (default ${DEFAULT_JOB_SWEEP_INTERVAL_MS})`, DEFAULT_JOB_SWEEP_INTERVAL_MS, 100, 24 * 3_600_000),
};
