import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { JobState } from "@stratum/proto/stratum/longjob/v1/job_pb";
import { Code, StratumError } from "@stratum/core";
import { startLongjob, type LongjobStack } from "./harness";

let stack: LongjobStack;
beforeAll(async () => {
  stack = await startLongjob({ replicas: 2 });
});
afterAll(() => stack?.stop());

describe("a job's life", () => {
  it("a noop job is Waiting at submit and Succeeded at the end of its watch, through Running", async () => {
    const { job } = await stack.jobs.submitJob({ type: "longjob.noop" });
    expect(job!.state).toBe(JobState.WAITING);
    const seen = await stack.watch(job!.uuid);
    expect(seen.at(-1)!.state).toBe(JobState.SUCCEEDED);
    expect(seen.at(-1)!.progress!.percent).toBe(100);
    const revisions = seen.map((j) => Number(j.revision));
    expect([...revisions].sort((a, b) => a - b)).toEqual(revisions);
    expect(new Set(revisions).size).toBe(revisions.length);
    const got = (await stack.jobs.getJob({ uuid: job!.uuid })).job!;
    expect(got.state).toBe(JobState.SUCCEEDED);
    expect(got.startTime).toBeDefined();
    expect(got.finishTime).toBeDefined();
    expect(got.executor).toMatch(/^longjob-\d$/);
  });

  it("a sleep job reports progress that never goes backwards, and its result", async () => {
    const { job } = await stack.jobs.submitJob({ type: "longjob.sleep", parameters: { durationMs: 200, steps: 4 } });
    const seen = await stack.watch(job!.uuid, 1);
    const percents = seen.map((j) => j.progress!.percent);
    expect(percents).toEqual([...percents].sort((a, b) => a - b));
    expect(seen.some((j) => j.state === JobState.RUNNING && j.progress!.stage === "sleeping")).toBe(true);
    expect(seen.at(-1)!.state).toBe(JobState.SUCCEEDED);
    expect(seen.at(-1)!.result).toEqual({ sleptMs: 200 });
  });

  it("bad parameters are INVALID_ARGUMENT naming each, and record nothing", async () => {
    const before = (await stack.jobs.listJobs({ type: "longjob.sleep", pageSize: 1000 })).jobs.length;
    const e = await stack.jobs.submitJob({ type: "longjob.sleep", parameters: { durationMs: -1, colour: "blue" } }).catch((x) => x);
    expect(e).toBeInstanceOf(StratumError);
    expect(e.code).toBe(Code.INVALID_ARGUMENT);
    expect(e.violations.map((v: { field: string }) => v.field).sort()).toEqual(["parameters.colour", "parameters.durationMs"]);
    const missing = await stack.jobs.submitJob({ type: "longjob.sleep" }).catch((x) => x);
    expect(missing.violations.map((v: { field: string }) => v.field)).toEqual(["parameters.durationMs"]);
    const unknown = await stack.jobs.submitJob({ type: "longjob.nothing" }).catch((x) => x);
    expect(unknown.code).toBe(Code.NOT_FOUND);
    expect(unknown.reason).toBe("JOB_TYPE_UNKNOWN");
    expect((await stack.jobs.listJobs({ type: "longjob.sleep", pageSize: 1000 })).jobs.length).toBe(before);
  });

  it("a submit with a used request id returns the first job; other parameters are ALREADY_EXISTS", async () => {
    const clientRequestId = `dedup-${Date.now()}`;
    const a = (await stack.jobs.submitJob({ type: "longjob.sleep", parameters: { durationMs: 10 }, clientRequestId })).job!;
    const b = (await stack.at(1).submitJob({ type: "longjob.sleep", parameters: { durationMs: 10 }, clientRequestId })).job!;
    expect(b.uuid).toBe(a.uuid);
    const e = await stack.jobs.submitJob({ type: "longjob.sleep", parameters: { durationMs: 11 }, clientRequestId }).catch((x) => x);
    expect(e.code).toBe(Code.ALREADY_EXISTS);
    expect(e.resources.requestId).toBe(clientRequestId);
    expect((await stack.jobs.listJobs({ type: "longjob.sleep", pageSize: 1000 })).jobs.filter((j) => j.clientRequestId === clientRequestId)).toHaveLength(1);
  });

  it("lists by type, state and target, a keyset page at a time; a token is bound to its filters", async () => {
    const target = "7d3f0c52-1b7e-4f7a-9f0e-3a1d2c4b5e6f";
    const made = [];
    for (let i = 0; i < 5; i++) made.push((await stack.jobs.submitJob({ type: "longjob.noop", targetUuid: target })).job!.uuid);
    for (const uuid of made) await stack.watch(uuid);
    const first = await stack.jobs.listJobs({ targetUuid: target, pageSize: 2 });
    expect(first.jobs.map((j) => j.uuid)).toEqual(made.slice(0, 2));
    const second = await stack.at(1).listJobs({ targetUuid: target, pageSize: 2, pageToken: first.nextPageToken });
    expect(second.jobs.map((j) => j.uuid)).toEqual(made.slice(2, 4));
    const succeeded = await stack.jobs.listJobs({ targetUuid: target, state: JobState.SUCCEEDED, type: "longjob.noop", pageSize: 100 });
    expect(succeeded.jobs).toHaveLength(5);
    expect(succeeded.jobs.every((j) => j.target!.uuid === target && j.target!.service === "longjob")).toBe(true);
    expect((await stack.jobs.listJobs({ targetUuid: target, state: JobState.RUNNING })).jobs).toHaveLength(0);
    const e = await stack.jobs.listJobs({ targetUuid: target, state: JobState.FAILED, pageSize: 2, pageToken: first.nextPageToken }).catch((x) => x);
    expect(e.code).toBe(Code.INVALID_ARGUMENT);
  });
});
