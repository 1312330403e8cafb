import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { drizzle } from "drizzle-orm/postgres-js";
import { readMigrationFiles, type MigrationMeta } from "drizzle-orm/migrator";
import { PgDialect } from "drizzle-orm/pg-core";
import postgres from "postgres";
import { Code, StratumError } from "@stratum/core";
import { assertSchemaName, clientOptions, handleInternals, waitForPostgres, type DbHandle } from "./connect";
import { describeError } from "./logger";
import { findPgError, isConnectionError, mapPgError } from "./pg-errors";
import { describeTarget } from "./target";

export interface MigrateOptions {
  /** The drizzle-kit output folder (holding `meta/_journal.json`), committed with the service. */
  migrationsFolder: string;
  /** Schema of the migrations table. Default: the handle's schema, so each service keeps its own. */
  schema?: string;
  /** Name of the migrations table. Default `__drizzle_migrations`, drizzle's own. */
  migrationsTable?: string;
}

export interface MigrateResult {
  /** Migrations applied by this call (0 when another replica, or an earlier start, did). */
  applied: number;
  /** Migrations in the folder. */
  total: number;
}

/** First key of the advisory lock; the second is `hashtext('<schema>')`. "ST" "MG" in ASCII. */
const MIGRATION_LOCK_CLASS = 0x53544d47;

/**
 * Applies the service's drizzle-kit migrations at start, with drizzle's postgres-js migrator
 * logic (`PgDialect.migrate`: one transaction, journal order, applied ones skipped) and its
 * migrations table in the service's own schema.
 *
 * Two replicas starting together would otherwise race (both see "not applied", both run
 * `CREATE TABLE`, one fails), so the whole run holds a session-level advisory lock keyed by the
 * schema, on a dedicated single connection: the lock, the migration and the unlock all happen on
 * the same backend, and if this process dies the lock goes with its connection. The replica that
 * waited then finds everything applied and does nothing.
 *
 * drizzle-kit writes `CREATE SCHEMA "<name>";` into the first migration of a `pgSchema(...)`, but
 * connect() has already created the schema (it must exist for `search_path` and the migrations
 * table), so that one statement is run as `CREATE SCHEMA IF NOT EXISTS`. Nothing else is touched.
 */
export async function migrate<TTables extends Record<string, unknown>>(
  handle: DbHandle<TTables>,
  options: MigrateOptions,
): Promise<MigrateResult> {
  const info = handleInternals(handle);
  const schema = options.schema ?? info.schema;
  assertSchemaName(schema);
  const migrationsTable = options.migrationsTable ?? "__drizzle_migrations";
  const migrationsFolder = resolve(options.migrationsFolder);
  const logger = info.logger;
  const target = describeTarget(info.url);

  if (!existsSync(join(migrationsFolder, "meta", "_journal.json"))) {
    throw new StratumError(Code.INTERNAL, "internal error", {
      reason: "MIGRATIONS_NOT_FOUND",
      cause: new Error(`no drizzle-kit migrations (meta/_journal.json) in ${migrationsFolder}`),
    });
  }
  const migrations = readMigrationFiles({ migrationsFolder }).map(tolerateExistingSchema);

  const sql = postgres(info.url, clientOptions(schema, `${info.applicationName}:migrate`, 1, 10_000));
  try {
    await waitForPostgres(sql, info.url, 10_000, logger);
    const lockKey = [MIGRATION_LOCK_CLASS, schema] as const;
    const waitStarted = Date.now();
    // Wait for the lock, saying so: a replica stuck behind another's migration must not look hung.
    for (let lastLog = Date.now(); ; ) {
      const [row] = await sql`select pg_try_advisory_lock(${lockKey[0]}::int, hashtext(${lockKey[1]})) as locked`;
      if (row?.locked) break;
      if (Date.now() - lastLog >= 5_000) {
        logger.info("waiting for the migration lock held by another replica", { target, schema, waitedMs: Date.now() - waitStarted });
        lastLog = Date.now();
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    // The pool (one connection) reconnects by itself if its connection drops, and a session lock
    // dies with its session: a different backend afterwards means the lock may have been lost.
    const pid = async () => ((await sql`select pg_backend_pid() as pid`)[0]!.pid as number);
    const lockedBy = await pid();
    try {
      const before = await appliedCount(sql, schema, migrationsTable);
      const db = drizzle(sql);
      // Exactly what drizzle-orm/postgres-js/migrator does, minus re-reading the folder.
      const session = db._.session as unknown as Parameters<PgDialect["migrate"]>[1];
      await new PgDialect().migrate(migrations, session, { migrationsFolder, migrationsSchema: schema, migrationsTable });
      if ((await pid()) !== lockedBy) throw new Error("the connection holding the migration lock was lost while migrating");
      const after = await appliedCount(sql, schema, migrationsTable);
      const result = { applied: Math.max(0, after - before), total: migrations.length };
      logger.info("migrations applied", { target, schema, ...result, lockWaitMs: Date.now() - waitStarted });
      return result;
    } finally {
      await sql`select pg_advisory_unlock(${lockKey[0]}::int, hashtext(${lockKey[1]}))`.catch(() => {});
    }
  } catch (e) {
    if (e instanceof StratumError) throw e;
    logger.error("migration failed", { target, schema, migrationsFolder, error: describeError(findPgError(e) ?? e) });
    if (isConnectionError(e)) throw mapPgError(e, { operation: `migrate schema ${schema}` });
    // Not a client-facing error: it stops the service's start, and the operator needs the reason.
    const pg = findPgError(e);
    throw new StratumError(Code.INTERNAL, `migrating schema ${schema} failed${pg ? `: ${pg.message} (${pg.code})` : ""}`, {
      reason: "MIGRATION_FAILED",
      cause: pg ?? e,
    });
  } finally {
    await sql.end({ timeout: 5 });
  }
}

async function appliedCount(sql: postgres.Sql, schema: string, table: string): Promise<number> {
  const [row] = await sql`select to_regclass(${`"${schema}"."${table}"`}) is not null as present`;
  if (!row?.present) return 0;
  const [count] = await sql.unsafe<Array<{ n: number }>>(`select count(*)::int as n from "${schema}"."${table}"`);
  return count?.n ?? 0;
}

const CREATE_SCHEMA = /^\s*CREATE\s+SCHEMA\s+("(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)\s*;?\s*$/i;

function tolerateExistingSchema(migration: MigrationMeta): MigrationMeta {
  return { ...migration, sql: migration.sql.map((stmt) => stmt.replace(CREATE_SCHEMA, "CREATE SCHEMA IF NOT EXISTS $1;\n")) };
}
