import { sql } from "drizzle-orm";
import { index, text, timestamp, type PgSchema } from "drizzle-orm/pg-core";

/**
 * The table behind request-id idempotency (AIP-155), one per service schema: a service puts
 * `export const requests = requestsTable(<its schema>)` in its drizzle schema (so its
 * migrations create it) and the kit's serving chain does the rest. A row is the first call made
 * with a request id: its method, a hash of its request, and — once it succeeded — its response,
 * which a retry gets back instead of running the operation again.
 */
export function requestsTable(schema: PgSchema) {
  return schema.table(
    "requests",
    {
      requestId: text("request_id").primaryKey(),
      /** `package.Service/Method`: a request id names one call, whatever the method. */
      method: text().notNull(),
      requestHash: text("request_hash").notNull(),
      /** `running` until the operation succeeded, then `done` with its response. */
      state: text().notNull().default("running"),
      /** The response message, protobuf binary, base64. */
      response: text(),
      /**
       * The replica incarnation running (or that ran) the operation: only it records the outcome,
       * and a retry may take the request over once that incarnation is dead (see the kit's
       * idempotency).
       */
      holder: text().notNull().default(""),
      createdAt: timestamp("created_at", { withTimezone: true }).notNull().default(sql`now()`),
    },
    (t) => [index("requests_created_at_idx").on(t.createdAt)],
  );
}

export type RequestsTable = ReturnType<typeof requestsTable>;
