import { JobState } from "@stratum/proto/stratum/longjob/v1/job_pb";
import type { CheckJobsResponse } from "@stratum/proto/stratum/longjob/v1/longjob_pb";
import { TurnBatcher } from "@stratum/db";

/** The authoritative state of a job as longjob's database has it. */
export interface JobCheck {
  state: JobState;
  attempt: number;
}

/** Asks longjob about jobs (`JobControlService.CheckJobs`). */
export type CheckJobs = (jobs: Array<{ uuid: string; attempt: number }>, signal?: AbortSignal) => Promise<CheckJobsResponse>;

interface Pending {
  uuid: string;
  attempt: number;
  resolve(check: JobCheck): void;
  reject(error: unknown): void;
}

/** Largest `CheckJobs` request (the proto's bound). */
const MAX_BATCH = 1000;

/**
 * The checkpoints of every job running on a replica, asked in one `CheckJobs` call per
 * event-loop turn: a replica running many jobs that checkpoint at once costs longjob one query,
 * not one per job. Each answer is read from longjob's database when asked — never cached — since
 * a cancel must be seen by the next checkpoint.
 */
export class CheckpointBatcher {
  readonly #batcher: TurnBatcher<Pending>;

  constructor(check: CheckJobs) {
    this.#batcher = new TurnBatcher<Pending>(
      async (pending) => {
        const batch = pending.slice(0, MAX_BATCH);
        try {
          const answer = await check(batch.map((p) => ({ uuid: p.uuid, attempt: p.attempt })));
          const byUuid = new Map(answer.jobs.map((j) => [j.uuid, j]));
          for (const p of batch) {
            const j = byUuid.get(p.uuid);
            p.resolve({ state: j?.state ?? JobState.UNSPECIFIED, attempt: j?.attempt ?? 0 });
          }
        } catch (e) {
          for (const p of batch) p.reject(e);
        }
        return pending.slice(MAX_BATCH);
      },
      (p, e) => p.reject(e),
    );
  }

  check(uuid: string, attempt: number): Promise<JobCheck> {
    return new Promise((resolve, reject) => this.#batcher.submit({ uuid, attempt, resolve, reject }));
  }
}
