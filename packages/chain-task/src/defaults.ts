/** Default parallel slots per signature: strict serialization, as ZStack's default. */
export const DEFAULT_SYNC_LEVEL = 1;

/**
 * Default bound on waiting tasks per signature. Far above any legitimate burst on one resource,
 * low enough that a runaway client cannot grow one queue without limit.
 */
export const DEFAULT_MAX_PENDING = 10_000;

/** Default pending timeout: none. A waiting task costs no timer unless a timeout is set. */
export const DEFAULT_PENDING_TIMEOUT_MS = Number.POSITIVE_INFINITY;

/** Default execution timeout: none (set one per queue in services; see README). */
export const DEFAULT_EXECUTION_TIMEOUT_MS = Number.POSITIVE_INFINITY;

/** Largest delay `setTimeout` honours; Node turns anything larger into 1 ms, so we refuse it. */
export const MAX_TIMEOUT_MS = 2_147_483_647;
