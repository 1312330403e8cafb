import { performance } from "node:perf_hooks";
import fc from "fast-check";
import { expect } from "vitest";

/** What one schedule broke and what happened in it (the runner's log). */
export interface ScheduleReport {
  violations: string[];
  log: string[];
}

export interface SeededSchedules<S> {
  /** Printed before every line, e.g. `eip property`. */
  name: string;
  /** The variables' prefix, e.g. `STRATUM_EIP_PROPERTY` (…_RUNS, _SEED, _PATH, _ALL). */
  envPrefix: string;
  /** How many schedules when _RUNS is not set. */
  defaultRuns: number;
  schedules: fc.Arbitrary<S>;
  run: (schedule: S) => Promise<ScheduleReport>;
  describe: (schedule: S) => string;
}

/** The schedule count the suite will run (for the test's title). */
export function scheduleRuns(o: Pick<SeededSchedules<unknown>, "envPrefix" | "defaultRuns">): number {
  return process.env[`${o.envPrefix}_PATH`] ? 1 : Number(process.env[`${o.envPrefix}_RUNS`] ?? o.defaultRuns);
}

/**
 * Runs seeded schedules against real services, the way every property suite of Stratum does:
 * `<prefix>_RUNS` schedules, `<prefix>_SEED` replays a run and `<prefix>_PATH` one schedule of it
 * (both printed on failure with the schedule and what happened), `<prefix>_ALL=1` runs every
 * schedule and reports all failing ones at the end. No shrinking: each run costs real services,
 * and the report names the schedule. Prints progress and per-schedule timings.
 */
export async function runSeededSchedules<S>(o: SeededSchedules<S>): Promise<void> {
  const env = process.env;
  const runs = scheduleRuns(o);
  const seed = Number(env[`${o.envPrefix}_SEED`] ?? (Date.now() ^ (Math.random() * 0x7fffffff)) >>> 0);
  const path = env[`${o.envPrefix}_PATH`];
  const all = env[`${o.envPrefix}_ALL`] === "1";
  console.log(`${o.name}: seed ${seed}, ${runs} runs (replay with ${o.envPrefix}_SEED=${seed})`);
  const started = performance.now();
  let run = 0;
  const failures: string[] = [];
  const durations: number[] = [];
  await fc.assert(
    fc.asyncProperty(o.schedules, async (schedule) => {
      const at = path ?? String(run);
      run++;
      const t0 = performance.now();
      const report = await o.run(schedule);
      durations.push(performance.now() - t0);
      if (run % 25 === 0) console.log(`${o.name}: ${run} schedules, ${((performance.now() - started) / 1_000).toFixed(1)} s`);
      if (path) console.log(["replayed schedule:", o.describe(schedule), "what happened:", ...report.log].join("\n"));
      if (report.violations.length === 0) return;
      const failure = [
        `schedule ${run} (${o.envPrefix}_SEED=${seed} ${o.envPrefix}_PATH=${at}, ${(performance.now() - t0).toFixed(0)} ms) broke ${report.violations.length} invariant(s):`,
        ...report.violations.map((v) => `  ✗ ${v}`),
        "schedule:",
        o.describe(schedule),
        "what happened:",
        ...report.log,
      ].join("\n");
      if (!all) throw new Error(failure);
      console.log(failure);
      failures.push(failure);
    }),
    { numRuns: runs, seed, endOnFailure: true, ...(path ? { path } : {}) },
  );
  const seconds = (performance.now() - started) / 1_000;
  const sorted = [...durations].sort((a, b) => a - b);
  const q = (p: number) => (sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0).toFixed(0);
  console.log(`${o.name}: ${run} schedules in ${seconds.toFixed(1)} s (per schedule p50 ${q(0.5)} ms, p90 ${q(0.9)} ms, max ${q(1)} ms), ${failures.length} failed`);
  expect(failures, failures.join("\n\n")).toEqual([]);
  expect(run).toBe(runs);
}
