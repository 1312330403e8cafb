import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { JobState } from "@stratum/proto/stratum/longjob/v1/job_pb";
import { startTestService } from "@stratum/runtime/testing";
import { ensureReportStream, publishReport } from "@stratum/jobs";
import { closeClient, createClient } from "@stratum/rpc";
import { LongJobService } from "@stratum/proto/stratum/longjob/v1/longjob_pb";
import { connectBus } from "@stratum/bus";
import { longjobModule } from "../src/module";
import { startLongjob, untilJob, type LongjobStack } from "./harness";
import { workerModule } from "./worker/worker-module";

/**
 * What becomes of a job whose executor goes away, by its type's interrupt policy, and of the
 * reports an executor sent while no longjob replica was there to record them.
 */
let stack: LongjobStack;
beforeAll(async () => {
  stack = await startLongjob({ replicas: 1, worker: true });
});
afterAll(() => stack?.stop());

const atGate = (uuid: string) => untilJob(stack.jobs, uuid, (j) => j.state === JobState.RUNNING && j.progress!.stage === "gate", "Running at its gate");

/** Stops the worker service (its replica leaves: its running jobs are handed over) and starts a new one. */
async function restartWorker(): Promise<void> {
  await stack.worker!.stop();
  stack.worker = await startTestService(workerModule(stack.board), { databaseUrl: stack.service.databaseUrl, natsUrl: stack.service.natsUrl, busPrefix: stack.service.busPrefix });
}

describe("a job whose executor goes away", () => {
  it("a type that cannot resume fails, naming the replica that went away", async () => {
    const { job } = await stack.jobs.submitJob({ type: "worker.once" });
    await stack.board.next();
    await atGate(job!.uuid);
    await restartWorker();
    const end = (await stack.watch(job!.uuid)).at(-1)!;
    expect(end.state).toBe(JobState.FAILED);
    expect(end.error).toMatchObject({ reason: "JOB_EXECUTOR_DIED" });
    expect(end.error!.message).toContain("worker-0");
    expect(end.error!.message).toContain("cannot resume");
  });

  it("a type that suspends is Suspended; RerunJob resumes it as itself, from its progress", async () => {
    const { job } = await stack.jobs.submitJob({ type: "worker.pausable" });
    const uuid = job!.uuid;
    await stack.board.next();
    await atGate(uuid);
    await restartWorker();
    const suspended = await untilJob(stack.jobs, uuid, (j) => j.state === JobState.SUSPENDED, "Suspended");
    expect(suspended.error!.message).toContain("rerun the job to resume it");
    const resumed = (await stack.jobs.rerunJob({ uuid })).job!;
    expect(resumed.uuid).toBe(uuid);
    expect(resumed.state).toBe(JobState.WAITING);
    const gate = await stack.board.next();
    expect(gate.ctx.resumeFrom?.stage).toBe("gate");
    gate.release();
    const end = (await stack.watch(uuid)).at(-1)!;
    expect(end.state).toBe(JobState.SUCCEEDED);
    expect(end.attempt).toBeGreaterThan(suspended.attempt);
  });

  it("a job cancelled while its executor was gone is resumed with the cancel: its hook reaches the work, its run says the work won (Succeeded)", async () => {
    const { job } = await stack.jobs.submitJob({ type: "worker.gate", parameters: { doneOnResume: true } });
    const uuid = job!.uuid;
    await stack.board.next();
    await atGate(uuid);
    await stack.worker!.stop(); // handed over: nobody runs it now
    expect((await stack.jobs.cancelJob({ uuid })).job!.state).toBe(JobState.CANCELING);
    stack.worker = await startTestService(workerModule(stack.board), { databaseUrl: stack.service.databaseUrl, natsUrl: stack.service.natsUrl, busPrefix: stack.service.busPrefix });
    const end = (await stack.watch(uuid)).at(-1)!;
    // Stopped at a first checkpoint, it would end Canceled with its predecessor's work done and unsaid.
    expect(end.state).toBe(JobState.SUCCEEDED);
    expect(end.result).toEqual({ doneBy: "an earlier attempt", signalAborted: true });
    expect(stack.board.cancelled).toContain(uuid);
  });

  it("a job cancelled while its executor was gone, whose work had not finished, ends Canceled", async () => {
    const { job } = await stack.jobs.submitJob({ type: "worker.gate" });
    const uuid = job!.uuid;
    await stack.board.next();
    await atGate(uuid);
    await stack.worker!.stop();
    await stack.jobs.cancelJob({ uuid });
    stack.worker = await startTestService(workerModule(stack.board), { databaseUrl: stack.service.databaseUrl, natsUrl: stack.service.natsUrl, busPrefix: stack.service.busPrefix });
    const end = (await stack.watch(uuid)).at(-1)!;
    expect(end.state).toBe(JobState.CANCELED);
    expect(stack.board.cancelled).toContain(uuid);
  });

  it("a type that resumes is dispatched to the new replica, which resumes it from its progress", async () => {
    const { job } = await stack.jobs.submitJob({ type: "worker.gate" });
    await stack.board.next();
    await atGate(job!.uuid);
    await restartWorker();
    const gate = await stack.board.next();
    expect(gate.ctx.attempt).toBe(2);
    expect(gate.ctx.resumeFrom).toMatchObject({ stage: "gate", percent: 50 });
    gate.release();
    expect((await stack.watch(job!.uuid)).at(-1)!.state).toBe(JobState.SUCCEEDED);
  });

  it("a report of a superseded attempt is ignored; the current attempt's is recorded", async () => {
    const { job } = await stack.jobs.submitJob({ type: "worker.gate" });
    const gate = await stack.board.next();
    const running = await atGate(job!.uuid);
    const bus = await connectBus({ servers: stack.service.natsUrl, prefix: stack.service.busPrefix, name: "stale-executor" });
    try {
      // An executor of attempt 0 (never dispatched) claims the job succeeded: nothing changes.
      await publishReport(bus, { job: running.uuid, attempt: running.attempt - 1, seq: 99, executor: "ghost@1", kind: "finished", outcome: { state: "Succeeded", result: { ghost: true } }, at: new Date().toISOString() });
      gate.release({ result: { real: true } });
      const end = (await stack.watch(running.uuid)).at(-1)!;
      expect(end.state).toBe(JobState.SUCCEEDED);
      expect(end.result).toEqual({ real: true });
    } finally {
      await bus.close();
    }
  });
});

describe("reports outlive the longjob replicas", () => {
  it("a job that finished while no longjob replica ran is recorded when one is back", async () => {
    const { job } = await stack.jobs.submitJob({ type: "worker.gate" });
    const gate = await stack.board.next();
    await atGate(job!.uuid);
    const { databaseUrl, natsUrl, busPrefix } = stack.service;
    await stack.service.stop(); // every longjob replica gone; the worker goes on
    gate.release({ result: { while: "longjob was down" } });
    const bus = await connectBus({ servers: natsUrl, prefix: busPrefix, name: "report-probe" });
    try {
      const stream = await ensureReportStream(bus);
      // The finished report is stored, waiting for the recorder.
      for (let i = 0; (await bus.jsm.consumers.info(stream, "longjob-recorder")).num_pending === 0; i++) {
        if (i > 200) throw new Error("the worker's report never reached JetStream");
        await new Promise((r) => setTimeout(r, 50));
      }
    } finally {
      await bus.close();
    }
    stack.service = await startTestService(longjobModule(), { databaseUrl, natsUrl, busPrefix });
    const back = createClient(LongJobService, stack.service.replicas[0]!.address);
    try {
      const end = await untilJob(back, job!.uuid, (j) => j.state === JobState.SUCCEEDED, "Succeeded");
      expect(end.result).toEqual({ while: "longjob was down" });
      expect(end.attempt).toBe(1); // recorded, not resumed
    } finally {
      closeClient(back);
    }
  });
});
