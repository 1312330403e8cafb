import type { Logger } from "@stratum/core";
import type { ReportedProgress } from "./report";

/** A parameter as a job type declares it (mirrors `ParameterSpec` in job.proto). */
export interface JobParameter {
  name: string;
  kind: "number" | "string" | "bool" | "stringList";
  required?: boolean;
  min?: number;
  /** 0 or unset: no bound. */
  max?: number;
  description?: string;
}

/**
 * What becomes of a running job whose executor's replica dies: `resume` on the target's new owner
 * (the type's `resume` hook, or `run` again with `ctx.resumeFrom` set), or `fail` / `suspend` it
 * with the replica named. A type that cannot tell what its dead run left behind must not resume.
 */
export type InterruptPolicy = "resume" | "fail" | "suspend";

/** What a running job sees: its input, its checkpoint, its progress and its cancellation. */
export interface JobContext<P = Record<string, unknown>> {
  readonly jobUuid: string;
  readonly type: string;
  readonly targetUuid: string;
  readonly params: P;
  /** This dispatch's number; the fencing token of the job's reports. */
  readonly attempt: number;
  /**
   * Whether an earlier attempt ran this job (its executor died): the work may be partly or wholly
   * done, and `run` must find out before doing it again. Set also when that attempt recorded no
   * progress (then `resumeFrom` is undefined).
   */
  readonly resumed: boolean;
  /** The progress an earlier attempt recorded, when this one resumes it. */
  readonly resumeFrom: ReportedProgress | undefined;
  /**
   * Aborted when the job is cancelled (or superseded by a newer attempt): a job waiting on an
   * agent task or an event passes it on, so a cancel wakes it instead of its timeout.
   */
  readonly signal: AbortSignal;
  readonly log: Logger;
  /**
   * The cancellation checkpoint, `isCancelled(jobUuid)`: asks longjob for the job's authoritative
   * state in its database and throws `JobCanceledError` when it is Canceling (or
   * `JobSupersededError` when a newer attempt runs it). Call it between async steps; a flow's
   * completed steps then roll back on the throw.
   */
  checkpoint(): Promise<void>;
  /** Reports progress; a lower percent or an earlier stage than already reported is ignored. */
  progress(update: Partial<ReportedProgress>): void;
}

/**
 * A job type, implemented by the service that owns the work (storage: backup; compute:
 * migrate). The kit's executor runs it on the replica that owns the job's target, in the
 * target's chain-task queue, and reports its progress and outcome to longjob.
 */
export interface JobTypeDefinition<P = Record<string, unknown>, R extends Record<string, unknown> = Record<string, unknown>> {
  /** `<service>.<name>`. */
  readonly name: string;
  readonly description: string;
  /** Its stages in order; progress names one of them. */
  readonly stages: readonly string[];
  readonly parameters: readonly JobParameter[];
  readonly onInterrupt: InterruptPolicy;
  /** Whether a submit must name a target resource (else a job targets its own UUID). */
  readonly targetRequired?: boolean;
  /** Chain-task signature the job runs under; default `job-run-<jobUuid>`: apart from the job record's own queue (`job-<uuid>`) on longjob (e.g. `vm-<targetUuid>` for a migration). */
  signature?(ctx: { jobUuid: string; targetUuid: string }): string;
  /** The work; its result is the job's. Throwing after `ctx.checkpoint()` threw cancels it. */
  run(ctx: JobContext<P>): Promise<R>;
  /**
   * Continues a job an executor that died left, from `ctx.resumeFrom`; default: `run` again (with
   * `ctx.resumed` set). Also called when the job was cancelled meanwhile — with `ctx.signal`
   * aborted and the cancel hook called — so it can say whether the dead attempt's work finished.
   */
  resume?(ctx: JobContext<P>): Promise<R>;
  /** Reaches the work already sent elsewhere (an agent task) when the job is cancelled. */
  cancel?(ctx: JobContext<P>): Promise<void>;
}
