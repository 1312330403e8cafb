/**
 * Following a long job from a command that started it elsewhere: `backup create|restore|cancel`
 * (the job is storage's, on longjob) and `vm migrate` (compute's). Their call answers with the
 * job's uuid; `--wait` follows it over longjob's WatchJob with the shared waiter (wait.ts), so the
 * display — a bar with bytes done/total on a terminal, a line per change elsewhere — the
 * re-opening of a broken watch and Ctrl-C behave exactly as for `job … --wait`.
 */
import type { JobState, Job } from "@stratum/proto/stratum/longjob/v1/job_pb";
import type { FlagSpecs } from "../args";
import { waitForJob, type WaitOutcome } from "../wait";
import { present, type Api, type CommandInput } from "./command";

/** WatchJob as a stream of jobs. */
export async function* watchJobs(api: Api, uuid: string, signal: AbortSignal): AsyncIterable<Job> {
  for await (const res of api.jobs.watchJob({ uuid }, { signal })) yield present(res.job, "job");
}

export interface FollowJobOptions {
  /** The final state that is success (default Succeeded). */
  succeedsAt?: JobState;
  /** What Ctrl-C suggests to stop the work, e.g. `stratumctl backup cancel UUID`. */
  cancelCommand?: string;
}

/**
 * Follows job `uuid` to its end. The display goes to stdout for people, or to stderr with
 * --json so stdout holds only the JSON.
 */
export function followJob(input: CommandInput, uuid: string, options: FollowJobOptions = {}): Promise<WaitOutcome> {
  const { flags, api, io } = input;
  if (uuid === "") throw new Error("the server answered without the job's uuid");
  return waitForJob({
    uuid,
    watch: (signal) => watchJobs(api, uuid, signal),
    out: flags.bool("json") ? io.stderr : io.stdout,
    signal: io.signal,
    ...(options.succeedsAt !== undefined ? { succeedsAt: options.succeedsAt } : {}),
    ...(options.cancelCommand !== undefined ? { cancelCommand: options.cancelCommand } : {}),
  });
}

/** `--wait` for a command whose work is a long job. */
export function jobWaitFlag(what: string, success = "it Succeeded"): FlagSpecs {
  return {
    wait: {
      type: "boolean",
      description: `follow the ${what} job until it ends, showing its progress (bytes done/total); exit 0 if ${success}, 1 otherwise (Ctrl-C stops waiting, not the job)`,
    },
  };
}
