export interface BackoffOptions {
  /** Delay before the first retry. Default 100 ms. */
  baseDelayMs?: number;
  /** Largest delay between attempts. Default 2,000 ms. */
  maxDelayMs?: number;
}

/**
 * Delay before retry number `retry` (1-based): exponential with "equal jitter" (half fixed, half
 * random), so many clients retrying against one restarting agent spread out instead of arriving
 * in lockstep, while each still waits a sensible minimum.
 */
export function backoffDelay(retry: number, options: BackoffOptions = {}, random: () => number = Math.random): number {
  const base = options.baseDelayMs ?? 100;
  const max = options.maxDelayMs ?? 2_000;
  const ceiling = Math.min(max, base * 2 ** Math.max(0, retry - 1));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}
