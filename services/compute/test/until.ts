/**
 * Waits for a condition the test cannot be notified of (a queue's contents, a row's state),
 * checking every few milliseconds up to a deadline. It orders the test after an event that has
 * happened; it never stands in for forcing an interleaving.
 */
export async function until(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
