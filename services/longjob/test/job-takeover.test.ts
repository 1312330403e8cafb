import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import type { ChildProcess } from "node:child_process";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { JobState } from "@stratum/proto/stratum/longjob/v1/job_pb";
import { exitOf, kill9, startChildReplica } from "@stratum/runtime/testing";
import { Code, StratumError } from "@stratum/core";
import { uuidForRequest } from "@stratum/validation";
import { startLongjob, untilJob, type LongjobStack } from "./harness";

/**
 * A longjob replica that dies — killed from outside while its job runs, or at a named step of
 * the dispatch (a crash point) — leaves nothing Running for ever: the job's new owner resumes,
 * or dispatches, what it left. Replica 0 runs in-process; replica 1 is a child process.
 */
const MAIN = fileURLToPath(new URL("../src/main.ts", import.meta.url));

let stack: LongjobStack;
let child: ChildProcess | undefined;
beforeAll(async () => {
  stack = await startLongjob({ replicas: 1, worker: true });
});
afterEach(async () => {
  if (child) await kill9(child);
  child = undefined;
  await stack.service.replicas[0]!.ctx.view.until((v) => v.members("longjob").length === 1);
});
afterAll(() => stack?.stop());

async function startChild(env: Record<string, string> = {}): Promise<ChildProcess> {
  const { child: c } = await startChildReplica({ main: MAIN, like: stack.service.replicas[0]!.ctx.config, replicaId: "longjob-1", env });
  await stack.service.replicas[0]!.ctx.view.until((v) => v.members("longjob").some((m) => m.replicaId === "longjob-1"));
  return c;
}

/** A job UUID the child owns (and, for longjob's own types, executes: the target is the job). */
function ownedByChild(): string {
  for (;;) {
    const uuid = randomUUID();
    if (stack.service.replicas[0]!.ctx.view.ownerOf("longjob", uuid)?.replicaId === "longjob-1") return uuid;
  }
}

describe("takeover of jobs a dead longjob replica left", () => {
  it("kill -9 of the replica that owns and executes a sleeping job: the new owner resumes it from its progress", async () => {
    child = await startChild();
    const uuid = ownedByChild();
    await stack.jobs.submitJob({ uuid, type: "longjob.sleep", parameters: { durationMs: 2_000, steps: 10 } });
    const midway = await untilJob(stack.jobs, uuid, (j) => j.progress!.percent >= 30, "30% progress");
    expect(midway.executor).toBe("longjob-1");
    await kill9(child);
    child = undefined;
    const seen = await stack.watch(uuid);
    const end = seen.at(-1)!;
    expect(end.state).toBe(JobState.SUCCEEDED);
    expect(end.executor).toBe("longjob-0");
    expect(end.attempt).toBe(2);
    // Resumed, not restarted: its progress never went back below what the dead replica reached.
    expect(Math.min(...seen.map((j) => j.progress!.percent))).toBeGreaterThanOrEqual(midway.progress!.percent);
  });

  it("killed at the named step between recording a job and dispatching it: the new owner dispatches it, and a retry gets the job", async () => {
    child = await startChild({ STRATUM_CRASH_POINT: "longjob:job-recorded" });
    const clientRequestId = `crash-recorded-${randomUUID()}`;
    // The job's UUID is derived from the request id: pick one the child owns.
    let uuid = "";
    let requestId = clientRequestId;
    for (let i = 0; ; i++) {
      requestId = `${clientRequestId}-${i}`;
      uuid = uuidForRequest("job", requestId);
      if (stack.service.replicas[0]!.ctx.view.ownerOf("longjob", uuid)?.replicaId === "longjob-1") break;
    }
    const first = await stack.jobs.submitJob({ type: "longjob.noop", clientRequestId: requestId }, { timeoutMs: 10_000 }).catch((e: unknown) => e);
    expect(first).toBeInstanceOf(StratumError);
    expect((first as StratumError).code).toBe(Code.UNAVAILABLE);
    expect(await exitOf(child)).toBe("SIGKILL");
    child = undefined;
    const recorded = (await stack.jobs.getJob({ uuid })).job!;
    expect(recorded.state).toBe(JobState.WAITING); // recorded, never sent
    expect((await stack.watch(uuid)).at(-1)!.state).toBe(JobState.SUCCEEDED);
    // The retry: REQUEST_IN_PROGRESS (UNAVAILABLE) until the dead holder's lease is gone, then the job.
    let retried;
    for (let i = 0; i < 50 && !retried; i++) {
      retried = await stack.jobs.submitJob({ type: "longjob.noop", clientRequestId: requestId }).then(
        (r) => r.job,
        async (e: unknown) => {
          if (!(e instanceof StratumError) || e.reason !== "REQUEST_IN_PROGRESS") throw e;
          await new Promise((r) => setTimeout(r, 200));
          return undefined;
        },
      );
    }
    expect(retried?.uuid).toBe(uuid);
  });

  it("killed at the named step between claiming a dispatch and sending it: the job is dispatched again, once", async () => {
    child = await startChild({ STRATUM_CRASH_POINT: "longjob:job-dispatching" });
    const uuid = ownedByChild();
    await stack.jobs.submitJob({ uuid, type: "longjob.sleep", parameters: { durationMs: 50, steps: 2 } }).catch(() => undefined);
    expect(await exitOf(child)).toBe("SIGKILL");
    child = undefined;
    const end = (await stack.watch(uuid)).at(-1)!;
    expect(end.state).toBe(JobState.SUCCEEDED);
    expect(end.attempt).toBe(2);
  });

  it("killed after recording a job whose executor lives in another service, before sending it: the new owner sends it, once", async () => {
    child = await startChild({ STRATUM_CRASH_POINT: "longjob:job-recorded" });
    const uuid = ownedByChild();
    await stack.jobs.submitJob({ uuid, type: "worker.gate" }, { timeoutMs: 10_000 }).catch(() => undefined);
    expect(await exitOf(child)).toBe("SIGKILL");
    child = undefined;
    const gate = await stack.board.next(20_000);
    expect(gate.ctx.jobUuid).toBe(uuid);
    expect(gate.ctx.attempt).toBe(1); // the attempt its insert claimed, sent again: not a new one
    gate.release();
    expect((await stack.watch(uuid)).at(-1)!.state).toBe(JobState.SUCCEEDED);
  });
});
