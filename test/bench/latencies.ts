/** Latencies of one measured phase, in ms, and the rate it ran at. */
export interface PhaseFigures {
  count: number;
  seconds: number;
  perSecond: number;
  p50: number;
  p99: number;
  max: number;
  /** Every latency, ascending, for counts past a threshold. */
  sorted: number[];
  errors: number;
  firstError: unknown;
}

/**
 * Runs `total` operations with `concurrency` workers, each operation timed from its start to the
 * moment it resolves. An operation that throws is counted as an error, not as a latency, and the
 * first error is kept so the report can say what went wrong instead of printing a fast figure.
 */
export async function drive(total: number, concurrency: number, op: (worker: number, i: number) => Promise<number | void>): Promise<PhaseFigures> {
  const latencies: number[] = [];
  let next = 0;
  let errors = 0;
  let firstError: unknown;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(concurrency, total) }, async (_, worker) => {
      for (let i = next++; i < total; i = next++) {
        const t0 = performance.now();
        try {
          // An operation may time a part of itself (cancel→stopped) and return it.
          const own = await op(worker, i);
          latencies.push(typeof own === "number" ? own : performance.now() - t0);
        } catch (e) {
          errors++;
          firstError ??= e;
        }
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? NaN;
  return { count: latencies.length, seconds, perSecond: latencies.length / seconds, p50: pct(50), p99: pct(99), max: latencies[latencies.length - 1] ?? NaN, sorted: latencies, errors, firstError };
}

/** A one-line description of an error, for the report. */
export function describeError(e: unknown): string {
  return e instanceof Error ? e.message.split("\n")[0]! : String(e);
}

/** How many of the latencies are at least `ms`. */
export function atLeast(r: PhaseFigures, ms: number): number {
  let lo = 0;
  let hi = r.sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (r.sorted[mid]! < ms) lo = mid + 1;
    else hi = mid;
  }
  return r.sorted.length - lo;
}

/** A positive integer command-line option, or exit 2 naming it (bad input changes nothing). */
export function positive(name: string, raw: string | undefined): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) {
    console.error(`--${name} must be a positive integer, got ${JSON.stringify(raw)}`);
    process.exit(2);
  }
  return n;
}
