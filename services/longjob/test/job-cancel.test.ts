import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { JobState } from "@stratum/proto/stratum/longjob/v1/job_pb";
import { JobControlService } from "@stratum/proto/stratum/longjob/v1/longjob_pb";
import { closeClient, createClient } from "@stratum/rpc";
import { Code, StratumError } from "@stratum/core";
import { JobFailedError } from "@stratum/jobs";
import { InterruptPolicy } from "@stratum/proto/stratum/longjob/v1/job_pb";
import { startLongjob, untilJob, type LongjobStack } from "./harness";

let stack: LongjobStack;
beforeAll(async () => {
  stack = await startLongjob({ replicas: 2, worker: true });
});
afterAll(() => stack?.stop());

const running = (uuid: string) => untilJob(stack.jobs, uuid, (j) => j.state === JobState.RUNNING && j.progress!.stage === "gate", "Running at its gate");

describe("cancelling a job", () => {
  it("while Waiting, before any dispatch (its service has no live replica): Canceled at once, nothing ran", async () => {
    const control = createClient(JobControlService, stack.service.replicas[0]!.address);
    await control.registerJobTypes({ types: [{ name: "nowhere.thing", service: "nowhere", onInterrupt: InterruptPolicy.FAIL }] });
    closeClient(control);
    const { job } = await stack.jobs.submitJob({ type: "nowhere.thing" });
    expect(job!.state).toBe(JobState.WAITING);
    const cancelled = (await stack.at(1).cancelJob({ uuid: job!.uuid })).job!;
    expect(cancelled.state).toBe(JobState.CANCELED);
    expect(cancelled.finishTime).toBeDefined();
    // Idempotent: cancelling a finished job answers its final state.
    expect((await stack.jobs.cancelJob({ uuid: job!.uuid })).job!.state).toBe(JobState.CANCELED);
  });

  it("while Running, waiting on its work: woken by the cancel (not its timeout), rolled back through its cancel hook, Canceled", async () => {
    const { job } = await stack.jobs.submitJob({ type: "worker.gate" });
    const uuid = job!.uuid;
    const gate = await stack.board.next();
    await running(uuid);
    const answer = (await stack.jobs.cancelJob({ uuid })).job!;
    expect(answer.state).toBe(JobState.CANCELING);
    const end = (await stack.watch(uuid)).at(-1)!;
    expect(end.state).toBe(JobState.CANCELED);
    expect(gate.ctx.signal.aborted).toBe(true);
    expect(stack.board.cancelled).toContain(uuid);
  });

  it("a sleeping job is woken mid-step by a cancel: a 10-minute step ends at once", async () => {
    const { job } = await stack.jobs.submitJob({ type: "longjob.sleep", parameters: { durationMs: 600_000, steps: 1 } });
    await untilJob(stack.jobs, job!.uuid, (j) => j.state === JobState.RUNNING, "Running");
    await stack.at(1).cancelJob({ uuid: job!.uuid });
    expect((await stack.watch(job!.uuid)).at(-1)!.state).toBe(JobState.CANCELED);
  });

  it("a cancel that loses the race to the work: Canceling, then Succeeded with its result (ZStack's rule)", async () => {
    // The job is past its last checkpoint and does not listen to its signal: the cancel is
    // recorded (Canceling) and reaches the executor, but the work finishes all the same.
    const { job } = await stack.jobs.submitJob({ type: "worker.gate", parameters: { stubborn: true } });
    const uuid = job!.uuid;
    const gate = await stack.board.next();
    await running(uuid);
    expect((await stack.jobs.cancelJob({ uuid })).job!.state).toBe(JobState.CANCELING);
    expect(stack.board.cancelled).toContain(uuid);
    expect((await stack.at(1).getJob({ uuid })).job!.state).toBe(JobState.CANCELING);
    gate.release({ result: { done: "despite the cancel" } });
    const seen = await stack.watch(uuid);
    expect(seen.at(-1)!.state).toBe(JobState.SUCCEEDED);
    expect(seen.at(-1)!.result).toEqual({ done: "despite the cancel" });
  });

  it("a cancel that arrives while the work records its own failure: Failed with that error (JobFailedError), not Canceled", async () => {
    // The storage backup's race (migrate property, seed 1170626178): the agent refused the task,
    // the backup was set to Error, and the cancel came in between — the job must say Failed too.
    const { job } = await stack.jobs.submitJob({ type: "worker.gate", parameters: { stubborn: true } });
    const uuid = job!.uuid;
    const gate = await stack.board.next();
    await running(uuid);
    expect((await stack.jobs.cancelJob({ uuid })).job!.state).toBe(JobState.CANCELING);
    expect(stack.board.cancelled).toContain(uuid);
    gate.release({ error: new JobFailedError(new StratumError(Code.FAILED_PRECONDITION, "the agent refused the task: VM_MIGRATING", { reason: "VM_MIGRATING" })) });
    const end = (await stack.watch(uuid)).at(-1)!;
    expect(end.state).toBe(JobState.FAILED);
    expect(end.error).toMatchObject({ reason: "VM_MIGRATING" });
  });

  it("…while an error the work did not record as its own after a cancel still ends Canceled", async () => {
    const { job } = await stack.jobs.submitJob({ type: "worker.gate", parameters: { stubborn: true } });
    const uuid = job!.uuid;
    const gate = await stack.board.next();
    await running(uuid);
    await stack.jobs.cancelJob({ uuid });
    gate.release({ error: new Error("aborted by the cancel") });
    expect((await stack.watch(uuid)).at(-1)!.state).toBe(JobState.CANCELED);
  });

  it("a cancelled job checkpoints no further: a job cancelled between its steps never reaches its gate", async () => {
    // Hold the job at its first checkpoint by cancelling as soon as it reports its first stage.
    const { job } = await stack.jobs.submitJob({ type: "worker.gate" });
    const uuid = job!.uuid;
    const gate = await stack.board.next();
    await running(uuid);
    await stack.jobs.cancelJob({ uuid });
    // At the gate when cancelled; a second job shows nothing else arrives from the first.
    expect((await stack.watch(uuid)).at(-1)!.state).toBe(JobState.CANCELED);
    await expect(gate.ctx.checkpoint()).rejects.toMatchObject({ reason: "JOB_CANCELED" });
  });

  it("a failing job is Failed with its error; rerun runs it again as a new job linked to the first", async () => {
    const { job } = await stack.jobs.submitJob({ type: "worker.gate", parameters: { label: "first" } });
    const gate = await stack.board.next();
    gate.release({ error: new StratumError(Code.RESOURCE_EXHAUSTED, "the disk is full", { reason: "DISK_FULL" }) });
    const failed = (await stack.watch(job!.uuid)).at(-1)!;
    expect(failed.state).toBe(JobState.FAILED);
    expect(failed.error).toMatchObject({ code: "RESOURCE_EXHAUSTED", reason: "DISK_FULL", message: "the disk is full" });
    const again = (await stack.jobs.rerunJob({ uuid: job!.uuid, clientRequestId: `rerun-${job!.uuid}` })).job!;
    expect(again.uuid).not.toBe(job!.uuid);
    expect(again.rerunOf).toBe(job!.uuid);
    expect(again.parameters).toEqual({ label: "first" });
    // The same request id: the same new job.
    expect((await stack.at(1).rerunJob({ uuid: job!.uuid, clientRequestId: `rerun-${job!.uuid}` })).job!.uuid).toBe(again.uuid);
    (await stack.board.next()).release();
    expect((await stack.watch(again.uuid)).at(-1)!.state).toBe(JobState.SUCCEEDED);
    // Running jobs cannot be rerun or deleted; finished ones are deleted once.
    await expect(stack.jobs.rerunJob({ uuid: again.uuid })).rejects.toMatchObject({ reason: "JOB_NOT_RERUNNABLE" });
    await stack.jobs.deleteJob({ uuid: job!.uuid });
    await expect(stack.jobs.getJob({ uuid: job!.uuid })).rejects.toMatchObject({ reason: "JOB_NOT_FOUND" });
  });

  it("deleting a running job is refused and changes nothing", async () => {
    const { job } = await stack.jobs.submitJob({ type: "worker.gate" });
    const gate = await stack.board.next();
    await expect(stack.jobs.deleteJob({ uuid: job!.uuid })).rejects.toMatchObject({ reason: "JOB_NOT_FINISHED" });
    gate.release();
    expect((await stack.watch(job!.uuid)).at(-1)!.state).toBe(JobState.SUCCEEDED);
  });
});
