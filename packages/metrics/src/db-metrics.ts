import { Gauge, type Registry } from "prom-client";

/**
 * How many of this replica's database connections are in use. postgres-js keeps its pool's
 * queues in a closure and offers no stats API, so the figure comes from an accessor the runtime
 * supplies: {@link pgBackendsInUse} (the server's own view), or any count it keeps itself.
 * A rejected or thrown accessor makes the gauge NaN for that scrape, not a failed scrape.
 */
export type DbInUse = () => number | Promise<number>;

/** Registers the DB pool gauges on `registry`. `max` (the pool size) is exported when given. */
export function dbPoolMetrics(registry: Registry, inUse: DbInUse, max?: number): void {
  if (typeof inUse !== "function") throw new TypeError("dbInUse must be a function returning the connections in use");
  if (max !== undefined && !(Number.isInteger(max) && max > 0)) throw new TypeError(`dbPoolMax must be a positive integer, got ${String(max)}`);
  const registers = [registry];
  new Gauge({
    name: "stratum_db_pool_in_use",
    help: "Database connections of this replica serving a query or held by a transaction, at scrape time (NaN if the probe failed).",
    registers,
    async collect() {
      try {
        const n = await inUse();
        this.set(typeof n === "number" ? n : Number.NaN);
      } catch {
        this.set(Number.NaN);
      }
    },
  });
  if (max !== undefined) {
    new Gauge({ name: "stratum_db_pool_max", help: "Size of this replica's database pool.", registers }).set(max);
  }
}

/** The part of a postgres-js `Sql` that {@link pgBackendsInUse} needs. */
export interface SqlQuery {
  unsafe(query: string, parameters?: unknown[]): PromiseLike<ReadonlyArray<Record<string, unknown>>>;
}

const IN_USE_QUERY =
  "select count(*)::int as n from pg_stat_activity where application_name = $1 and state is distinct from 'idle' and pid <> pg_backend_pid()";

/**
 * A {@link DbInUse} that asks Postgres: the backends with this `application_name` that are not
 * idle (running a query, or idle inside a transaction), less the probe's own. Honest (it is the
 * server's view, so it also sees a connection a leaked transaction holds) and cheap (one
 * indexless scan of a table of a few hundred rows, once per scrape). It counts every process
 * that uses the name, so the replica's pool must have one of its own
 * (`connect({ applicationName: "stratum-<service>-<replicaId>" })`). The probe needs a free
 * connection of the pool: when the pool is saturated it waits, and after `timeoutMs` the gauge
 * reads NaN for that scrape, which itself says the pool is exhausted.
 */
export function pgBackendsInUse(sql: SqlQuery, applicationName: string, timeoutMs = 2_000): () => Promise<number> {
  if (typeof applicationName !== "string" || applicationName === "") throw new TypeError("applicationName must be a non-empty string");
  if (!(timeoutMs > 0)) throw new TypeError(`timeoutMs must be > 0, got ${String(timeoutMs)}`);
  return async () => {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`pg_stat_activity probe did not answer within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      const rows = await Promise.race([sql.unsafe(IN_USE_QUERY, [applicationName]), timeout]);
      return Number(rows[0]?.["n"] ?? Number.NaN);
    } finally {
      clearTimeout(timer);
    }
  };
}
