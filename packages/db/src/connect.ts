import { drizzle, type PostgresJsDatabase } from "drizzle-orm/postgres-js";
import postgres from "postgres";
import { Code, StratumError } from "@stratum/core";
import { describeError, jsonLineLogger, type DbLogger } from "./logger";
import { isConnectionError, mapPgError, pgErrorCode, POSTGRES_UNAVAILABLE } from "./pg-errors";
import { reconnectBackoff } from "./reconnect-backoff";
import { describeHostPort, describeTarget } from "./target";

export interface ConnectOptions<TTables extends Record<string, unknown> = Record<string, never>> {
  /** `postgres://user:pass@host:port/database` */
  url: string;
  /**
   * The service's own Postgres schema (`compute`, `network`, …): created if missing and put first
   * on the connection's `search_path`; its tables and its migrations table live there.
   */
  schema: string;
  /** The drizzle table/relation definitions, for `db.query.*` relational queries. */
  tables?: TTables;
  /** Pool size. Default 10. */
  max?: number;
  /** Shown in `pg_stat_activity`, e.g. `compute/compute-0`. Default `stratum-<schema>`. */
  applicationName?: string;
  /**
   * How long to keep retrying an unreachable Postgres at start before failing with
   * `POSTGRES_UNAVAILABLE`. Default 30 s: rides out Postgres starting next to the service.
   */
  connectTimeoutMs?: number;
  /** Where retry and migration lines go. Default: JSON lines on stderr. */
  logger?: DbLogger;
}

/** An open pool on the service's schema. */
export interface DbHandle<TTables extends Record<string, unknown> = Record<string, never>> {
  /** The drizzle instance over the pool. */
  readonly db: PostgresJsDatabase<TTables>;
  /** The postgres-js pool itself, for the odd raw query (advisory locks, LISTEN). */
  readonly sql: postgres.Sql;
  /** The service's schema. */
  readonly schema: string;
  /** `host:port/database`, for logs (no credentials). */
  readonly target: string;
  /** Closes the pool, letting running queries finish for up to 5 s. */
  close(): Promise<void>;
}

/** Default of {@link ConnectOptions.connectTimeoutMs}. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 30_000;

/** A schema name we can splice into `search_path` and DDL without quoting games. */
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/** What migrate() needs to open its own single connection like the handle's. */
export interface HandleInternals {
  readonly url: string;
  readonly schema: string;
  readonly applicationName: string;
  readonly logger: DbLogger;
}
const internals = new WeakMap<object, HandleInternals>();

/** @internal For migrate(): how `handle` was opened. */
export function handleInternals(handle: object): HandleInternals {
  const found = internals.get(handle);
  if (!found) throw new TypeError("not a handle returned by connect()");
  return found;
}

export function assertSchemaName(schema: string): void {
  if (!SCHEMA_NAME.test(schema)) {
    throw new TypeError(`schema must match ${SCHEMA_NAME} (a lowercase SQL identifier), got ${JSON.stringify(schema)}`);
  }
}

/** postgres-js options shared by the pool and migrate()'s connection. */
export function clientOptions(schema: string, applicationName: string, max: number, connectTimeoutMs: number): postgres.Options<Record<string, postgres.PostgresType>> {
  return {
    max,
    // Startup parameters, so every pooled connection (also after a reconnect) has them.
    connection: { application_name: applicationName, search_path: `${schema},public` },
    connect_timeout: Math.max(1, Math.min(10, Math.ceil(connectTimeoutMs / 1000))),
    // The driver's own backoff grows to 20 s between reconnects; ours caps at 1 s, so a pool is
    // usable again within about a second of Postgres returning (see reconnectBackoff).
    backoff: reconnectBackoff,
    // NOTICEs ("schema already exists, skipping") are not worth a console line each.
    onnotice: () => {},
  };
}

/**
 * Opens a pool on the service's schema. If Postgres cannot be reached it retries with backoff
 * (100 ms doubling to 2 s) for `connectTimeoutMs`, logging every failed attempt, then throws
 * UNAVAILABLE `POSTGRES_UNAVAILABLE` naming host:port and the cause — so a service whose
 * database is down says so instead of crash-looping silently. Errors that retrying cannot fix
 * (bad password, missing database) are thrown at once, with the same reason.
 */
export async function connect<TTables extends Record<string, unknown> = Record<string, never>>(
  options: ConnectOptions<TTables>,
): Promise<DbHandle<TTables>> {
  assertSchemaName(options.schema);
  const { url, schema } = options;
  const logger = options.logger ?? jsonLineLogger;
  const applicationName = options.applicationName ?? `stratum-${schema}`;
  const budgetMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const sql = postgres(url, clientOptions(schema, applicationName, options.max ?? 10, budgetMs));
  try {
    await waitForPostgres(sql, url, budgetMs, logger);
    await ensureSchema(sql, schema, url, logger);
  } catch (e) {
    await sql.end({ timeout: 0 }).catch(() => {});
    throw e;
  }
  const db = options.tables ? drizzle(sql, { schema: options.tables }) : (drizzle(sql) as unknown as PostgresJsDatabase<TTables>);
  const handle: DbHandle<TTables> = {
    db,
    sql,
    schema,
    target: describeTarget(url),
    close: () => sql.end({ timeout: 5 }),
  };
  internals.set(handle, { url, schema, applicationName, logger });
  return handle;
}

/** SQLSTATEs retrying cannot fix: bad credentials, no such database, no permission to connect. */
const FATAL_AT_CONNECT = new Set(["28P01", "28000", "3D000", "42501"]);

/** Probes with `select 1` until it answers; see {@link connect}. */
export async function waitForPostgres(sql: postgres.Sql, url: string, budgetMs: number, logger: DbLogger): Promise<void> {
  const started = Date.now();
  const deadline = started + budgetMs;
  const where = describeHostPort(url);
  for (let attempt = 1, delay = 100; ; attempt++, delay = Math.min(delay * 2, 2_000)) {
    try {
      await sql`select 1`;
      if (attempt > 1) logger.info("postgres reachable", { target: describeTarget(url), attempt });
      return;
    } catch (e) {
      const sqlstate = pgErrorCode(e);
      if (sqlstate && FATAL_AT_CONNECT.has(sqlstate)) {
        logger.error("postgres rejected the connection", { target: describeTarget(url), sqlstate, error: describeError(e) });
        throw new StratumError(Code.UNAVAILABLE, `Postgres at ${where} rejected the connection: ${describeError(e)}`, {
          reason: POSTGRES_UNAVAILABLE,
          cause: e,
        });
      }
      const remaining = deadline - Date.now();
      const giveUp = remaining <= delay || !isConnectionError(e);
      logger.warn("postgres unavailable", {
        target: describeTarget(url),
        attempt,
        error: describeError(e),
        ...(giveUp ? { givingUp: true } : { retryInMs: delay, remainingMs: remaining }),
      });
      if (giveUp) {
        const seconds = ((Date.now() - started) / 1000).toFixed(1);
        throw new StratumError(
          Code.UNAVAILABLE,
          `Postgres at ${where} is unavailable (${attempt} attempt${attempt > 1 ? "s" : ""} in ${seconds} s): ${describeError(e)}`,
          { reason: POSTGRES_UNAVAILABLE, cause: e },
        );
      }
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

/**
 * `CREATE SCHEMA IF NOT EXISTS` is not race-free: two replicas starting together can both pass
 * the existence check and one then fails on the catalog's unique index (23505). Either way the
 * schema exists afterwards, which is all we want.
 */
async function ensureSchema(sql: postgres.Sql, schema: string, url: string, logger: DbLogger): Promise<void> {
  try {
    await sql.unsafe(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
  } catch (e) {
    const sqlstate = pgErrorCode(e);
    if (sqlstate === "23505" || sqlstate === "42P06") return;
    logger.error("cannot create schema", { target: describeTarget(url), schema, sqlstate, error: describeError(e) });
    throw mapPgError(e, { operation: `create schema ${schema}` });
  }
}
