import type { Logger } from "@stratum/core";
import { errorMessage } from "@stratum/core";
import { qualifiedName, type LeasesTable } from "@stratum/db";
import type postgres from "postgres";

/**
 * A replica's lease is this many heartbeats long: longer than the membership TTL (3 heartbeats),
 * so a replica that stopped heartbeating is off the ring — its resources routed to their new
 * owners — before its lease lets anyone take over what it left mid-operation, and one slow
 * renewal (a busy Postgres) is not a loss.
 */
export const LEASE_TTL_HEARTBEATS = 5;

/** Leases that expired this long ago are deleted: nothing refers to them any more. */
const FORGET_AFTER_MS = 3_600_000;

export interface LeaseKeeperOptions {
  sql: postgres.Sql;
  leases: LeasesTable;
  /** This incarnation, `<replicaId>@<startedAt>`. */
  holder: string;
  replicaId: string;
  /** How often it renews (the membership heartbeat). */
  renewMs: number;
  ttlMs: number;
  log: Logger;
}

/**
 * Keeps a replica's lease in its service's `leases` table, the fencing authority (see
 * `ownerWriteGuard`): acquired before the replica joins the ring, renewed every heartbeat,
 * deleted when it stops after its last write.
 *
 * A renewal after the lease lapsed (the replica was paused, or Postgres was away longer than the
 * TTL) takes the lease again under the same incarnation rather than ending the process: every
 * resource another replica took over meanwhile was claimed by it (its `last_actor` and fence
 * moved on), so this replica's writes and agent commands on those are refused, while the
 * operations nobody took over finish normally. It is logged, since it means takeovers may have
 * happened.
 */
export class LeaseKeeper {
  #timer: NodeJS.Timeout | undefined;
  #renewing: Promise<void> | undefined;
  #released = false;
  #lastForget = 0;
  readonly #table: string;

  constructor(private readonly o: LeaseKeeperOptions) {
    this.#table = qualifiedName(o.leases);
  }

  /** Takes the lease; throws if Postgres cannot be reached (the replica does not start then). */
  async acquire(): Promise<void> {
    await this.#renew();
    this.#timer = setInterval(() => {
      this.#renewing ??= this.#renew()
        .catch((e) => this.o.log.warn("lease renewal failed", { holder: this.o.holder, error: errorMessage(e) }))
        .finally(() => (this.#renewing = undefined));
    }, this.o.renewMs);
    this.#timer.unref();
  }

  async #renew(): Promise<void> {
    if (this.#released) return;
    const { sql, holder, replicaId, ttlMs } = this.o;
    const table = sql.unsafe(this.#table);
    const [row] = await sql`
      WITH before AS (SELECT expires_at FROM ${table} WHERE holder = ${holder})
      INSERT INTO ${table} (holder, replica_id, expires_at) VALUES (${holder}, ${replicaId}, now() + ${ttlMs} * interval '1 millisecond')
      ON CONFLICT (holder) DO UPDATE SET expires_at = EXCLUDED.expires_at
      RETURNING (SELECT expires_at <= now() FROM before) AS lapsed`;
    if (row?.lapsed === true) this.o.log.warn("lease had lapsed and was taken again: resources may have been taken over meanwhile", { holder });
    if (Date.now() - this.#lastForget > FORGET_AFTER_MS / 10) {
      this.#lastForget = Date.now();
      await sql`DELETE FROM ${table} WHERE expires_at < now() - ${FORGET_AFTER_MS} * interval '1 millisecond'`;
    }
  }

  /** Stops renewing and gives the lease up: others may take over at once. After the last write. */
  async release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    if (this.#timer) clearInterval(this.#timer);
    await this.#renewing;
    await this.o.sql`DELETE FROM ${this.o.sql.unsafe(this.#table)} WHERE holder = ${this.o.holder}`;
  }
}
