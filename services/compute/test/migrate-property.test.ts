import { afterAll, beforeAll, it } from "vitest";
import { runSeededSchedules, scheduleRuns } from "./property/seeded-schedules";
import { runSchedule } from "./property/runner";
import { describeSchedule, scheduleArb } from "./property/schedule";
import { startPropertyStack, type PropertyStack } from "./property/stack";

/**
 * Issue 10's property: over seeded schedules mixing backups (full, incremental) and their
 * cancels, migrations (with and without a target, naming all, some or none of the VM's backups
 * to cancel), cancels of migrations right away, while waiting and during the copy, agent faults
 * and a kill -9 of a compute replica mid-migration, then settled — on agent-sim's timeline no
 * memory copy overlaps a backup task on the VM's volumes, every VM ends on exactly one host as
 * compute says, capacity is accounted on that host only, and the rest of invariants.ts.
 *
 * STRATUM_MIGRATE_PROPERTY_RUNS (default 200) schedules; STRATUM_MIGRATE_PROPERTY_SEED replays a
 * run and STRATUM_MIGRATE_PROPERTY_PATH one schedule of it (both printed on failure, with the
 * failing schedule and what broke). STRATUM_MIGRATE_PROPERTY_ALL=1 runs every schedule and reports
 * every failing one at the end, instead of stopping at the first. No shrinking: each run costs
 * real services, and the report names the schedule.
 */
const SUITE = { name: "migrate property", envPrefix: "STRATUM_MIGRATE_PROPERTY", defaultRuns: 200 };

let st: PropertyStack;
beforeAll(async () => {
  st = await startPropertyStack();
}, 120_000);
afterAll(() => st?.stop());

it(`${scheduleRuns(SUITE)} seeded schedules of migrate, cancel, backup, faults and a replica crash keep every invariant`, async () => {
  await runSeededSchedules({ ...SUITE, schedules: scheduleArb, run: (schedule) => runSchedule(st, schedule), describe: describeSchedule });
}, 30 * 60_000);
