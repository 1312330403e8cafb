import { beforeEach, describe, expect, it } from "vitest";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { JobProgressSchema, JobSchema, JobState, type Job } from "@stratum/proto/stratum/longjob/v1/job_pb";
import { Code, StratumError } from "@stratum/core";
import { waitForJob, type WaitForJobOptions, type WatchJob } from "./wait";

const UUID = "11111111-1111-4111-8111-111111111111";

function job(revision: number, state: JobState, progress: MessageInitShape<typeof JobProgressSchema> = {}, more: MessageInitShape<typeof JobSchema> = {}): Job {
  return create(JobSchema, { uuid: UUID, type: "longjob.sleep", revision: BigInt(revision), state, progress: create(JobProgressSchema, progress), ...more });
}

/**
 * A WatchJob function that plays one script per opened stream: each script's jobs in order,
 * then its ending — `"end"` (the stream closes), an error (it breaks), or `"hang"` (it stays open
 * until the watch's signal aborts, as a live stream of a job that does not change would).
 */
function scripted(...streams: Array<{ jobs: Job[]; then: "end" | "hang" | Error }>): { watch: WatchJob; opened: () => number } {
  let opened = 0;
  const watch: WatchJob = (signal) =>
    (async function* () {
      const script = streams[opened++];
      if (!script) throw new Error("the test opened more streams than it scripted");
      for (const j of script.jobs) {
        clock.advance();
        yield j;
      }
      if (script.then === "hang") {
        await new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
        throw new StratumError(Code.CANCELLED, "cancelled");
      }
      if (script.then instanceof Error) throw script.then;
    })();
  return { watch, opened: () => opened };
}

/**
 * The test's clock: a second passes before every job a stream delivers after the first, so each
 * line's elapsed time is known (the first job arrives at 0:00).
 */
const clock = {
  t: 0,
  delivered: 0,
  reset() {
    this.t = 0;
    this.delivered = 0;
  },
  advance() {
    if (this.delivered++ > 0) this.t += 1_000;
  },
  now: () => clock.t,
};

function capture(tty = false, onWrite?: (text: string) => void) {
  const out = {
    text: "",
    isTTY: tty,
    write(s: string) {
      out.text += s;
      onWrite?.(out.text);
    },
  };
  return out;
}

async function wait(watch: WatchJob, out: ReturnType<typeof capture>, more: Partial<WaitForJobOptions> = {}) {
  const sleeps: number[] = [];
  const outcome = await waitForJob({
    uuid: UUID,
    watch,
    out,
    now: clock.now,
    sleep: async (ms) => {
      sleeps.push(ms);
    },
    ...more,
  });
  return { ...outcome, sleeps };
}

beforeEach(() => clock.reset());

const RUN = [
  job(1, JobState.WAITING),
  job(2, JobState.RUNNING, { stage: "sleep", percent: 33, message: "step 1 of 3" }),
  job(3, JobState.RUNNING, { stage: "sleep", percent: 66, bytesDone: 1n << 30n, bytesTotal: 3n << 30n }),
];

describe("waitForJob off a terminal", () => {
  it("prints a line per change and exits 0 on Succeeded, with the result", async () => {
    const { watch } = scripted({ jobs: [...RUN, job(4, JobState.SUCCEEDED, { percent: 100 }, { result: { slept: 3 } })], then: "end" });
    const out = capture();
    const res = await wait(watch, out);
    expect(res.code).toBe(0);
    expect(res.job?.state).toBe(JobState.SUCCEEDED);
    expect(out.text).toBe(
      "Waiting  0%  0:00\n" +
        "Running  sleep  33%  0:01  step 1 of 3\n" +
        "Running  sleep  66%  1 GiB/3 GiB  0:02\n" +
        `job ${UUID} Succeeded (waited 0:03): result {"slept":3}\n`,
    );
  });

  it.each([
    [JobState.FAILED, { code: "FAILED_PRECONDITION", reason: "SLEEP_REFUSED", message: "host 0b7c is in maintenance" }, `job ${UUID} Failed (waited 0:01): FAILED_PRECONDITION (SLEEP_REFUSED): host 0b7c is in maintenance`],
    [JobState.CANCELED, undefined, `job ${UUID} Canceled (waited 0:01)`],
    [
      JobState.SUSPENDED,
      { code: "UNAVAILABLE", reason: "EXECUTOR_DIED", message: "replica longjob-1 died" },
      `job ${UUID} Suspended (waited 0:01): UNAVAILABLE (EXECUTOR_DIED): replica longjob-1 died; resume it with 'stratumctl job rerun ${UUID}', or end it with 'stratumctl job cancel ${UUID}'`,
    ],
  ])("exits 1 on state %i, saying why", async (state, error, line) => {
    // Suspended is not final, so the server's stream stays open: the waiter must stop by itself.
    const { watch } = scripted({ jobs: [job(1, JobState.RUNNING), job(2, state, {}, error ? { error } : {})], then: "hang" });
    const out = capture();
    const res = await wait(watch, out);
    expect(res.code).toBe(1);
    expect(out.text).toBe(`Running  0%  0:00\n${line}\n`);
  });

  it("re-opens a broken watch and skips the revisions it already showed", async () => {
    const { watch, opened } = scripted(
      { jobs: RUN.slice(0, 2), then: new StratumError(Code.UNAVAILABLE, "replica went away") },
      { jobs: [job(1, JobState.WAITING), RUN[1]!, RUN[2]!], then: "end" },
      { jobs: [RUN[2]!, job(4, JobState.SUCCEEDED, { percent: 100 })], then: "end" },
    );
    const out = capture();
    const res = await wait(watch, out);
    expect(res.code).toBe(0);
    expect(opened()).toBe(3);
    expect(res.sleeps).toEqual([250, 250]);
    // Seven jobs were delivered, a second apart; the three repeats printed nothing.
    expect(out.text).toBe("Waiting  0%  0:00\n" + "Running  sleep  33%  0:01  step 1 of 3\n" + "Running  sleep  66%  1 GiB/3 GiB  0:04\n" + `job ${UUID} Succeeded (waited 0:06)\n`);
  });

  it("gives up after repeated breaks without a message, saying the job goes on", async () => {
    const broken = () => ({ jobs: [], then: new StratumError(Code.UNAVAILABLE, "no replica") });
    const { watch, opened } = scripted(broken(), broken(), broken());
    const out = capture();
    await expect(wait(watch, out, { maxReconnects: 2 })).rejects.toMatchObject({ code: Code.UNAVAILABLE, message: "no replica" });
    expect(opened()).toBe(3);
    expect(out.text).toBe(`stopped waiting: the watch of job ${UUID} kept breaking; the job goes on: follow it with 'stratumctl job watch ${UUID}'\n`);
  });

  it("does not retry an answer other than UNAVAILABLE", async () => {
    const { watch, opened } = scripted({ jobs: [], then: new StratumError(Code.NOT_FOUND, `job ${UUID} not found`) });
    await expect(wait(watch, capture())).rejects.toMatchObject({ code: Code.NOT_FOUND });
    expect(opened()).toBe(1);
  });

  it("stops waiting on Ctrl-C, not the job, and says how to cancel it (130)", async () => {
    const { watch } = scripted({ jobs: RUN.slice(0, 2), then: "hang" });
    const ctrlC = new AbortController();
    const out = capture(false, (text) => {
      if (text.includes("33%")) ctrlC.abort();
    });
    const res = await wait(watch, out, { signal: ctrlC.signal });
    expect(res.code).toBe(130);
    expect(res.job?.state).toBe(JobState.RUNNING);
    expect(out.text).toBe(
      "Waiting  0%  0:00\n" +
        "Running  sleep  33%  0:01  step 1 of 3\n" +
        `stopped waiting; job ${UUID} goes on (Running): cancel it with 'stratumctl job cancel ${UUID}', or follow it with 'stratumctl job watch ${UUID}'\n`,
    );
  });

  it("stops on Ctrl-C even while waiting to re-open", async () => {
    const { watch } = scripted({ jobs: [RUN[0]!], then: new StratumError(Code.UNAVAILABLE, "gone") });
    const ctrlC = new AbortController();
    const res = await wait(watch, capture(), {
      signal: ctrlC.signal,
      sleep: async () => {
        ctrlC.abort();
      },
    });
    expect(res.code).toBe(130);
  });
});

describe("waitForJob on a terminal", () => {
  it("redraws one line and ends with the final state on its own line", async () => {
    const { watch } = scripted({ jobs: [...RUN, job(4, JobState.FAILED, { percent: 66 }, { error: { code: "INTERNAL", message: "boom" } })], then: "end" });
    const out = capture(true);
    const res = await wait(watch, out);
    expect(res.code).toBe(1);
    expect(out.text).toBe(
      "\rWaiting  [....................] 0%  0:00\u001b[K" +
        "\rRunning  sleep  [#######.............] 33%  0:01  step 1 of 3\u001b[K" +
        "\rRunning  sleep  [#############.......] 66%  1 GiB/3 GiB  0:02\u001b[K" +
        `\rjob ${UUID} Failed (waited 0:03): INTERNAL: boom\u001b[K\n`,
    );
  });

  it("on Ctrl-C leaves the last progress on screen and prints the hint below it", async () => {
    const { watch } = scripted({ jobs: [RUN[1]!], then: "hang" });
    const ctrlC = new AbortController();
    const out = capture(true, (text) => {
      if (text.includes("33%")) ctrlC.abort();
    });
    const res = await wait(watch, out, { signal: ctrlC.signal });
    expect(res.code).toBe(130);
    expect(out.text).toBe(
      "\rRunning  sleep  [#######.............] 33%  0:00  step 1 of 3\u001b[K\n" +
        `stopped waiting; job ${UUID} goes on (Running): cancel it with 'stratumctl job cancel ${UUID}', or follow it with 'stratumctl job watch ${UUID}'\n`,
    );
  });
});
