import fc from "fast-check";

/**
 * A schedule: a few VMs with their disks, then steps run in order by the runner (runner.ts). A
 * step that names "when" waits for that point of its target (a job's stage, the copy's start on
 * the agent) — bounded, and it goes ahead anyway once the target has ended — so the points
 * are reached by events, not by sleeps. Indexes (`vm`, `pick`) are taken modulo what exists when
 * the step runs, so every generated schedule is runnable and shrinks to a runnable one.
 */
export interface Schedule {
  vms: VmSpec[];
  steps: Step[];
}

export interface VmSpec {
  /** Sim host index it starts on (0–2). */
  host: number;
  /** Data volumes attached (1–2). */
  disks: number;
}

/** Where a cancel or a crash lands in a migration's life. */
export type MigrationPoint = "now" | "waiting" | "copying";

export type Step =
  | { op: "backup"; vm: number; disk: number; mode: "full" | "incremental" }
  | { op: "cancelBackup"; pick: number; when: "now" | "running" }
  | { op: "migrate"; vm: number; target: "auto" | 1 | 2; cancel: "none" | "all" | "partial" }
  | { op: "cancelMigration"; pick: number; when: MigrationPoint }
  | { op: "fault"; vm: number; fault: Fault }
  /** Kills the child compute replica (kill -9) when the latest migration of a VM it owns reaches `when`. */
  | { op: "crash"; when: MigrationPoint };

/**
 * Faults on the agent of a VM's current host, one request each. `vm/migrate` gets no
 * retryable fault (a 503 or a reset): the agent client retries those, a second arrival that
 * invariant 4 would count; 500s (before and after the copy ran) and delays cover its failures.
 */
export type Fault =
  | { command: "vm/migrate"; kind: "http500"; phase: "before" | "after" }
  | { command: "vm/migrate"; kind: "slow"; delayMs: number }
  | { command: "volume/task/start" | "volume/task/cancel"; kind: "http500"; status: 500 | 503; phase: "before" | "after" }
  | { command: "volume/task/start" | "volume/task/cancel"; kind: "reset" }
  | { command: "volume/task/start" | "volume/task/cancel"; kind: "slow"; delayMs: number };

const index = fc.nat({ max: 5 });
const point = fc.constantFrom<MigrationPoint>("now", "waiting", "copying");

const fault: fc.Arbitrary<Fault> = fc.oneof(
  fc.record({ command: fc.constant("vm/migrate" as const), kind: fc.constant("http500" as const), phase: fc.constantFrom("before" as const, "after" as const) }),
  fc.record({ command: fc.constant("vm/migrate" as const), kind: fc.constant("slow" as const), delayMs: fc.integer({ min: 20, max: 200 }) }),
  fc.record({
    command: fc.constantFrom("volume/task/start" as const, "volume/task/cancel" as const),
    kind: fc.constant("http500" as const),
    status: fc.constantFrom(500 as const, 503 as const),
    phase: fc.constantFrom("before" as const, "after" as const),
  }),
  fc.record({ command: fc.constantFrom("volume/task/start" as const, "volume/task/cancel" as const), kind: fc.constant("reset" as const) }),
  fc.record({ command: fc.constantFrom("volume/task/start" as const, "volume/task/cancel" as const), kind: fc.constant("slow" as const), delayMs: fc.integer({ min: 20, max: 200 }) }),
);

const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ op: fc.constant("backup" as const), vm: index, disk: index, mode: fc.constantFrom("full" as const, "full" as const, "incremental" as const) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("cancelBackup" as const), pick: index, when: fc.constantFrom("now" as const, "running" as const) }) },
  { weight: 4, arbitrary: fc.record({ op: fc.constant("migrate" as const), vm: index, target: fc.constantFrom("auto" as const, 1 as const, 2 as const), cancel: fc.constantFrom("none" as const, "all" as const, "all" as const, "partial" as const) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("cancelMigration" as const), pick: index, when: point }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("fault" as const), vm: index, fault }) },
);

/**
 * 1–3 VMs of 1–2 disks, 1–7 steps, and in about one schedule in eight a crash of the child
 * replica inserted after the first migration (at most one per schedule: there is one child).
 */
export const scheduleArb: fc.Arbitrary<Schedule> = fc
  .record({
    vms: fc.array(fc.record({ host: fc.nat({ max: 2 }), disks: fc.integer({ min: 1, max: 2 }) }), { minLength: 1, maxLength: 3 }),
    steps: fc.array(step, { minLength: 1, maxLength: 7 }),
    crash: fc.oneof({ weight: 7, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: point }),
  })
  .map(({ vms, steps, crash }) => {
    if (crash === null) return { vms, steps };
    const first = steps.findIndex((s) => s.op === "migrate");
    const at = first === -1 ? steps.length : first + 1;
    return { vms, steps: [...steps.slice(0, at), { op: "crash" as const, when: crash }, ...steps.slice(at)] };
  });

/** One line per VM and step, for the failure report. */
export function describeSchedule(s: Schedule): string {
  const vms = s.vms.map((v, i) => `vm${i}: host ${v.host}, ${v.disks} disk${v.disks > 1 ? "s" : ""}`);
  const steps = s.steps.map((st, i) => `${i}. ${JSON.stringify(st)}`);
  return [...vms, ...steps].join("\n");
}
