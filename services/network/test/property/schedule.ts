import fc from "fast-check";

/**
 * A schedule: a few new elastic IPs over the stack's VMs, then steps run in order by the runner
 * (runner.ts). A step answers as soon as its RPC does — an attach once its binding is recorded, a
 * stop once compute accepted it — so later steps race the agent work of earlier ones; holds on
 * the agents (`hold` … `releaseHeld`) force the interleavings that matter (seed 000: a stop or a
 * migration while an apply is held). Indexes are taken modulo what exists, so every generated
 * schedule is runnable.
 */
export interface Schedule {
  /** New EIPs (1–3); the first is owned by the child network replica, the one a crash kills. */
  eips: number;
  steps: Step[];
}

export type AgentCommand = "eip/apply" | "eip/release";

export type Step =
  | { op: "attach"; eip: number; vm: number }
  | { op: "detach"; eip: number }
  | { op: "stop"; vm: number }
  | { op: "start"; vm: number }
  | { op: "migrate"; vm: number; target: number }
  /** The NIC of a VM moves to another address (compute's SetVmNicIp): bound EIPs follow it. */
  | { op: "changeIp"; vm: number }
  /** Holds the next `command` on a host until a `releaseHeld` (or the settle) lets it go. */
  | { op: "hold"; host: number; command: AgentCommand }
  /** Lets the oldest held request go (once one arrived, waiting at most a moment), answering it normally or with a 500. */
  | { op: "releaseHeld"; outcome: "ok" | "http500" }
  /** The next `command` on a host fails: a 500 (after the agent acted or before) or a connection reset. */
  | { op: "fault"; host: number; command: AgentCommand; kind: "http500-before" | "http500-after" | "reset" }
  /** The host's agent restarts; `loseRules`: like a rebooted host, its EIP rules are gone. */
  | { op: "agentRestart"; host: number; loseRules: boolean }
  /** kill -9 of the child network replica (at most one per schedule). */
  | { op: "crash" };

const vm = fc.nat({ max: 5 });
const eip = fc.nat({ max: 5 });
const host = fc.nat({ max: 2 });
const command = fc.constantFrom<AgentCommand>("eip/apply", "eip/apply", "eip/release");

const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ op: fc.constant("attach" as const), eip, vm }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant("detach" as const), eip }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant("stop" as const), vm }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant("start" as const), vm }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant("migrate" as const), vm, target: host }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("changeIp" as const), vm }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant("hold" as const), host, command }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant("releaseHeld" as const), outcome: fc.constantFrom("ok" as const, "http500" as const) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("fault" as const), host, command, kind: fc.constantFrom("http500-before" as const, "http500-after" as const, "reset" as const) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("agentRestart" as const), host, loseRules: fc.boolean() }) },
);

/** 1–3 EIPs, 2–9 steps, and in about one schedule in twelve a crash of the child replica at a random step. */
export const scheduleArb: fc.Arbitrary<Schedule> = fc
  .record({
    eips: fc.integer({ min: 1, max: 3 }),
    steps: fc.array(step, { minLength: 2, maxLength: 9 }),
    crash: fc.oneof({ weight: 11, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.nat({ max: 9 }) }),
  })
  .map(({ eips, steps, crash }) => {
    if (crash === null) return { eips, steps };
    const at = Math.min(crash, steps.length);
    return { eips, steps: [...steps.slice(0, at), { op: "crash" as const }, ...steps.slice(at)] };
  });

/** One line per step, for the failure report. */
export function describeSchedule(s: Schedule): string {
  return [`${s.eips} new EIP(s)`, ...s.steps.map((st, i) => `${i}. ${JSON.stringify(st)}`)].join("\n");
}
