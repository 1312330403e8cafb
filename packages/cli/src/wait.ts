/**
 * `--wait` for long jobs: follows a job through WatchJob until it ends, showing its progress
 * (see progress.ts), and turns the outcome into an exit status a script can branch on:
 *
 * - Succeeded: 0;
 * - Failed, Canceled: 1, with the job's error;
 * - Suspended: 1 too — the job will not move until someone acts — saying how to resume it
 *   (WatchJob would keep the stream open, since Suspended is not final; the waiter stops);
 * - Ctrl-C (the `signal`): 130. It stops the waiting, not the job, and says how to cancel it.
 *
 * A watch that breaks with UNAVAILABLE (the longjob replica serving it died or is draining) is
 * re-opened with backoff: any replica can serve it, and a new stream starts with the job's
 * current state, so only revisions not yet shown are rendered (Job.revision increases with
 * every change). A stream that ends before a final state is treated the same way.
 *
 * The waiter takes the WatchJob call as a function so it can be driven by any source of Job
 * messages: the real stream in the CLI, a scripted sequence in tests.
 */
import { Code, StratumError } from "@stratum/core";
import { JobState, JobStateSchema, type Job } from "@stratum/proto/stratum/longjob/v1/job_pb";
import { enumWord } from "./enums";
import { ProgressRenderer, type ProgressView } from "./progress";
import { TOOL_NAME } from "./tool-name";
import { EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, type Writer } from "./writer";

/** Opens one WatchJob stream; it ends when `signal` aborts. */
export type WatchJob = (signal: AbortSignal) => AsyncIterable<Job>;

export interface WaitForJobOptions {
  /** The job's UUID, for the messages (the job itself may not have been seen yet). */
  uuid: string;
  watch: WatchJob;
  /** Where the progress and the final line go. */
  out: Writer;
  /** Ctrl-C. */
  signal?: AbortSignal | undefined;
  /** Redraw in place. Default: `out.isTTY`. */
  tty?: boolean;
  now?: () => number;
  /** Re-opens after a broken stream before giving up, counted since the last message. Default 8 (about 20 s of backoff). */
  maxReconnects?: number;
  /** Waits before re-opening. Default: a timer, cut short by `signal`. */
  sleep?: (ms: number, signal: AbortSignal | undefined) => Promise<void>;
}

export interface WaitOutcome {
  /** 0, 1 or 130 (see the module comment). */
  code: number;
  /** The job as last seen (undefined if no message arrived before Ctrl-C). */
  job: Job | undefined;
}

const FINAL_STATES: ReadonlySet<JobState> = new Set([JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELED]);

/** Whether the job has reached a state `--wait` stops at (a final one, or Suspended). */
export function isSettled(state: JobState): boolean {
  return FINAL_STATES.has(state) || state === JobState.SUSPENDED;
}

/** The renderer's view of a job. */
export function jobView(job: Job): ProgressView {
  const p = job.progress;
  return {
    state: enumWord(JobStateSchema, job.state),
    stage: p?.stage ?? "",
    percent: p?.percent ?? 0,
    bytesDone: p?.bytesDone ?? 0n,
    bytesTotal: p?.bytesTotal ?? 0n,
    message: p?.message ?? "",
  };
}

/** `FAILED_PRECONDITION (SLEEP_FAILED): message`, or "" when the job carries no error. */
export function describeJobError(job: Job): string {
  const e = job.error;
  if (!e || (e.code === "" && e.reason === "" && e.message === "")) return "";
  const head = [e.code, e.reason && e.reason !== e.code ? `(${e.reason})` : ""].filter(Boolean).join(" ");
  return [head, e.message].filter(Boolean).join(": ");
}

/** The line a settled job ends the display with, and the exit status it means. */
export function settledLine(job: Job, elapsed: string): { line: string; code: number } {
  const state = enumWord(JobStateSchema, job.state);
  const head = `job ${job.uuid} ${state} (waited ${elapsed})`;
  const error = describeJobError(job);
  switch (job.state) {
    case JobState.SUCCEEDED: {
      const result = job.result && Object.keys(job.result).length > 0 ? `: result ${JSON.stringify(job.result)}` : "";
      return { line: `${head}${result}`, code: EXIT_OK };
    }
    case JobState.SUSPENDED:
      return {
        line: `${head}${error ? `: ${error}` : ""}; resume it with '${TOOL_NAME} job rerun ${job.uuid}', or end it with '${TOOL_NAME} job cancel ${job.uuid}'`,
        code: EXIT_FAILED,
      };
    default:
      return { line: `${head}${error ? `: ${error}` : ""}`, code: EXIT_FAILED };
  }
}

/** What Ctrl-C prints: the job goes on, and how to stop it. */
export function interruptedLine(uuid: string, job: Job | undefined): string {
  const state = job ? ` (${enumWord(JobStateSchema, job.state)})` : "";
  return `stopped waiting; job ${uuid} goes on${state}: cancel it with '${TOOL_NAME} job cancel ${uuid}', or follow it with '${TOOL_NAME} job watch ${uuid}'`;
}

function defaultSleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
  });
}

/** Backoff before re-open number `n` (1-based): 250 ms doubling, at most 5 s. */
function reconnectDelay(n: number): number {
  return Math.min(5_000, 250 * 2 ** (n - 1));
}

const ABORTED = Symbol("aborted");

/** The iterator's next message, or ABORTED as soon as `signal` aborts (a stream need not honour it promptly). */
function nextOrAbort<T>(iterator: AsyncIterator<T>, signal: AbortSignal | undefined): Promise<IteratorResult<T> | typeof ABORTED> {
  if (!signal) return iterator.next();
  if (signal.aborted) return Promise.resolve(ABORTED);
  return new Promise((resolve, reject) => {
    const onAbort = (): void => resolve(ABORTED);
    signal.addEventListener("abort", onAbort, { once: true });
    iterator.next().then(
      (r) => {
        signal.removeEventListener("abort", onAbort);
        resolve(r);
      },
      (e: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(e);
      },
    );
  });
}

/** Follows the job until it settles, Ctrl-C, or the watch fails for good (thrown). */
export async function waitForJob(options: WaitForJobOptions): Promise<WaitOutcome> {
  const { uuid, signal } = options;
  const renderer = new ProgressRenderer({ out: options.out, ...(options.tty !== undefined ? { tty: options.tty } : {}), ...(options.now ? { now: options.now } : {}) });
  const sleep = options.sleep ?? defaultSleep;
  const maxReconnects = options.maxReconnects ?? 8;
  let last: Job | undefined;
  let reconnects = 0;

  const interrupted = (): WaitOutcome => {
    renderer.interrupt();
    options.out.write(`${interruptedLine(uuid, last)}\n`);
    return { code: EXIT_INTERRUPTED, job: last };
  };

  for (;;) {
    const stream = new AbortController();
    const stopStream = (): void => stream.abort();
    signal?.addEventListener("abort", stopStream, { once: true });
    const iterator = options.watch(stream.signal)[Symbol.asyncIterator]();
    let broken: unknown;
    try {
      for (;;) {
        const next = await nextOrAbort(iterator, signal);
        if (next === ABORTED) return interrupted();
        if (next.done) break;
        const job = next.value;
        reconnects = 0;
        // A re-opened stream starts with the current state, which may already have been shown.
        if (last && job.revision <= last.revision) continue;
        last = job;
        if (isSettled(job.state)) {
          const { line, code } = settledLine(job, renderer.elapsed());
          renderer.finish(line);
          return { code, job };
        }
        renderer.update(jobView(job));
      }
      broken = new StratumError(Code.UNAVAILABLE, `the watch of job ${uuid} ended before the job did`);
    } catch (e) {
      if (signal?.aborted) return interrupted();
      if (!(e instanceof StratumError) || e.code !== Code.UNAVAILABLE) {
        renderer.interrupt();
        throw e;
      }
      broken = e;
    } finally {
      signal?.removeEventListener("abort", stopStream);
      stream.abort();
      // Not awaited: a generator busy in a pending next() answers return() only after it.
      void iterator.return?.().catch(() => {});
    }

    reconnects++;
    if (reconnects > maxReconnects) {
      renderer.interrupt();
      options.out.write(`stopped waiting: the watch of job ${uuid} kept breaking; the job goes on: follow it with '${TOOL_NAME} job watch ${uuid}'\n`);
      throw broken;
    }
    await sleep(reconnectDelay(reconnects), signal);
    if (signal?.aborted) return interrupted();
  }
}
