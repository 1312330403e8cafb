/** How long the devstack waits before restarting a child that died. */
export interface BackoffPolicy {
  /** Delay before the first restart. */
  readonly initialMs: number;
  /** Cap of the doubling delay. */
  readonly maxMs: number;
  /** A child that stayed up this long is healthy again: its next death restarts after `initialMs`. */
  readonly resetAfterMs: number;
}

/**
 * 0.5 s doubling to 10 s, reset after 30 s up: a replica killed once comes back at once, a
 * crash-looping one is retried at most every 10 s instead of spinning a core and flooding the log.
 */
export const RESTART_BACKOFF: BackoffPolicy = { initialMs: 500, maxMs: 10_000, resetAfterMs: 30_000 };

/** The delay schedule of one supervised child: doubles on each death, resets after a long enough run. */
export class Backoff {
  #nextMs: number;

  constructor(readonly policy: BackoffPolicy = RESTART_BACKOFF) {
    this.#nextMs = policy.initialMs;
  }

  /** The delay before the next restart, given how long the run that just ended was up (0 for a failed start). */
  next(upMs: number): number {
    if (upMs >= this.policy.resetAfterMs) this.#nextMs = this.policy.initialMs;
    const delay = this.#nextMs;
    this.#nextMs = Math.min(this.#nextMs * 2, this.policy.maxMs);
    return delay;
  }

  /** The policy in words, for the restart log line. */
  describe(): string {
    const s = (ms: number) => `${ms / 1000} s`;
    return `backoff ${s(this.policy.initialMs)} doubling to ${s(this.policy.maxMs)}, reset after ${s(this.policy.resetAfterMs)} up`;
  }
}
