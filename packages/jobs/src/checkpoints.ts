import { JobState } from "@stratum/proto/stratum/longjob/v1/job_pb";
import { KeyedBatcher } from "@stratum/db";

/** The authoritative state of a job as longjob's database has it. */
export interface JobCheck {
  state: JobState;
  attempt: number;
}

/** Asks longjob about jobs (`JobControlService.CheckJobs`, or longjob's own store in-process). */
export type CheckJobs = (jobs: Array<{ uuid: string; attempt: number }>, signal?: AbortSignal) => Promise<{ jobs: ReadonlyArray<{ uuid: string } & JobCheck> }>;

/** Largest `CheckJobs` request (the proto's bound). */
const MAX_BATCH = 1000;

/**
 * The checkpoints of every job running on a replica, asked in one `CheckJobs` call per
 * event-loop turn: a replica running many jobs that checkpoint at once costs longjob one query,
 * not one per job. Each answer is read from longjob's database when asked — never cached — since
 * a cancel must be seen by the next checkpoint. A job longjob does not know is UNSPECIFIED.
 */
export class CheckpointBatcher {
  readonly #batcher: KeyedBatcher<{ uuid: string; attempt: number }, JobCheck>;

  constructor(check: CheckJobs) {
    this.#batcher = new KeyedBatcher(
      (j) => j.uuid,
      async (batch) => new Map((await check(batch)).jobs.map((j) => [j.uuid, { state: j.state, attempt: j.attempt }])),
      MAX_BATCH,
    );
  }

  async check(uuid: string, attempt: number): Promise<JobCheck> {
    return (await this.#batcher.submit({ uuid, attempt })) ?? { state: JobState.UNSPECIFIED, attempt: 0 };
  }
}
