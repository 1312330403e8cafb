import type { Bus, ServiceRouter } from "@stratum/bus";
import type { ChainTaskQueue } from "@stratum/chain-task";
import { Code, errorMessage, StratumError, type Logger } from "@stratum/core";
import type { MessageShape } from "@bufbuild/protobuf";
import { JobControlService, JobExecutorService, type RunJobRequestSchema } from "@stratum/proto/stratum/longjob/v1/longjob_pb";
import { serviceApi, type ServiceApi } from "@stratum/runtime";
import { CheckpointBatcher, type CheckJobs } from "./checkpoints";
import type { JobTypeDefinition } from "./job-type";
import { jobTypeToProto } from "./job-types";
import { JobRun } from "./job-run";
import { ensureReportStream, ReportPublisher } from "./report";

/** How long a job may run in its queue before the queue frees its slot: a day; types bound their own steps. */
export const JOB_EXECUTION_TIMEOUT_MS = 24 * 3_600_000;

export interface JobExecutorOptions {
  /** The implementing service's name (its types are `<service>.<name>`). */
  service: string;
  types: readonly JobTypeDefinition<any, any>[];
  bus: Bus;
  queue: ChainTaskQueue;
  log: Logger;
  incarnation: () => string;
  /** Clients to longjob's replicas (`ctx.peers("longjob").for(JobControlService)`). */
  longjob: ServiceRouter<typeof JobControlService>;
  /** The checkpoint query; default `CheckJobs` on a longjob replica. */
  checkJobs?: CheckJobs;
}

/**
 * The executor side of long jobs, the same in every service that implements job types: it serves
 * `JobExecutorService` (routed, like every call about a resource, to the owner of the job's
 * target), runs each job in the target's chain-task queue with a {@link JobRun}, registers the
 * types with longjob, and answers a cancel by waking the job. A service writes only its types.
 */
export class JobExecutor {
  readonly #types = new Map<string, JobTypeDefinition<any, any>>();
  readonly #runs = new Map<string, JobRun>();
  readonly #checkpoints: CheckpointBatcher;
  readonly #reports: ReportPublisher;
  #registered: Promise<void> | undefined;
  #stopped = false;
  readonly api: ServiceApi;

  constructor(private readonly o: JobExecutorOptions) {
    for (const t of o.types) {
      if (!t.name.startsWith(`${o.service}.`)) throw new TypeError(`job type ${t.name} must be named ${o.service}.<name>: it runs in ${o.service}`);
      this.#types.set(t.name, t);
    }
    const check: CheckJobs =
      o.checkJobs ?? (async (jobs, signal) => o.longjob.call(jobs[0]!.uuid, (c) => c.checkJobs({ jobs }, { timeoutMs: 10_000, ...(signal ? { signal } : {}) })));
    this.#checkpoints = new CheckpointBatcher(check);
    this.#reports = new ReportPublisher(o.bus);
    this.api = serviceApi(
      JobExecutorService,
      {
        runJob: async (req) => this.dispatch(req),
        stopJob: async (req) => {
          const run = this.#runs.get(req.jobUuid);
          if (run) await run.cancel();
          return { running: run !== undefined };
        },
      },
      {
        runJob: { owner: (r) => r.targetUuid },
        stopJob: { owner: (r) => r.targetUuid },
      },
    );
  }

  /**
   * Accepts a dispatch (`RunJob`): from the handler, or in-process from longjob when it dispatches
   * one of its own types to itself (no round trip through its own server).
   */
  dispatch(req: MessageShape<typeof RunJobRequestSchema>): { executor: string } {
    this.#accept({
      jobUuid: req.jobUuid,
      typeName: req.type,
      targetUuid: req.targetUuid,
      params: req.parameters ?? {},
      attempt: req.attempt,
      resumed: req.resume,
      resumeFrom: req.resume && req.progress ? { percent: req.progress.percent, stage: req.progress.stage, bytesDone: Number(req.progress.bytesDone), bytesTotal: Number(req.progress.bytesTotal), message: req.progress.message } : undefined,
    });
    return { executor: this.o.incarnation() };
  }

  /** The jobs running (or queued) here, for introspection and tests. */
  get running(): number {
    return this.#runs.size;
  }

  /** Registers the types with longjob, retrying in the background until a longjob replica took them. */
  start(): void {
    this.#registered ??= this.#register();
  }

  /** Resolves once longjob has the types (tests, and services that submit their own jobs at start). */
  registered(): Promise<void> {
    this.start();
    return this.#registered!;
  }

  /**
   * Hands the running jobs over: each stops at its next checkpoint or wait without reporting, as
   * a superseded attempt does, and longjob resumes it (or fails or suspends it, by its type) on
   * the target's next owner once this replica has left the ring. A long job (a backup) would
   * otherwise hold a rolling restart for as long as it runs. Call once the replica is off the ring.
   */
  async drain(): Promise<void> {
    this.#stopped = true;
    for (const run of this.#runs.values()) run.handOver();
  }

  stop(): void {
    this.#stopped = true;
  }

  #accept(input: { jobUuid: string; typeName: string; targetUuid: string; params: Record<string, unknown>; attempt: number; resumed: boolean; resumeFrom: JobRun["input"]["resumeFrom"] }): void {
    const type = this.#types.get(input.typeName);
    if (!type) {
      throw new StratumError(Code.FAILED_PRECONDITION, `${this.o.service} implements no job type ${input.typeName}`, { reason: "JOB_TYPE_NOT_IMPLEMENTED", resources: { jobUuid: input.jobUuid } });
    }
    if (this.#stopped) {
      // Handing its jobs over: one accepted now would be handed over at once. Longjob retries
      // the dispatch, which reaches the target's next owner once this replica is off the ring.
      throw new StratumError(Code.UNAVAILABLE, `${this.o.service} replica ${this.o.incarnation().split("@")[0]} is stopping`, { reason: "EXECUTOR_STOPPING", resources: { jobUuid: input.jobUuid } });
    }
    const current = this.#runs.get(input.jobUuid);
    // A redelivered dispatch of the attempt running here is the same job: accepted, not run twice.
    if (current && current.attempt >= input.attempt) return;
    current?.supersede(input.attempt);
    const run = new JobRun({ jobUuid: input.jobUuid, type, targetUuid: input.targetUuid, params: input.params, attempt: input.attempt, resumed: input.resumed, resumeFrom: input.resumeFrom }, {
      reports: this.#reports,
      checkpoints: this.#checkpoints,
      executor: this.o.incarnation(),
      log: this.o.log,
    });
    this.#runs.set(input.jobUuid, run);
    const signature = type.signature?.({ jobUuid: input.jobUuid, targetUuid: input.targetUuid }) ?? `job-run-${input.jobUuid}`;
    this.o.queue
      .submit({ signature, name: type.name, executionTimeoutMs: JOB_EXECUTION_TIMEOUT_MS, run: () => run.execute() })
      .catch((e) => run.ctx.log.warn("job run ended abnormally", { error: errorMessage(e) }))
      .finally(() => {
        if (this.#runs.get(input.jobUuid) === run) this.#runs.delete(input.jobUuid);
      });
  }

  async #register(): Promise<void> {
    await ensureReportStream(this.o.bus);
    const types = [...this.#types.values()].map((t) => jobTypeToProto(this.o.service, t));
    for (let attempt = 0; !this.#stopped; attempt++) {
      try {
        await this.o.longjob.call(this.o.service, (c) => c.registerJobTypes({ types }, { timeoutMs: 10_000 }));
        this.o.log.info("job types registered", { types: types.map((t) => t.name).join(",") });
        return;
      } catch (e) {
        if (attempt === 0 || attempt % 30 === 0) this.o.log.warn("could not register job types with longjob yet; retrying", { error: errorMessage(e) });
        await new Promise((r) => setTimeout(r, Math.min(2_000, 100 * 2 ** attempt)));
      }
    }
  }
}
