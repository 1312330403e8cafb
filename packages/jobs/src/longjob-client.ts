import type { JsonObject } from "@bufbuild/protobuf";
import type { ServiceRouter } from "@stratum/bus";
import { Code, StratumError } from "@stratum/core";
import type { Job } from "@stratum/proto/stratum/longjob/v1/job_pb";
import type { LongJobService } from "@stratum/proto/stratum/longjob/v1/longjob_pb";
import { isFinalJobState } from "./job-types";

/** Deadline of a quick call to longjob (a read, a submit, a cancel). */
const CALL_TIMEOUT_MS = 10_000;

/** One job a service submits: its uuid chosen up front and its request id derived from what it is for, so a retry is answered with the first job. */
export interface JobSubmission {
  uuid: string;
  type: string;
  targetUuid: string;
  parameters: JsonObject;
  clientRequestId: string;
}

/**
 * Longjob as the services that start jobs use it (storage's backups, compute's migrations,
 * broker's provisions), every call on the owner of the job's UUID in longjob's ring.
 */
export class LongJobClient {
  constructor(private readonly longjob: ServiceRouter<typeof LongJobService>) {}

  /** Submits a job; a retry with the same uuid and request id returns the first job. */
  async submit(s: JobSubmission, signal?: AbortSignal): Promise<Job> {
    const { job } = await this.longjob.call(s.uuid, (c) => c.submitJob(s, { timeoutMs: CALL_TIMEOUT_MS, ...(signal ? { signal } : {}) }));
    return job!;
  }

  /** The job as longjob has it, or undefined when longjob knows no such job. */
  async get(uuid: string, signal?: AbortSignal): Promise<Job | undefined> {
    try {
      return (await this.longjob.call(uuid, (c) => c.getJob({ uuid }, { timeoutMs: CALL_TIMEOUT_MS, ...(signal ? { signal } : {}) }))).job;
    } catch (e) {
      if (StratumError.from(e).code === Code.NOT_FOUND) return undefined;
      throw e;
    }
  }

  /** Asks longjob to cancel a job: the job as the cancel left it (Canceling, or the final state it had reached). */
  async cancel(uuid: string, clientRequestId: string): Promise<Job> {
    const { job } = await this.longjob.call(uuid, (c) => c.cancelJob({ uuid, clientRequestId }, { timeoutMs: CALL_TIMEOUT_MS }));
    return job!;
  }

  /** Follows a job (WatchJob, event-driven) until it is Succeeded, Failed or Canceled: the job then. */
  async final(uuid: string, signal: AbortSignal): Promise<Job> {
    return this.longjob.call(uuid, async (c) => {
      for await (const m of c.watchJob({ uuid }, { signal })) if (m.job && isFinalJobState(m.job.state)) return m.job;
      throw new StratumError(Code.UNAVAILABLE, `the watch of job ${uuid} ended before the job did`, { reason: "WATCH_ENDED", resources: { jobUuid: uuid } });
    });
  }
}
