import { and, asc, eq, gt, inArray, lt, sql as dsql, type SQL } from "drizzle-orm";
import { holdsLease, KeyedBatcher, leaseHeld, type LeaseHolder, leaseLost, mapPgError, rowMapper, TurnBatcher } from "@stratum/db";
import type { JobReport } from "@stratum/jobs";
import type postgres from "postgres";
import { ACTIVE_STATES, assertTransition, FINAL_STATES } from "../domain/job-state";
import type { LongjobDb } from "./db";
import { jobChangedOutbox } from "./job-events";
import { jobs, leases, type JobRow, type JobStateValue } from "./schema";

export interface NewJob {
  uuid: string;
  type: string;
  targetService: string;
  targetUuid: string;
  parameters: Record<string, unknown>;
  clientRequestId: string | null;
  rerunOf: string | null;
  /** 1 with `executor` when the job is dispatched right after its insert (its executor known), else 0. */
  attempt: number;
  executor: string;
}

export interface JobFilter {
  state?: JobStateValue;
  type?: string;
  targetUuid?: string;
  afterSeq: number;
  limit: number;
}

const toRow = rowMapper(jobs);
/** Jobs per batched statement: keeps one statement's arrays and its lock set small. */
const MAX_BATCH = 512;

interface PendingReport {
  report: JobReport;
  resolve(row: JobRow | undefined): void;
  reject(e: unknown): void;
}
const ACTIVE = ACTIVE_STATES as string[];

/**
 * Queries on `longjob.jobs`. Every change of a job is a conditional update (from the states the
 * change may leave, for the attempt it is about) whose result the caller checks, and writes the
 * job's `job_changed` event in the same statement. The hot writes — submits, dispatches and the
 * executors' reports — are batched, one statement per event-loop turn. The owner's writes
 * (dispatch, cancel, interrupt) need this replica's lease: a replica paused past it cannot
 * dispatch a job its successor dispatches too.
 */
export class JobStore {
  readonly #sql: postgres.Sql;
  readonly #lease: LeaseHolder;
  readonly #inserts: KeyedBatcher<NewJob, JobRow>;
  readonly #dispatches: KeyedBatcher<{ uuid: string; attempt: number; executor: string }, JobRow>;
  readonly #reports: TurnBatcher<PendingReport>;
  readonly #reads: KeyedBatcher<string, JobRow>;

  constructor(
    private readonly handle: LongjobDb,
    private readonly self: () => string,
    private readonly eventsWritten: () => void = () => {},
    /** Sends the committed rows to their watchers (`notifyWatchers`), right after each commit. */
    private readonly changed: (rows: readonly postgres.Row[]) => void = () => {},
  ) {
    this.#sql = handle.sql;
    this.#lease = { leases, holder: self };
    this.#inserts = new KeyedBatcher((j) => j.uuid, (batch) => this.#insertMany(batch));
    this.#dispatches = new KeyedBatcher((d) => d.uuid, (batch) => this.#dispatchMany(batch));
    this.#reports = new TurnBatcher<PendingReport>((pending) => this.#recordTurn(pending), (p, e) => p.reject(e));
    // Reads too: every submit's dispatch and every watch starts with one.
    this.#reads = new KeyedBatcher((uuid) => uuid, async (uuids) => new Map((await this.getMany(uuids)).map((r) => [r.uuid, r])));
  }

  /** Records a new job, Waiting; undefined when its UUID or request id exists already. */
  insert(job: NewJob): Promise<JobRow | undefined> {
    return this.#inserts.submit(job);
  }

  /**
   * Claims the next dispatch of a job this replica owns: its attempt goes up by one (fencing the
   * reports of the one before) if it is still at `attempt` and active. The new row, or undefined.
   */
  claimDispatch(uuid: string, attempt: number, executor: string): Promise<JobRow | undefined> {
    return this.#dispatches.submit({ uuid, attempt, executor });
  }

  /** Records one executor report; the job's new row, or undefined when it was stale (another attempt, or seen). */
  record(report: JobReport): Promise<JobRow | undefined> {
    return new Promise((resolve, reject) => this.#reports.submit({ report, resolve, reject }));
  }

  /**
   * The reports of one turn in one statement, those of one job merged into one: a job that started
   * and finished within a turn (a short one) costs one update, one event and one commit, not two.
   * Reports of an older attempt than the newest one in the turn are dropped (its fence would drop
   * them anyway). The merged report is the newest one, with the earliest `at` (its start).
   */
  async #recordTurn(pending: PendingReport[]): Promise<PendingReport[]> {
    const byJob = new Map<string, PendingReport[]>();
    const later: PendingReport[] = [];
    for (const p of pending) {
      const group = byJob.get(p.report.job);
      if (group) group.push(p);
      else if (byJob.size < MAX_BATCH) byJob.set(p.report.job, [p]);
      else later.push(p);
    }
    const merged: JobReport[] = [];
    for (const group of byJob.values()) {
      const top = Math.max(...group.map((p) => p.report.attempt));
      const current = group.map((p) => p.report).filter((r) => r.attempt === top).sort((a, b) => a.seq - b.seq);
      const last = current[current.length - 1]!;
      merged.push({ ...last, progress: last.progress ?? [...current].reverse().find((r) => r.progress)?.progress, at: current[0]!.at } as JobReport);
    }
    try {
      const rows = await this.#recordMany(merged);
      for (const [job, group] of byJob) for (const p of group) p.resolve(rows.get(job));
    } catch (e) {
      for (const group of byJob.values()) for (const p of group) p.reject(e);
    }
    return later;
  }

  /** The job as committed now (reads of one turn share a statement). */
  get(uuid: string): Promise<JobRow | undefined> {
    return this.#reads.submit(uuid);
  }

  async getMany(uuids: string[]): Promise<JobRow[]> {
    if (uuids.length === 0) return [];
    try {
      return await this.handle.db.select().from(jobs).where(inArray(jobs.uuid, uuids));
    } catch (e) {
      throw mapPgError(e, { operation: "get jobs" });
    }
  }

  async list(f: JobFilter): Promise<JobRow[]> {
    const where: SQL[] = [gt(jobs.seq, f.afterSeq)];
    if (f.state) where.push(eq(jobs.state, f.state));
    if (f.type) where.push(eq(jobs.type, f.type));
    if (f.targetUuid) where.push(eq(jobs.targetUuid, f.targetUuid));
    try {
      return await this.handle.db.select().from(jobs).where(and(...where)).orderBy(asc(jobs.seq)).limit(f.limit);
    } catch (e) {
      throw mapPgError(e, { operation: "list jobs" });
    }
  }

  /** The jobs with work in flight (Waiting, Running, Canceling): what a takeover looks at. */
  async active(): Promise<JobRow[]> {
    try {
      return await this.handle.db.select().from(jobs).where(inArray(jobs.state, ACTIVE_STATES as JobStateValue[]));
    } catch (e) {
      throw mapPgError(e, { operation: "list active jobs" });
    }
  }

  /**
   * Moves a job this replica owns from one of `from` to `to`, with the changes given, if it is
   * still at `attempt` (when given): the new row, or undefined. `bumpAttempt` fences the attempt
   * that ran it (an executor thought dead whose job is failed or suspended).
   */
  async transition(
    uuid: string,
    from: readonly JobStateValue[],
    to: JobStateValue,
    o: { attempt?: number; bumpAttempt?: boolean; error?: JobRow["error"]; cancelAsked?: boolean; clearError?: boolean } = {},
  ): Promise<JobRow | undefined> {
    assertTransition(from, to);
    const sql = this.#sql;
    const final = (FINAL_STATES as string[]).includes(to);
    try {
      const rows = await sql`
        WITH m AS (
          UPDATE "longjob"."jobs" AS t SET
            state = ${to}::"longjob"."job_state",
            revision = t.revision + 1,
            updated_at = now(),
            owner = ${this.self()}
            ${final ? sql`, finished_at = now()` : sql``}
            ${o.bumpAttempt ? sql`, attempt = t.attempt + 1, report_seq = 0` : sql``}
            ${o.error ? sql`, error = ${JSON.stringify(o.error)}::jsonb` : o.clearError ? sql`, error = NULL` : sql``}
            ${o.cancelAsked ? sql`, cancel_asked_at = now()` : sql``}
          WHERE t.uuid = ${uuid} AND t.state::text = ANY(${from as string[]}::text[])
            ${o.attempt !== undefined ? sql`AND t.attempt = ${o.attempt}` : sql``}
            AND ${leaseHeld(sql, this.#lease)}
          RETURNING t.*),
        o AS (${sql.unsafe(jobChangedOutbox("m"))})
        SELECT * FROM m`;
      this.#committed(rows);
      return rows[0] ? toRow(rows[0] as Record<string, unknown>) : undefined;
    } catch (e) {
      throw mapPgError(e, { operation: `move job to ${to}` });
    }
  }

  /** Marks when a cancel was pushed to the executor again (the reconciler's retry clock). */
  async touchCancel(uuid: string): Promise<void> {
    await this.#sql`UPDATE "longjob"."jobs" SET cancel_asked_at = now() WHERE uuid = ${uuid} AND state = 'Canceling'`.catch((e) => {
      throw mapPgError(e, { operation: "touch cancel" });
    });
  }

  /** Forgets a finished job: true if it was deleted, false if it was not finished, undefined if missing. */
  async delete(uuid: string): Promise<boolean | undefined> {
    try {
      const gone = await this.handle.db.delete(jobs).where(and(eq(jobs.uuid, uuid), inArray(jobs.state, FINAL_STATES as JobStateValue[]))).returning({ uuid: jobs.uuid });
      if (gone.length > 0) return true;
      return (await this.get(uuid)) ? false : undefined;
    } catch (e) {
      throw mapPgError(e, { operation: "delete job" });
    }
  }

  /** Deletes the finished jobs older than `retentionMs`; how many. */
  async sweep(retentionMs: number): Promise<number> {
    try {
      const gone = await this.handle.db
        .delete(jobs)
        .where(and(inArray(jobs.state, FINAL_STATES as JobStateValue[]), lt(jobs.finishedAt, dsql`now() - ${`${retentionMs} milliseconds`}::interval`)))
        .returning({ uuid: jobs.uuid });
      return gone.length;
    } catch (e) {
      throw mapPgError(e, { operation: "sweep jobs" });
    }
  }

  /** Whether this replica holds its lease now (why a fenced write matched nothing). */
  async leaseHeld(): Promise<boolean> {
    return holdsLease(this.#sql, this.#lease);
  }

  leaseLost(): Error {
    return leaseLost(this.self());
  }

  /** After a write commits: its events to the relay, its rows to their watchers. */
  #committed(rows: readonly postgres.Row[]): void {
    if (rows.length === 0) return;
    this.eventsWritten();
    this.changed(rows);
  }

  async #insertMany(batch: NewJob[]): Promise<Map<string, JobRow>> {
    const sql = this.#sql;
    try {
      const rows = await sql`
        WITH m AS (
          INSERT INTO "longjob"."jobs" (uuid, type, target_service, target_uuid, parameters, client_request_id, rerun_of, attempt, executor, owner)
          SELECT x.uuid, x.type, x.target_service, x.target_uuid, x.parameters::jsonb, x.client_request_id, x.rerun_of, x.attempt, x.executor, ${this.self()}
          FROM unnest(${batch.map((j) => j.uuid)}::uuid[], ${batch.map((j) => j.type)}::text[], ${batch.map((j) => j.targetService)}::text[], ${batch.map((j) => j.targetUuid)}::uuid[],
                      ${batch.map((j) => JSON.stringify(j.parameters))}::text[], ${batch.map((j) => j.clientRequestId)}::text[], ${batch.map((j) => j.rerunOf)}::uuid[],
                      ${batch.map((j) => j.attempt)}::int[], ${batch.map((j) => j.executor)}::text[])
            AS x(uuid, type, target_service, target_uuid, parameters, client_request_id, rerun_of, attempt, executor)
          ON CONFLICT DO NOTHING
          RETURNING *),
        o AS (${sql.unsafe(jobChangedOutbox("m"))})
        SELECT * FROM m`;
      this.#committed(rows);
      return byUuid(rows);
    } catch (e) {
      throw mapPgError(e, { operation: "insert jobs" });
    }
  }

  async #dispatchMany(batch: Array<{ uuid: string; attempt: number; executor: string }>): Promise<Map<string, JobRow>> {
    const sql = this.#sql;
    try {
      const rows = await sql`
        UPDATE "longjob"."jobs" AS t SET attempt = t.attempt + 1, report_seq = 0, owner = ${this.self()}, executor = x.executor
        FROM unnest(${batch.map((d) => d.uuid)}::uuid[], ${batch.map((d) => d.attempt)}::int[], ${batch.map((d) => d.executor)}::text[]) AS x(uuid, attempt, executor)
        WHERE t.uuid = x.uuid AND t.attempt = x.attempt AND t.state::text = ANY(${ACTIVE}::text[]) AND ${leaseHeld(sql, this.#lease)}
        RETURNING t.*`;
      return byUuid(rows);
    } catch (e) {
      throw mapPgError(e, { operation: "dispatch jobs" });
    }
  }

  /**
   * Applies reports: each only to the attempt it belongs to, after the last one recorded
   * (`report_seq`), to a job still active. A first report moves a Waiting job to Running; a
   * finished one sets its final state — also from Canceling, when the work won the race.
   * Progress never goes backwards: the executor reports it so, and the seq guard keeps a late
   * report from undoing a newer one.
   */
  async #recordMany(batch: JobReport[]): Promise<Map<string, JobRow>> {
    const sql = this.#sql;
    const p = (r: JobReport) => r.progress;
    // As text arrays: postgres-js infers an array's type from its first element, which may be null.
    const t = (values: ReadonlyArray<string | number | null>) => sql.array(values.map((v) => (v === null ? null : String(v))) as string[], 25);
    try {
      const rows = await sql`
        WITH m AS (
          UPDATE "longjob"."jobs" AS t SET
            state = CASE WHEN x.final IS NOT NULL THEN x.final::"longjob"."job_state" WHEN t.state = 'Waiting' THEN 'Running'::"longjob"."job_state" ELSE t.state END,
            percent = GREATEST(t.percent, COALESCE(x.percent, t.percent)),
            stage = COALESCE(x.stage, t.stage),
            bytes_done = GREATEST(t.bytes_done, COALESCE(x.bytes_done, t.bytes_done)),
            bytes_total = COALESCE(x.bytes_total, t.bytes_total),
            message = COALESCE(x.message, t.message),
            result = COALESCE(x.result::jsonb, t.result),
            error = COALESCE(x.error::jsonb, t.error),
            executor = x.executor,
            report_seq = x.seq,
            revision = t.revision + 1,
            started_at = COALESCE(t.started_at, x.at),
            updated_at = now(),
            finished_at = CASE WHEN x.final IS NOT NULL THEN now() ELSE t.finished_at END
          FROM unnest(
            ${t(batch.map((r) => r.job))}::uuid[], ${t(batch.map((r) => r.attempt))}::int[], ${t(batch.map((r) => r.seq))}::int[], ${t(batch.map((r) => r.executor))}::text[],
            ${t(batch.map((r) => r.outcome?.state ?? null))}::text[], ${t(batch.map((r) => p(r)?.percent ?? null))}::int[], ${t(batch.map((r) => p(r)?.stage ?? null))}::text[],
            ${t(batch.map((r) => p(r)?.bytesDone ?? null))}::bigint[], ${t(batch.map((r) => p(r)?.bytesTotal ?? null))}::bigint[], ${t(batch.map((r) => p(r)?.message ?? null))}::text[],
            ${t(batch.map((r) => (r.outcome?.result ? JSON.stringify(r.outcome.result) : null)))}::text[], ${t(batch.map((r) => (r.outcome?.error ? JSON.stringify(r.outcome.error) : null)))}::text[],
            ${t(batch.map((r) => r.at))}::timestamptz[])
            AS x(uuid, attempt, seq, executor, final, percent, stage, bytes_done, bytes_total, message, result, error, at)
          WHERE t.uuid = x.uuid AND t.attempt = x.attempt AND t.report_seq < x.seq AND t.state::text = ANY(${ACTIVE}::text[])
          RETURNING t.*),
        o AS (${sql.unsafe(jobChangedOutbox("m"))})
        SELECT * FROM m`;
      this.#committed(rows);
      return byUuid(rows);
    } catch (e) {
      throw mapPgError(e, { operation: "record job reports" });
    }
  }
}

function byUuid(rows: readonly postgres.Row[]): Map<string, JobRow> {
  const out = new Map<string, JobRow>();
  for (const raw of rows) {
    const row = toRow(raw as Record<string, unknown>);
    out.set(row.uuid, row);
  }
  return out;
}
