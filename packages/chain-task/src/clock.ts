/**
 * Monotonic whole milliseconds for task ages. Whole numbers on purpose: V8 stores small integers
 * inline in object fields, whereas a fractional `performance.now()` would box a HeapNumber per
 * timestamp per task.
 */
export function now(): number {
  return Math.floor(performance.now());
}
