import { sql } from "drizzle-orm";
import { bigserial, jsonb, text, timestamp, type PgSchema } from "drizzle-orm/pg-core";

/**
 * The transactional outbox, one per service schema: a state change and its domain event are
 * written in the same statement or transaction, so neither exists without the other — a crash or
 * a NATS outage loses no event. The kit's relay publishes the rows to JetStream in id order (each
 * with `Nats-Msg-Id` = its id, so a re-publish after a crash is stored once) and deletes them once
 * JetStream has acknowledged them. A service puts `export const outbox = outboxTable(<schema>)`
 * in its drizzle schema.
 */
export function outboxTable(schema: PgSchema) {
  return schema.table("outbox", {
    id: bigserial({ mode: "number" }).primaryKey(),
    /** `stratum.<domain>.<event>`'s parts, e.g. `compute` and `vm_state_changed`. */
    domain: text().notNull(),
    event: text().notNull(),
    /**
     * Optional last subject token, `stratum.<domain>.<event>.<key>` (e.g. the job's UUID), so a
     * watcher of one resource subscribes to its events alone and the server does the filtering.
     */
    key: text(),
    payload: jsonb().notNull(),
    /** The request that caused the change, carried into the event's `X-Request-Id`. */
    requestId: text("request_id"),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().default(sql`now()`),
  });
}

export type OutboxTable = ReturnType<typeof outboxTable>;
