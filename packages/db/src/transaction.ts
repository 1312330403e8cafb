import type { PostgresJsDatabase } from "drizzle-orm/postgres-js";
import { isRetryableTransactionError, pgErrorCode } from "./pg-errors";
import type { DbLogger } from "./logger";

/** The transaction object drizzle passes to `db.transaction` callbacks. */
export type DbTransaction<TTables extends Record<string, unknown> = Record<string, never>> = Parameters<
  Parameters<PostgresJsDatabase<TTables>["transaction"]>[0]
>[0];

export interface TransactionOptions {
  /** Default `serializable`: the level where Postgres detects every anomaly (and reports 40001). */
  isolationLevel?: "read committed" | "repeatable read" | "serializable";
  /** Total attempts including the first. Default 5. */
  maxAttempts?: number;
  /** Logs each retry as a warning; pass the service's logger. */
  logger?: DbLogger;
  /** Names the transaction in retry logs. */
  name?: string;
}

/**
 * Runs `fn` in a transaction and runs it again (with jittered backoff) when Postgres aborts it
 * for a serialization failure (40001) or a deadlock (40P01) — the errors that mean "a concurrent
 * transaction won, try again", which SERIALIZABLE makes routine. `fn` may therefore run more than
 * once: it must only touch the database through `tx`. After the last attempt the error is
 * rethrown as is (wrap the call in withPgErrors to get ABORTED).
 */
export async function transactionWithRetry<TTables extends Record<string, unknown>, T>(
  db: PostgresJsDatabase<TTables>,
  fn: (tx: DbTransaction<TTables>) => Promise<T>,
  options: TransactionOptions = {},
): Promise<T> {
  const maxAttempts = Math.max(1, options.maxAttempts ?? 5);
  const isolationLevel = options.isolationLevel ?? "serializable";
  for (let attempt = 1; ; attempt++) {
    try {
      return await db.transaction((tx) => fn(tx), { isolationLevel });
    } catch (e) {
      if (attempt >= maxAttempts || !isRetryableTransactionError(e)) throw e;
      const delayMs = Math.round(Math.random() * Math.min(200, 10 * 2 ** attempt));
      options.logger?.warn("transaction conflicted, retrying", {
        transaction: options.name,
        attempt,
        maxAttempts,
        sqlstate: pgErrorCode(e),
        delayMs,
      });
      await new Promise((r) => setTimeout(r, delayMs));
    }
  }
}
