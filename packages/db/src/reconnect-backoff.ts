/** The longest a pooled connection waits before trying Postgres again, in seconds. */
export const MAX_RECONNECT_DELAY_S = 1;

/**
 * postgres-js's `backoff`: seconds a pooled connection waits, after its last connection closed
 * with an error, before it connects again (`retries` counts failed closes across the pool since
 * the last successful connect). The driver's default, `3^retries / 100` capped at 20 s, reaches
 * 7–20 s after a handful of refused connects, so a service kept failing requests for up to 20 s
 * after Postgres came back (and every query meanwhile waited out that delay before failing). We
 * double from 50 ms and cap at {@link MAX_RECONNECT_DELAY_S}: a pool is back within about a
 * second of Postgres, and one attempt per connection per second is nothing for the server.
 * Jitter (half to all of the delay) keeps the replicas of a service from reconnecting in step.
 */
export function reconnectBackoff(retries: number, random: () => number = Math.random): number {
  const ceiling = Math.min(MAX_RECONNECT_DELAY_S, 0.05 * 2 ** Math.max(0, retries));
  return ceiling * (0.5 + random() / 2);
}
