import { Code, StratumError } from "@stratum/core";

/** Thrown by `checkpoint()` when the job was cancelled: the job stops and rolls back. */
export class JobCanceledError extends StratumError {
  constructor(jobUuid: string) {
    super(Code.CANCELLED, `job ${jobUuid} was cancelled`, { reason: "JOB_CANCELED", resources: { jobUuid } });
  }
}

/**
 * Thrown by `checkpoint()` when a newer attempt runs the job (this executor was thought dead, e.g.
 * it was paused): it stops without reporting — its reports would be ignored anyway.
 */
export class JobSupersededError extends StratumError {
  constructor(jobUuid: string, attempt: number, current: number, why?: string) {
    super(Code.ABORTED, `job ${jobUuid}: attempt ${attempt} ${why ?? `was superseded by attempt ${current}`}`, { reason: "JOB_SUPERSEDED", resources: { jobUuid } });
  }
}

/**
 * Thrown by a job whose cancel could not reach its work (the agent is down): the job ends Failed
 * with this error — not Canceled, which would say the work stopped when nobody knows that it did.
 */
export class JobCancelFailedError extends StratumError {
  constructor(jobUuid: string, why: string, cause?: unknown) {
    super(Code.UNAVAILABLE, `job ${jobUuid} could not be cancelled: ${why}`, { reason: "JOB_CANCEL_FAILED", resources: { jobUuid }, ...(cause === undefined ? {} : { cause }) });
  }
}

/**
 * Thrown by a job whose work failed on its own and which has recorded that failure on its
 * resource (a backup set to Error): the job ends Failed with `cause`, even when a cancel arrived
 * while the failure was being recorded — the failure won the race, as a success would have, and
 * the job must not say Canceled while its resource says Error.
 */
export class JobFailedError extends Error {
  override readonly name = "JobFailedError";
  constructor(override readonly cause: unknown) {
    super(cause instanceof Error ? cause.message : String(cause));
  }
}
