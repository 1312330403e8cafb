/**
 * Calls `probe` until it returns something other than `undefined` or `deadline` (epoch ms)
 * passes, backing off from 20 ms to 200 ms: fast enough that a server start is noticed within a
 * few ms, slow enough not to hammer a server that is recovering. Returns `undefined` on timeout.
 */
export async function pollUntil<T>(deadline: number, probe: () => Promise<T | undefined>): Promise<T | undefined> {
  for (let delay = 20; ; delay = Math.min(delay * 1.5, 200)) {
    const result = await probe();
    if (result !== undefined) return result;
    const remaining = deadline - Date.now();
    if (remaining <= 0) return undefined;
    await new Promise((r) => setTimeout(r, Math.min(delay, remaining)));
  }
}
