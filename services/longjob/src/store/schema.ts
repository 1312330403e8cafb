import { sql } from "drizzle-orm";
import { bigint, bigserial, index, integer, jsonb, pgSchema, text, timestamp, uniqueIndex, uuid } from "drizzle-orm/pg-core";
import { leasesTable, outboxTable, requestsTable } from "@stratum/db";

/** The longjob service's own schema: no other service reads these tables. */
export const longjob = pgSchema("longjob");

export const jobState = longjob.enum("job_state", ["Waiting", "Running", "Canceling", "Canceled", "Succeeded", "Failed", "Suspended"]);

/**
 * Long jobs. The job's owner in longjob (the replica owning its UUID on longjob's ring) dispatches
 * it; its executor (the replica owning its target in the implementing service) runs it and
 * reports over JetStream; any longjob replica records the reports, fenced by `attempt`.
 */
export const jobs = longjob.table(
  "jobs",
  {
    uuid: uuid().primaryKey(),
    type: text().notNull(),
    targetService: text("target_service").notNull(),
    targetUuid: uuid("target_uuid").notNull(),
    parameters: jsonb().$type<Record<string, unknown>>().notNull().default({}),
    state: jobState().notNull().default("Waiting"),
    percent: integer().notNull().default(0),
    stage: text().notNull().default(""),
    bytesDone: bigint("bytes_done", { mode: "number" }).notNull().default(0),
    bytesTotal: bigint("bytes_total", { mode: "number" }).notNull().default(0),
    message: text().notNull().default(""),
    result: jsonb().$type<Record<string, unknown>>(),
    /** `{code, reason, message, resources}` of a Failed (or Suspended) job. */
    error: jsonb().$type<{ code: string; reason: string; message: string; resources: Record<string, string> }>(),
    /**
     * Dispatches so far, and the fencing token of the reports: every dispatch increments it, and a
     * report of another attempt than the current one is ignored, so an executor that was thought
     * dead (paused) and a newer one resuming its job can never both be recorded.
     */
    attempt: integer().notNull().default(0),
    /** The sequence of the last report recorded for the current attempt: reports apply in order, once. */
    reportSeq: integer("report_seq").notNull().default(0),
    /** The longjob incarnation that dispatched it last (`<replicaId>@<startedAt>`). */
    owner: text().notNull().default(""),
    /** The executor incarnation running the current attempt ("" before dispatch). */
    executor: text().notNull().default(""),
    clientRequestId: text("client_request_id"),
    rerunOf: uuid("rerun_of"),
    /** Increments with every change: a watcher orders what it sees by it. */
    revision: bigint({ mode: "number" }).notNull().default(1),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    startedAt: timestamp("started_at", { withTimezone: true }),
    updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
    finishedAt: timestamp("finished_at", { withTimezone: true }),
    /** When the job became Canceling: a cancel not yet acted on is pushed to its executor again. */
    cancelAskedAt: timestamp("cancel_asked_at", { withTimezone: true }),
    seq: bigserial({ mode: "number" }).notNull(),
  },
  (t) => [
    uniqueIndex("jobs_seq_uq").on(t.seq),
    uniqueIndex("jobs_client_request_id_uq").on(t.clientRequestId),
    index("jobs_state_idx").on(t.state),
    index("jobs_target_idx").on(t.targetUuid),
    index("jobs_type_idx").on(t.type),
    index("jobs_finished_idx").on(t.finishedAt),
  ],
);

/** Job types, as the services that implement them registered them. */
export const jobTypes = longjob.table("job_types", {
  name: text().primaryKey(),
  service: text().notNull(),
  /** The registration as `JobType` protobuf JSON: stages, parameters, interrupt policy. */
  spec: jsonb().$type<Record<string, unknown>>().notNull(),
  registeredAt: timestamp("registered_at", { withTimezone: true }).notNull().defaultNow(),
});

export const requests = requestsTable(longjob);
export const outbox = outboxTable(longjob);
export const leases = leasesTable(longjob);

export type JobRow = typeof jobs.$inferSelect;
export type JobStateValue = (typeof jobState.enumValues)[number];
export const tables = { jobs, jobTypes, requests, outbox, leases };
