import { Code, StratumError } from "@stratum/core";
import { findPgError, isConnectionError, mapPgError } from "./pg-errors";

/**
 * The StratumError a client must see for a Postgres failure a handler let through, or undefined
 * when `e` has nothing to do with Postgres (the caller then handles it as it would anyway).
 * Meant for the serving layer, applied to every error a handler throws, so that a database
 * outage reaches callers as a retryable UNAVAILABLE instead of INTERNAL "internal error":
 * - the database cannot be reached, dropped the connection, is shutting down or starting up →
 *   UNAVAILABLE `POSTGRES_UNAVAILABLE`, the message naming host:port when the error knows it;
 * - any other Postgres error (constraint violation, serialization failure, bad value …) →
 *   what {@link mapPgError} makes of it;
 * - a StratumError is the handler's own answer and gives undefined, except an INTERNAL one that
 *   only wraps a Postgres error (`StratumError.from(e)` on a driver error), which is mapped from
 *   its cause so the outage is not hidden behind "internal error".
 *
 * Looks through drizzle's `DrizzleQueryError`, any `cause` chain and `AggregateError`s. The
 * message never holds SQL or parameters; the Postgres error stays as `cause` for logs.
 */
export function postgresErrorToStratum(e: unknown): StratumError | undefined {
  if (e instanceof StratumError) {
    if (e.code !== Code.INTERNAL || e.cause === undefined) return undefined;
    return isPostgresFailure(e.cause) ? mapPgError(e.cause) : undefined;
  }
  return isPostgresFailure(e) ? mapPgError(e) : undefined;
}

function isPostgresFailure(e: unknown): boolean {
  return findPgError(e) !== undefined || isConnectionError(e);
}
