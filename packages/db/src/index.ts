export { connect, DEFAULT_CONNECT_TIMEOUT_MS } from "./connect";
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
  POSTGRES_UNAVAILABLE,
} from "./pg-errors";
export type { ConstraintRule, PgErrorContext, PgErrorFields } from "./pg-errors";
export { expectOne, affectedRows } from "./rows";
export { transactionWithRetry } from "./transaction";
export type { DbTransaction, TransactionOptions } from "./transaction";
export { jsonLineLogger } from "./logger";
export type { DbLogger } from "./logger";
export { describeTarget } from "./target";
