import { describe, expect, it } from "vitest";
import { FlowError, runFlow, type FlowStep } from "./flow";

function recorder() {
  const log: string[] = [];
  const step = (name: string, opts: { fail?: boolean; rollbackFails?: boolean } = {}): FlowStep<{ made: string[] }> => ({
    name,
    run(ctx) {
      log.push(`run ${name}`);
      if (opts.fail) throw new Error(`${name} broke`);
      ctx.made.push(name);
    },
    rollback(ctx, error) {
      log.push(`rollback ${name}`);
      expect(error).toBeDefined();
      if (opts.rollbackFails) throw new Error(`${name} rollback broke`);
      ctx.made.splice(ctx.made.indexOf(name), 1);
    },
  });
  return { log, step };
}

describe("runFlow", () => {
  it("runs every step in order and returns the context", async () => {
    const { log, step } = recorder();
    const ctx = await runFlow("create-vm", [step("allocate"), step("start"), step("record")], { made: [] as string[] });
    expect(log).toEqual(["run allocate", "run start", "run record"]);
    expect(ctx.made).toEqual(["allocate", "start", "record"]);
  });

  it("rolls back the completed steps in reverse when a step fails, naming the failed step", async () => {
    const { log, step } = recorder();
    const ctx = { made: [] as string[] };
    const err = await runFlow("create-vm", [step("allocate"), step("reserve"), step("start", { fail: true }), step("record")], ctx).catch((e) => e);
    expect(err).toBeInstanceOf(FlowError);
    expect(err).toMatchObject({ flow: "create-vm", step: "start", rollbackFailures: [], cancelled: false });
    expect(err.cause.message).toBe("start broke");
    expect(log).toEqual(["run allocate", "run reserve", "run start", "rollback reserve", "rollback allocate"]);
    expect(ctx.made).toEqual([]);
  });

  it("keeps rolling back past a rollback that fails, and reports it", async () => {
    const { log, step } = recorder();
    const err = await runFlow("f", [step("a"), step("b", { rollbackFails: true }), step("c", { fail: true })], { made: [] as string[] }).catch((e) => e);
    expect(log).toEqual(["run a", "run b", "run c", "rollback b", "rollback a"]);
    expect(err.rollbackFailures).toHaveLength(1);
    expect(err.rollbackFailures[0].step).toBe("b");
  });

  it("stops before the next step once the signal is aborted, rolling back what ran", async () => {
    const { log, step } = recorder();
    const abort = new AbortController();
    const stopper: FlowStep<{ made: string[] }> = { name: "stopper", run: () => abort.abort(new Error("cancelled")) };
    const err = await runFlow("f", [step("a"), stopper, step("b")], { made: [] as string[] }, abort.signal).catch((e) => e);
    expect(err).toBeInstanceOf(FlowError);
    expect(err.step).toBe("b");
    expect(err.cancelled).toBe(true);
    expect(err.message).toContain("cancelled before step b");
    expect(log).toEqual(["run a", "rollback a"]);
  });
});
