export { connect, DEFAULT_CONNECT_TIMEOUT_MS } from "./connect";
export { reconnectBackoff, MAX_RECONNECT_DELAY_S } from "./reconnect-backoff";
export type { ConnectOptions, DbHandle } from "./connect";
export { migrate } from "./migrate";
export type { MigrateOptions, MigrateResult } from "./migrate";
export {
  mapPgError,
  withPgErrors,
  findPgError,
  pgErrorCode,
  isConnectionError,
  isRetryableTransactionError,
  connectionTarget,
  POSTGRES_UNAVAILABLE,
} from "./pg-errors";
export { postgresErrorToStratum } from "./postgres-error-to-stratum";
export type { ConstraintRule, PgErrorContext, PgErrorFields } from "./pg-errors";
export { expectOne, affectedRows } from "./rows";
export { transactionWithRetry } from "./transaction";
export type { DbTransaction, TransactionOptions } from "./transaction";
export { jsonLineLogger } from "./logger";
export type { DbLogger } from "./logger";
export { describeTarget } from "./target";
export { requestsTable } from "./requests-table";
export type { RequestsTable } from "./requests-table";
export { rowMapper, qualifiedName } from "./row-mapper";
export { TransitionBatcher } from "./transition-batcher";
export type { TransitionBatcherOptions, WriteGuard } from "./transition-batcher";
export { TurnBatcher } from "./turn-batcher";
export { KeyedBatcher } from "./keyed-batcher";
export { outboxTable } from "./outbox-table";
export { leasesTable } from "./leases-table";
export type { LeasesTable } from "./leases-table";
export { holdsLease, leaseHeld, leaseHeldSql, leaseLost, LEASE_NOT_HELD, ownerWriteGuard } from "./fencing";
export type { LeaseHolder, OwnerWriteGuardOptions } from "./fencing";
export type { OutboxTable } from "./outbox-table";
