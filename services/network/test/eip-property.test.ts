import { afterAll, beforeAll, it } from "vitest";
import { runSeededSchedules, scheduleRuns } from "../../compute/test/property/seeded-schedules";
import { runSchedule } from "./property/runner";
import { describeSchedule, scheduleArb } from "./property/schedule";
import { startPropertyStack, type PropertyStack } from "./property/stack";

/**
 * Issue 11's property (seed 000 generalised): over seeded schedules of EIP attach and detach, VM
 * stop, start and migrate, NIC address changes, agent holds, apply and release failures, agent
 * restarts that lose their rules and a kill -9 of a network replica, once things settle, every
 * agent's rules equal the database bindings of the VMs that run on it, no address is held twice,
 * and the rest of property/invariants.ts.
 *
 * STRATUM_EIP_PROPERTY_RUNS (default 1000) schedules; STRATUM_EIP_PROPERTY_SEED replays a run and
 * STRATUM_EIP_PROPERTY_PATH one schedule of it (both printed on failure, with the failing
 * schedule and what happened). STRATUM_EIP_PROPERTY_ALL=1 runs every schedule and reports every
 * failing one at the end. No shrinking: each run costs real services, and the report names it.
 */
const SUITE = { name: "eip property", envPrefix: "STRATUM_EIP_PROPERTY", defaultRuns: 1000 };

let st: PropertyStack;
beforeAll(async () => {
  st = await startPropertyStack();
}, 120_000);
afterAll(() => st?.stop());

it(`${scheduleRuns(SUITE)} seeded schedules of attach, detach, stop, start, migrate, agent faults, restarts and a replica crash keep agents and bindings equal`, async () => {
  await runSeededSchedules({ ...SUITE, schedules: scheduleArb, run: (schedule) => runSchedule(st, schedule), describe: describeSchedule });
}, 30 * 60_000);
