/**
 * The transport-free base of every Stratum package: one error type (a gRPC code, a stable
 * UPPER_SNAKE reason, the resource ids, field violations and a kept cause) and one Logger shape.
 * The database layer, the agent client, the queue and the domain raise and log with these
 * without depending on grpc-js; `@stratum/rpc` turns them into `google.rpc.Status` on the wire.
 */
export { Code, codeName } from "./code";
export { StratumError, ERROR_DOMAIN, errorMessage } from "./errors";
export type { FieldViolation, StratumErrorOptions } from "./errors";
export { createLogger, defaultLogLevel, log, serializeError } from "./log";
export type { LogFields, LogLevel, Logger, LoggerOptions } from "./log";
export { Violations, fieldPath, validate } from "./violations";
export { currentWork, runWithWork } from "./work-context";
export type { Work } from "./work-context";
