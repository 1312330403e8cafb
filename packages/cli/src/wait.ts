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
 * messages: the real stream in the CLI, a scripted sequence in tests. The following itself
 * (skipping, re-opening, Ctrl-C) is follow.ts, shared with the VM waiter.
 */
import { Code, StratumError } from "@stratum/core";
import { JobState, JobStateSchema, type Job } from "@stratum/proto/stratum/longjob/v1/job_pb";
import { enumWord } from "./enums";
import { follow, type OpenStream } from "./follow";
import type { ProgressView } from "./progress";
import { TOOL_NAME } from "./tool-name";
import { EXIT_FAILED, EXIT_OK, type Writer } from "./writer";

/** Opens one WatchJob stream; it ends when `signal` aborts. */
export type WatchJob = OpenStream<Job>;

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
  /** The final state that is success (exit 0). Default Succeeded; `backup cancel --wait` waits for Canceled. */
  succeedsAt?: JobState;
  /** The command that cancels the work, for the Ctrl-C line. Default: `stratumctl job cancel UUID`. */
  cancelCommand?: string;
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

/** The line a settled job ends the display with, and the exit status it means (0 when it ended in `succeedsAt`). */
export function settledLine(job: Job, elapsed: string, succeedsAt: JobState = JobState.SUCCEEDED): { line: string; code: number } {
  const state = enumWord(JobStateSchema, job.state);
  const head = `job ${job.uuid} ${state} (waited ${elapsed})`;
  const error = describeJobError(job);
  if (job.state === JobState.SUSPENDED) {
    return {
      line: `${head}${error ? `: ${error}` : ""}; resume it with '${TOOL_NAME} job rerun ${job.uuid}', or end it with '${TOOL_NAME} job cancel ${job.uuid}'`,
      code: EXIT_FAILED,
    };
  }
  const hasResult = job.state === JobState.SUCCEEDED && job.result && Object.keys(job.result).length > 0;
  const detail = hasResult ? `: result ${JSON.stringify(job.result)}` : error ? `: ${error}` : "";
  return { line: `${head}${detail}`, code: job.state === succeedsAt ? EXIT_OK : EXIT_FAILED };
}

/** What Ctrl-C prints: the job goes on, and how to stop it. */
export function interruptedLine(uuid: string, job: Job | undefined, cancelCommand = `${TOOL_NAME} job cancel ${uuid}`): string {
  const state = job ? ` (${enumWord(JobStateSchema, job.state)})` : "";
  return `stopped waiting; job ${uuid} goes on${state}: cancel it with '${cancelCommand}', or follow it with '${TOOL_NAME} job watch ${uuid}'`;
}

const REOPEN_ON: ReadonlySet<Code> = new Set([Code.UNAVAILABLE]);

/** Follows the job until it settles, Ctrl-C, or the watch fails for good (thrown). */
export async function waitForJob(options: WaitForJobOptions): Promise<WaitOutcome> {
  const { uuid } = options;
  const { code, last } = await follow<Job>({
    open: options.watch,
    out: options.out,
    signal: options.signal,
    tty: options.tty,
    now: options.now,
    maxReconnects: options.maxReconnects,
    sleep: options.sleep,
    followed: {
      revision: (job) => job.revision,
      settle: (job, elapsed) => (isSettled(job.state) ? settledLine(job, elapsed, options.succeedsAt) : undefined),
      view: jobView,
      interruptedLine: (job) => interruptedLine(uuid, job, options.cancelCommand),
      keptBreakingLine: () => `stopped waiting: the watch of job ${uuid} kept breaking; the job goes on: follow it with '${TOOL_NAME} job watch ${uuid}'`,
      endedEarly: () => new StratumError(Code.UNAVAILABLE, `the watch of job ${uuid} ended before the job did`),
      reopenOn: REOPEN_ON,
    },
  });
  return { code, job: last };
}
