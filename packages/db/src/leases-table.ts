import { sql } from "drizzle-orm";
import { index, text, timestamp, type PgSchema } from "drizzle-orm/pg-core";

/**
 * The fencing authority of a service, one per service schema: a row per replica incarnation
 * (`<replicaId>@<startedAt>`) holding a lease that the replica renews every heartbeat. A replica
 * writes as owner only while its lease is unexpired, judged by Postgres's own clock in the same
 * statement as the write (see `ownerWriteGuard`), and another replica may take over a resource
 * that incarnation left mid-operation only once the lease has expired. A service puts
 * `export const leases = leasesTable(<its schema>)` in its drizzle schema; the kit renews it.
 */
export function leasesTable(schema: PgSchema) {
  return schema.table(
    "leases",
    {
      holder: text().primaryKey(),
      replicaId: text("replica_id").notNull(),
      expiresAt: timestamp("expires_at", { withTimezone: true }).notNull(),
      acquiredAt: timestamp("acquired_at", { withTimezone: true }).notNull().default(sql`now()`),
    },
    (t) => [index("leases_expires_at_idx").on(t.expiresAt)],
  );
}

export type LeasesTable = ReturnType<typeof leasesTable>;
