import { Code, StratumError } from "@stratum/core";
import type { ServiceRouter } from "@stratum/bus";
import { JobState } from "@stratum/proto/stratum/longjob/v1/job_pb";
import { LongJobService } from "@stratum/proto/stratum/longjob/v1/longjob_pb";

/** One job storage submits: its uuid chosen up front, its request id derived from what it is for. */
export interface JobSubmission {
  uuid: string;
  type: "storage.backup" | "storage.restore";
  targetUuid: string;
  parameters: Record<string, string>;
  /** Derived from the backup (or restore): a retried submit is answered with the first job. */
  clientRequestId: string;
}

/** Longjob as storage uses it: submitting the jobs of backups and restores, on the job's owner. */
export class JobSubmitter {
  constructor(private readonly longjob: ServiceRouter<typeof LongJobService>) {}

  async submit(s: JobSubmission, signal?: AbortSignal): Promise<void> {
    await this.longjob.call(s.uuid, (c) =>
      c.submitJob(
        { uuid: s.uuid, type: s.type, targetUuid: s.targetUuid, parameters: s.parameters, clientRequestId: s.clientRequestId },
        { timeoutMs: 15_000, ...(signal ? { signal } : {}) },
      ),
    );
  }

  /** A job's state in longjob's records (UNSPECIFIED when it has none). */
  async state(uuid: string, signal?: AbortSignal): Promise<JobState> {
    try {
      const { job } = await this.longjob.call(uuid, (c) => c.getJob({ uuid }, { timeoutMs: 10_000, ...(signal ? { signal } : {}) }));
      return job?.state ?? JobState.UNSPECIFIED;
    } catch (e) {
      if (StratumError.from(e).code === Code.NOT_FOUND) return JobState.UNSPECIFIED;
      throw e;
    }
  }
}
