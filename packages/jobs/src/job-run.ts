import { codeName, errorMessage, StratumError, type Logger } from "@stratum/core";
import { JobState } from "@stratum/proto/stratum/longjob/v1/job_pb";
import type { CheckpointBatcher } from "./checkpoints";
import { JobCanceledError, JobCancelFailedError, JobFailedError, JobSupersededError } from "./errors";
import type { JobContext, JobTypeDefinition } from "./job-type";
import type { FinalState, JobReport, ReportPublisher, ReportedProgress } from "./report";

/** Backoff of a report or checkpoint that could not reach NATS or longjob: the job waits, it is not lost. */
const RETRY_DELAYS_MS = [50, 200, 500, 1_000, 2_000, 5_000];

export interface JobRunInput {
  jobUuid: string;
  type: JobTypeDefinition<any, any>;
  targetUuid: string;
  params: Record<string, unknown>;
  attempt: number;
  /** An earlier attempt ran (its executor died): it may have done part of the work, or all of it. */
  resumed: boolean;
  resumeFrom: ReportedProgress | undefined;
}

export interface JobRunDeps {
  reports: ReportPublisher;
  checkpoints: CheckpointBatcher;
  executor: string;
  log: Logger;
}

/**
 * One attempt of one job on its executor: the context the type's code sees, and the reports of
 * what it did, published in order (`seq`) — started, progress (coalesced: only the newest waiting
 * one is sent), finished — each retried until JetStream stored it, so longjob records every one.
 */
export class JobRun {
  readonly #abort = new AbortController();
  #canceled = false;
  #cancelHook: Promise<void> | undefined;
  #superseded = false;
  #seq = 0;
  #sent: Promise<void> = Promise.resolve();
  #progress: ReportedProgress = { percent: 0, stage: "", bytesDone: 0, bytesTotal: 0, message: "" };
  /** A progress report waiting for the one in flight: replaced by newer ones, never queued twice. */
  #queuedProgress = false;
  readonly ctx: JobContext;

  constructor(
    readonly input: JobRunInput,
    private readonly d: JobRunDeps,
  ) {
    if (input.resumeFrom) this.#progress = { ...input.resumeFrom };
    const run = this;
    const log = d.log.child({ jobUuid: input.jobUuid, jobType: input.type.name, attempt: input.attempt });
    this.ctx = {
      jobUuid: input.jobUuid,
      type: input.type.name,
      targetUuid: input.targetUuid,
      params: input.params,
      attempt: input.attempt,
      resumed: input.resumed,
      resumeFrom: input.resumeFrom,
      signal: this.#abort.signal,
      log,
      checkpoint: () => run.#checkpoint(),
      progress: (update) => run.#report(update),
    };
  }

  get attempt(): number {
    return this.input.attempt;
  }

  /**
   * Runs the job to its end: a checkpoint first (a job cancelled while it waited in the queue never
   * starts), then the type's run (or resume), then its outcome. A cancel that the work beat ends
   * Succeeded (ZStack's rule); a superseded attempt reports nothing.
   *
   * A resumed attempt found Canceling is not stopped at that first checkpoint: the attempt that
   * died may have sent work that goes on without it (an agent task) or has even finished (a
   * migration whose copy completed). It gets the cancel as a running job would — its signal
   * aborted, its cancel hook called to reach that work — and its run then says what happened:
   * stopped and rolled back (Canceled) or already done (Succeeded: the work won the race).
   */
  async execute(): Promise<void> {
    const { type } = this.input;
    let outcome: { state: FinalState; result?: Record<string, unknown>; error?: StratumError };
    try {
      if (!this.input.resumed) await this.#checkpoint();
      else {
        await this.#checkpoint().catch(async (e: unknown) => {
          if (!(e instanceof JobCanceledError)) throw e;
          await this.cancel();
        });
      }
      // Stored before any work: a job longjob still sees Waiting has done nothing anywhere, so
      // its owner may dispatch it again elsewhere should this replica die now.
      this.#publish({ kind: "started", progress: { ...this.#progress } });
      await this.#sent;
      const result = this.input.resumed && type.resume ? await type.resume(this.ctx) : await type.run(this.ctx);
      outcome = { state: "Succeeded", result: result ?? {} };
    } catch (e) {
      if (this.#superseded || e instanceof JobSupersededError) {
        this.ctx.log.info("job attempt superseded: stopped without reporting", { error: errorMessage(e) });
        return;
      }
      // A cancel that could not reach the work is a failure to say, not a cancellation; so is work
      // that failed on its own and recorded it before the cancel was seen (JobFailedError).
      if (e instanceof JobFailedError) {
        outcome = { state: "Failed", error: StratumError.from(e.cause) };
      } else {
        const canceled = !(e instanceof JobCancelFailedError) && (this.#canceled || e instanceof JobCanceledError);
        outcome = canceled ? { state: "Canceled" } : { state: "Failed", error: StratumError.from(e) };
      }
    }
    const { error } = outcome;
    this.#publish({
      kind: "finished",
      progress: outcome.state === "Succeeded" ? { ...this.#progress, percent: 100 } : { ...this.#progress },
      outcome: {
        state: outcome.state,
        ...(outcome.result ? { result: outcome.result } : {}),
        ...(error ? { error: { code: codeName(error.code), reason: error.reason, message: error.message, resources: { ...error.resources } } } : {}),
      },
    });
    await this.#sent;
  }

  /** Cancelled (longjob said so): wakes the job's waits and lets the type reach its agent work. */
  cancel(): Promise<void> {
    // Once: later callers (a StopJob, the resumed attempt's start) wait for the same hook.
    this.#cancelHook ??= (async () => {
      this.#canceled = true;
      this.#abort.abort(new JobCanceledError(this.input.jobUuid));
      try {
        await this.input.type.cancel?.(this.ctx);
      } catch (e) {
        this.ctx.log.warn("job cancel hook failed", { error: errorMessage(e) });
      }
    })();
    return this.#cancelHook;
  }

  /** The replica is stopping: the job stops without reporting, for longjob to resume it elsewhere. */
  handOver(): void {
    if (this.#superseded) return;
    this.#superseded = true;
    this.#abort.abort(new JobSupersededError(this.input.jobUuid, this.input.attempt, this.input.attempt + 1, "its replica is stopping; it is resumed on the next owner"));
  }

  /** A newer attempt of the job runs elsewhere (or here): this one stops, silently. */
  supersede(by: number): void {
    if (this.#superseded) return;
    this.#superseded = true;
    this.#abort.abort(new JobSupersededError(this.input.jobUuid, this.input.attempt, by));
  }

  async #checkpoint(): Promise<void> {
    const { jobUuid, attempt } = this.input;
    if (this.#superseded) throw new JobSupersededError(jobUuid, attempt, attempt + 1);
    if (this.#canceled) throw new JobCanceledError(jobUuid);
    const check = await this.#retrying("checkpoint", () => this.d.checkpoints.check(jobUuid, attempt));
    if (check.attempt !== attempt && check.state !== JobState.UNSPECIFIED) {
      this.supersede(check.attempt);
      throw new JobSupersededError(jobUuid, attempt, check.attempt);
    }
    if (check.state === JobState.CANCELING || check.state === JobState.CANCELED || check.state === JobState.UNSPECIFIED) {
      if (!this.#canceled) void this.cancel();
      throw new JobCanceledError(jobUuid);
    }
    if (this.#canceled) throw new JobCanceledError(jobUuid); // a StopJob arrived meanwhile
  }

  #report(update: Partial<ReportedProgress>): void {
    const p = this.#progress;
    const stages = this.input.type.stages;
    const stage = update.stage ?? p.stage;
    // Never backwards: an earlier stage or a lower percent reported late keeps what was reported.
    const stageAhead = stage === p.stage || p.stage === "" || stages.indexOf(stage) >= stages.indexOf(p.stage);
    if (update.stage !== undefined && !stages.includes(update.stage)) throw new TypeError(`job type ${this.input.type.name} has no stage ${JSON.stringify(update.stage)} (stages: ${stages.join(", ")})`);
    this.#progress = {
      percent: Math.min(100, Math.max(p.percent, Math.floor(update.percent ?? p.percent))),
      stage: stageAhead ? stage : p.stage,
      bytesDone: Math.max(p.bytesDone, update.bytesDone ?? p.bytesDone),
      bytesTotal: update.bytesTotal ?? p.bytesTotal,
      message: update.message ?? p.message,
    };
    if (this.#queuedProgress) return; // the queued report will carry this newest progress
    this.#queuedProgress = true;
    this.#publish({ kind: "progress" }, () => {
      this.#queuedProgress = false;
      return { ...this.#progress };
    });
  }

  /** Queues a report behind the ones before it; `late` supplies the progress when it is its turn. */
  #publish(report: Pick<JobReport, "kind" | "progress" | "outcome">, late?: () => ReportedProgress): void {
    this.#sent = this.#sent.then(async () => {
      if (this.#superseded && report.kind !== "finished") return;
      const full: JobReport = {
        job: this.input.jobUuid,
        attempt: this.input.attempt,
        seq: ++this.#seq,
        executor: this.d.executor,
        ...report,
        ...(late ? { progress: late() } : {}),
        at: new Date().toISOString(),
      };
      await this.#retrying(`report ${report.kind}`, () => this.d.reports.publish(full));
    });
  }

  /** Retries until it succeeds: a report or a checkpoint the job cannot go without. */
  async #retrying<T>(what: string, fn: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn();
      } catch (e) {
        if (this.#superseded) throw new JobSupersededError(this.input.jobUuid, this.input.attempt, this.input.attempt + 1);
        const delay = RETRY_DELAYS_MS[Math.min(attempt, RETRY_DELAYS_MS.length - 1)]!;
        if (attempt === 2) this.ctx.log.warn(`job ${what} failed; retrying`, { error: errorMessage(e) });
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }
}
