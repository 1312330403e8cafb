import type { JsonObject } from "@bufbuild/protobuf";
import type { MembershipView, ServiceRouters } from "@stratum/bus";
import type { ChainTaskQueue } from "@stratum/chain-task";
import { Code, codeName, errorMessage, StratumError, Violations, type Logger } from "@stratum/core";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { JobExecutorService, RunJobRequestSchema } from "@stratum/proto/stratum/longjob/v1/longjob_pb";
import { crashPoint } from "@stratum/runtime";
import type { JobStore } from "../store/job-store";
import type { JobRow } from "../store/schema";
import { isFinal } from "./job-state";
import { checkParameters, type TypeRegistry } from "./type-registry";

export interface JobManagerDeps {
  store: JobStore;
  types: TypeRegistry;
  queue: ChainTaskQueue;
  /** Clients to the implementing services' replicas, by service name. */
  peers: (service: string) => ServiceRouters;
  view: MembershipView;
  log: Logger;
  /**
   * The executor of longjob's own types on this replica: a job whose target this very replica
   * owns is handed to it in-process instead of through this replica's own gRPC server.
   */
  local?: { service: string; incarnation: () => string; dispatch(req: MessageInitShape<typeof RunJobRequestSchema> & { jobUuid: string }): unknown };
}

export interface Submit {
  uuid: string;
  type: string;
  targetUuid: string;
  parameters: JsonObject;
  clientRequestId: string;
  rerunOf?: string;
}

/** Backoff of a dispatch whose executor service could not be reached: the job waits, Waiting. */
const DISPATCH_RETRY_MS = [100, 500, 1_000, 2_000, 5_000];
/** A dispatch call's deadline: the executor only accepts the job. */
const DISPATCH_TIMEOUT_MS = 10_000;

/**
 * Long jobs on their owner (the replica owning the job's UUID on longjob's ring). Submits are
 * recorded and answered at once; the dispatch, and every later mutation of a job, runs in the
 * job's chain-task queue (`job-<uuid>`), so a cancel and a dispatch of one job never interleave.
 */
export class JobManager {
  readonly #retries = new Map<string, { timer: NodeJS.Timeout; attempt: number }>();
  #stopped = false;

  constructor(private readonly d: JobManagerDeps) {}

  /**
   * Records the job (Waiting) and queues its dispatch. The type must be registered and the
   * parameters must fit its declaration: INVALID_ARGUMENT naming each bad one otherwise.
   */
  async submit(s: Submit): Promise<JobRow> {
    const type = await this.d.types.get(s.type);
    const v = new Violations();
    checkParameters(type, s.parameters, v);
    if (type.targetRequired && !s.targetUuid) v.add("target_uuid", `job type ${type.name} works on a resource of ${type.service}: name it`);
    v.throwIfAny({ jobType: s.type });
    const targetUuid = s.targetUuid || s.uuid;
    // The first dispatch is claimed by the insert itself when the target's owner is known: one
    // commit fewer per job. (Without a live executor the job waits at attempt 0 for a retry.)
    const executor = this.#ownerOf(type.service, targetUuid);
    const row = await this.d.store.insert({
      uuid: s.uuid,
      type: s.type,
      targetService: type.service,
      targetUuid,
      parameters: s.parameters,
      clientRequestId: s.clientRequestId || null,
      rerunOf: s.rerunOf ?? null,
      attempt: executor ? 1 : 0,
      executor: executor ?? "",
    });
    if (!row) {
      const existing = await this.d.store.get(s.uuid);
      // This very request, run again after the replica that ran it died: its job is the answer.
      if (existing && s.clientRequestId && existing.clientRequestId === s.clientRequestId && existing.type === s.type && sameJson(existing.parameters, s.parameters)) return existing;
      throw new StratumError(Code.ALREADY_EXISTS, existing ? `job ${s.uuid} already exists` : `client_request_id ${s.clientRequestId} was already used for another job`, {
        reason: existing ? "JOB_ALREADY_EXISTS" : "REQUEST_ID_IN_USE",
        resources: { jobUuid: s.uuid },
      });
    }
    crashPoint("longjob:job-recorded");
    if (row.attempt === 0) this.dispatchSoon(row.uuid);
    else void this.#send(row, row.attempt, false);
    return row;
  }

  async get(uuid: string): Promise<JobRow> {
    const row = await this.d.store.get(uuid);
    if (!row) throw StratumError.notFound("job", uuid);
    return row;
  }

  /**
   * Cancels: a job never dispatched is Canceled at once (nothing ran); a dispatched one is
   * Canceling and its executor is told (it stops at its next checkpoint, woken from any wait);
   * a Suspended one is Canceled; a finished one is answered as it is.
   */
  cancel(uuid: string, signal?: AbortSignal): Promise<JobRow> {
    return this.#serialized(uuid, "cancel", signal, async () => {
      // A report may move the job under us (any replica records them): read again and decide again.
      for (let round = 0; ; round++) {
        const row = await this.get(uuid);
        if (isFinal(row.state)) return row;
        if (row.state === "Canceling") {
          await this.#stopOnExecutor(row);
          return row;
        }
        const neverRan = (row.state === "Waiting" && row.attempt === 0) || row.state === "Suspended";
        const moved = neverRan
          ? await this.d.store.transition(uuid, [row.state], "Canceled", { attempt: row.attempt, bumpAttempt: true })
          : await this.d.store.transition(uuid, [row.state], "Canceling", { attempt: row.attempt, cancelAsked: true });
        if (moved) {
          if (!neverRan) await this.#stopOnExecutor(moved);
          return moved;
        }
        if (round >= 5) return this.#lost(uuid);
      }
    });
  }

  /**
   * Runs a Failed or Canceled job again as a new job linked to it (`rerun_of`), with the same
   * type, target and parameters; resumes a Suspended one as itself, from its progress.
   */
  async rerun(uuid: string, newUuid: string, clientRequestId: string, signal?: AbortSignal): Promise<JobRow> {
    const row = await this.get(uuid);
    if (row.state === "Suspended") {
      const resumed = await this.#serialized(uuid, "resume", signal, async () => {
        const moved = await this.d.store.transition(uuid, ["Suspended"], "Waiting", { clearError: true });
        if (!moved) return this.#lost(uuid);
        return moved;
      });
      this.dispatchSoon(uuid);
      return resumed;
    }
    if (row.state !== "Failed" && row.state !== "Canceled") {
      throw new StratumError(Code.FAILED_PRECONDITION, `job ${uuid} is ${row.state}: only a Failed or Canceled job is rerun (a Suspended one is resumed)`, {
        reason: "JOB_NOT_RERUNNABLE",
        resources: { jobUuid: uuid, state: row.state },
      });
    }
    return this.submit({ uuid: newUuid, type: row.type, targetUuid: row.targetUuid === row.uuid ? "" : row.targetUuid, parameters: row.parameters as JsonObject, clientRequestId, rerunOf: uuid });
  }

  async delete(uuid: string): Promise<void> {
    const deleted = await this.d.store.delete(uuid);
    if (deleted === undefined) throw StratumError.notFound("job", uuid);
    if (!deleted) {
      const row = await this.d.store.get(uuid);
      throw new StratumError(Code.FAILED_PRECONDITION, `job ${uuid} is ${row?.state ?? "gone"}: only a finished job is deleted (cancel it first)`, {
        reason: "JOB_NOT_FINISHED",
        resources: { jobUuid: uuid },
      });
    }
  }

  /** Queues a dispatch of the job in its queue (coalesced with one already waiting). */
  dispatchSoon(uuid: string): void {
    if (this.#stopped) return;
    this.d.queue
      .submit({ signature: `job-${uuid}`, name: "dispatch-job", dedupKey: "dispatch", run: () => this.#dispatch(uuid) })
      .catch((e) => this.d.log.warn("job dispatch failed", { jobUuid: uuid, error: errorMessage(e) }));
  }

  /**
   * Ends a job whose executor died, for a type that cannot resume: Failed or Suspended, naming the
   * replica. Its attempt goes up, so the executor — if it was only paused — is fenced.
   */
  interrupt(row: JobRow, policy: "fail" | "suspend", executor: string): void {
    this.d.queue
      .submit({
        signature: `job-${row.uuid}`,
        name: "interrupt-job",
        run: async () => {
          const replica = executor.split("@")[0] || "?";
          const error = {
            code: codeName(Code.ABORTED),
            reason: "JOB_EXECUTOR_DIED",
            message: `replica ${replica} of ${row.targetService} went away (stopped or died) while it ran job ${row.uuid} (${row.state}, ${row.percent}%${row.stage ? `, ${row.stage}` : ""}); job type ${row.type} cannot resume${policy === "suspend" ? ": rerun the job to resume it, or cancel it" : ""}`,
            resources: { jobUuid: row.uuid, replicaId: replica },
          };
          const to = policy === "suspend" && row.state !== "Canceling" ? "Suspended" : "Failed";
          const moved = await this.d.store.transition(row.uuid, [row.state], to, { attempt: row.attempt, bumpAttempt: true, error });
          if (moved) this.d.log.warn("job interrupted by its executor's death", { jobUuid: row.uuid, state: to, executor });
        },
      })
      .catch((e) => this.d.log.warn("job interrupt failed", { jobUuid: row.uuid, error: errorMessage(e) }));
  }

  /** Pushes a cancel to the executor again (the first push may have been lost), in the job's queue. */
  restop(row: JobRow): void {
    this.d.queue
      .submit({ signature: `job-${row.uuid}`, name: "restop-job", dedupKey: "restop", run: async () => {
        const now = await this.d.store.get(row.uuid);
        if (now?.state === "Canceling") await this.#stopOnExecutor(now);
      } })
      .catch((e) => this.d.log.warn("job cancel push failed", { jobUuid: row.uuid, error: errorMessage(e) }));
  }

  stop(): void {
    this.#stopped = true;
    for (const r of this.#retries.values()) clearTimeout(r.timer);
    this.#retries.clear();
  }

  /** Whether a dispatch retry of the job is scheduled here (the reconciler leaves it alone). */
  retrying(uuid: string): boolean {
    return this.#retries.has(uuid);
  }

  /**
   * One dispatch: claim the next attempt (fencing the reports of the one before), then hand the job
   * to the owner of its target in its service. An executor that cannot be reached is tried again
   * with backoff, the job staying where it is; one that refuses the type fails the job.
   */
  async #dispatch(uuid: string): Promise<void> {
    const row = await this.d.store.get(uuid);
    if (!row || isFinal(row.state) || row.state === "Suspended") return;
    const expected = this.#ownerOf(row.targetService, row.targetUuid);
    if (!expected) return this.#retryLater(uuid, new StratumError(Code.UNAVAILABLE, `no live replica of ${row.targetService}`, { reason: "NO_LIVE_REPLICA" }));
    const claimed = await this.d.store.claimDispatch(uuid, row.attempt, expected);
    if (!claimed) {
      if (!(await this.d.store.leaseHeld().catch(() => true))) throw this.d.store.leaseLost();
      return; // moved meanwhile (a report, a cancel elsewhere): nothing to dispatch from what we read
    }
    // Resumed when an earlier attempt started it (its progress is what that one reached).
    await this.#send(row, claimed.attempt, row.startedAt !== null);
  }

  /**
   * Sends attempt `attempt` of the job to the owner of its target (in-process when that is this
   * replica's own executor). An executor that cannot be reached is tried again with backoff — a
   * new dispatch, claiming the next attempt — the job staying where it is; one that refuses the
   * type fails the job. Never throws: a failure is the retry's or the job's.
   */
  async #send(row: JobRow, attempt: number, resume: boolean): Promise<void> {
    const uuid = row.uuid;
    crashPoint("longjob:job-dispatching");
    const request = {
      jobUuid: uuid,
      type: row.type,
      targetUuid: row.targetUuid,
      parameters: row.parameters as JsonObject,
      attempt,
      resume,
      progress: { percent: row.percent, stage: row.stage, bytesDone: BigInt(row.bytesDone), bytesTotal: BigInt(row.bytesTotal), message: row.message },
    };
    const local = this.d.local;
    try {
      if (local && local.service === row.targetService && this.#ownerOf(row.targetService, row.targetUuid) === local.incarnation()) local.dispatch(create(RunJobRequestSchema, request));
      else await this.d.peers(row.targetService).for(JobExecutorService).call(row.targetUuid, (c) => c.runJob(request, { timeoutMs: DISPATCH_TIMEOUT_MS }));
      this.#retries.delete(uuid);
    } catch (e) {
      const err = StratumError.from(e);
      if (err.code === Code.FAILED_PRECONDITION || err.code === Code.INVALID_ARGUMENT || err.code === Code.UNIMPLEMENTED) {
        this.#retries.delete(uuid);
        await this.d.store
          .transition(uuid, ["Waiting", "Running", "Canceling"], "Failed", {
            attempt,
            error: { code: codeName(err.code), reason: err.reason, message: `${row.targetService} refused job ${uuid}: ${err.message}`, resources: { ...err.resources, jobUuid: uuid } },
          })
          .catch((x) => this.d.log.warn("could not fail a refused job; the reconciler will retry", { jobUuid: uuid, error: errorMessage(x) }));
        return;
      }
      this.#retryLater(uuid, err);
    }
  }

  /**
   * Sends the current attempt again (the executor accepts an attempt it runs as a no-op): for a
   * Waiting job whose longjob owner died between its insert and its send.
   */
  resend(row: JobRow): void {
    this.d.queue
      .submit({ signature: `job-${row.uuid}`, name: "resend-job", dedupKey: "resend", run: async () => {
        const now = await this.d.store.get(row.uuid);
        if (now?.state === "Waiting" && now.attempt === row.attempt) await this.#send(now, now.attempt, false);
      } })
      .catch((e) => this.d.log.warn("job resend failed", { jobUuid: row.uuid, error: errorMessage(e) }));
  }

  /** The incarnation owning `targetUuid` in `service`, or undefined when it has no live replica. */
  #ownerOf(service: string, targetUuid: string): string | undefined {
    const m = this.d.view.ownerOf(service, targetUuid);
    return m ? `${m.replicaId}@${m.startedAt}` : undefined;
  }

  #retryLater(uuid: string, e: unknown): void {
    if (this.#stopped) return;
    const prior = this.#retries.get(uuid);
    const attempt = (prior?.attempt ?? -1) + 1;
    if (attempt === 0 || attempt % 10 === 0) this.d.log.warn("job dispatch could not reach its executor; retrying", { jobUuid: uuid, error: errorMessage(e) });
    const timer = setTimeout(() => this.dispatchSoon(uuid), DISPATCH_RETRY_MS[Math.min(attempt, DISPATCH_RETRY_MS.length - 1)]);
    timer.unref();
    this.#retries.set(uuid, { timer, attempt });
  }

  /** Tells the executor of a Canceling job: best effort (the reconciler pushes again; the checkpoint is the authority). */
  async #stopOnExecutor(row: JobRow): Promise<void> {
    if (row.attempt === 0) return;
    try {
      await this.d.peers(row.targetService).for(JobExecutorService).call(row.targetUuid, (c) => c.stopJob({ jobUuid: row.uuid, targetUuid: row.targetUuid }, { timeoutMs: 5_000 }));
    } catch (e) {
      this.d.log.warn("could not tell the executor of a cancelled job; its next checkpoint will see it", { jobUuid: row.uuid, error: errorMessage(e) });
    }
  }

  #serialized<T>(uuid: string, name: string, signal: AbortSignal | undefined, run: () => Promise<T>): Promise<T> {
    return this.d.queue.submit({ signature: `job-${uuid}`, name: `${name}-job`, run }, signal ? { signal } : undefined);
  }

  async #lost(uuid: string): Promise<never> {
    if (!(await this.d.store.leaseHeld().catch(() => true))) throw this.d.store.leaseLost();
    const now = await this.d.store.get(uuid);
    throw new StratumError(Code.ABORTED, `job ${uuid} changed concurrently${now ? ` (now ${now.state})` : ""}; retry`, { reason: "JOB_CONCURRENT_UPDATE", resources: { jobUuid: uuid } });
  }
}

/** Parameters compared as JSON values (key order aside). */
function sameJson(a: unknown, b: unknown): boolean {
  const canon = (v: unknown): unknown =>
    Array.isArray(v) ? v.map(canon) : v && typeof v === "object" ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, canon((v as Record<string, unknown>)[k])])) : v;
  return JSON.stringify(canon(a)) === JSON.stringify(canon(b));
}
