import { sql as drizzleSql, type SQL } from "drizzle-orm";
import { Code, StratumError } from "@stratum/core";
import type { PgColumn } from "drizzle-orm/pg-core";
import type postgres from "postgres";
import type { LeasesTable } from "./leases-table";
import { qualifiedName } from "./row-mapper";
import type { WriteGuard } from "./transition-batcher";

/** Who writes, and where its lease is: what every fenced write of a replica checks. */
export interface LeaseHolder {
  leases: LeasesTable;
  /** This replica's incarnation, the lease's `holder`. */
  holder: () => string;
}

/**
 * `holder`'s lease is unexpired now, by Postgres's clock: the condition of every write a replica
 * makes as owner. Uncorrelated, so Postgres evaluates it once per statement, however many rows.
 */
export function leaseHeld(q: postgres.Sql | postgres.TransactionSql, o: LeaseHolder): postgres.PendingQuery<postgres.Row[]> {
  const sql = q as postgres.Sql;
  return sql`EXISTS (SELECT 1 FROM ${sql.unsafe(qualifiedName(o.leases))} WHERE holder = ${o.holder()} AND expires_at > now())`;
}

/**
 * Whether `holder` holds its lease now: asked after a fenced write matched nothing, to tell a
 * lost lease (answer {@link leaseLost}) from a row that moved.
 */
export async function holdsLease(q: postgres.Sql, o: LeaseHolder): Promise<boolean> {
  const [row] = await q`SELECT ${leaseHeld(q, o)} AS ok`;
  return row?.ok === true;
}

/** Reason of the error of an owner write refused because its writer does not hold its lease. */
export const LEASE_NOT_HELD = "LEASE_NOT_HELD";

/**
 * UNAVAILABLE {@link LEASE_NOT_HELD}: the writer (paused or cut off from Postgres past its lease)
 * may not write as owner until it renews it; a caller's retry reaches a replica that holds one.
 */
export function leaseLost(holder: string): StratumError {
  return new StratumError(Code.UNAVAILABLE, `replica ${holder} does not hold its lease: it may not write as owner until it renews it`, { reason: LEASE_NOT_HELD });
}

/** {@link leaseHeld} for statements built with drizzle's `sql`. */
export function leaseHeldSql(o: LeaseHolder): SQL {
  return drizzleSql`EXISTS (SELECT 1 FROM ${o.leases} WHERE ${o.leases.holder} = ${o.holder()} AND ${o.leases.expiresAt} > now())`;
}

export interface OwnerWriteGuardOptions extends LeaseHolder {
  /** The column naming the incarnation that wrote the row last (the batcher's `stamp`). */
  actor: PgColumn;
  /** The state column, and the states a row is in only while an operation works on it. */
  state: PgColumn;
  busyStates: readonly string[];
}

/**
 * The fencing condition of a resource's owner writes (the {@link WriteGuard} of its
 * `TransitionBatcher`): the writer holds its lease, and the row is its own to move — it moved it
 * last, or no operation is working on it (a stable state), or the incarnation that left it
 * mid-operation has lost its lease (a takeover). So a replica that was paused or partitioned past
 * its lease can neither finish an operation its successor has taken over nor start one, and a
 * successor cannot touch a resource an incarnation with a lease is still working on (the
 * hand-off when a replica joins).
 */
export function ownerWriteGuard(o: OwnerWriteGuardOptions): WriteGuard {
  const leases = qualifiedName(o.leases);
  return (sql) => {
    const me = o.holder();
    return sql`${leaseHeld(sql, o)} AND (
      t.${sql.unsafe(`"${o.actor.name}"`)} = ${me}
      OR NOT (t.${sql.unsafe(`"${o.state.name}"`)}::text = ANY(${o.busyStates as string[]}::text[]))
      OR NOT EXISTS (SELECT 1 FROM ${sql.unsafe(leases)} AS l WHERE l.holder = t.${sql.unsafe(`"${o.actor.name}"`)} AND l.expires_at > now()))`;
  };
}
