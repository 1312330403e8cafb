import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { JobState } from "@stratum/proto/stratum/longjob/v1/job_pb";
import { StratumError } from "@stratum/core";
import { startLongjob, untilJob, type LongjobStack } from "./harness";

/** Finished jobs are kept for the retention (STRATUM_JOB_RETENTION_MS, default 30 days), then removed; others never. */
let stack: LongjobStack;
beforeAll(async () => {
  stack = await startLongjob({ replicas: 1, worker: true, settings: { STRATUM_JOB_RETENTION_MS: 1_500, STRATUM_JOB_SWEEP_INTERVAL_MS: 200 } });
});
afterAll(() => stack?.stop());

async function gone(uuid: string): Promise<boolean> {
  return stack.jobs.getJob({ uuid }).then(
    () => false,
    (e: unknown) => e instanceof StratumError && e.reason === "JOB_NOT_FOUND",
  );
}

describe("retention", () => {
  it("removes a finished job once its retention passed, and never a running one", async () => {
    const running = (await stack.jobs.submitJob({ type: "worker.gate" })).job!;
    const gate = await stack.board.next();
    await untilJob(stack.jobs, running.uuid, (j) => j.state === JobState.RUNNING, "Running");
    const done = (await stack.jobs.submitJob({ type: "longjob.noop" })).job!;
    const end = (await stack.watch(done.uuid)).at(-1)!;
    expect(end.state).toBe(JobState.SUCCEEDED);
    const finishedAt = Number(end.finishTime!.seconds) * 1000 + end.finishTime!.nanos / 1e6;
    // Kept until its retention is over (the sweep runs every 200 ms meanwhile)…
    while (Date.now() < finishedAt + 1_000) {
      expect(await gone(done.uuid)).toBe(false);
      await new Promise((r) => setTimeout(r, 200));
    }
    // …and removed after it.
    for (let i = 0; !(await gone(done.uuid)); i++) {
      if (i > 100) throw new Error("the finished job was never removed");
      await new Promise((r) => setTimeout(r, 100));
    }
    // The running job, older than the retention, stays.
    expect(await gone(running.uuid)).toBe(false);
    gate.release();
    await stack.watch(running.uuid);
  });
});
