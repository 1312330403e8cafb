export { Code, codeName } from "@stratum/core";
export { StratumError, ERROR_DOMAIN } from "@stratum/core";
export type { FieldViolation, StratumErrorOptions } from "@stratum/core";

export { createLogger, defaultLogLevel, log, serializeError } from "@stratum/core";
export type { LogFields, LogLevel, Logger, LoggerOptions } from "@stratum/core";

export { STATUS_DETAILS_KEY, errorFromServiceError, errorFromStatus, statusFromError, toGrpcStatus } from "./status";

export { REQUEST_ID_KEY, earliest, requestIdFrom } from "./context";
export type { CallParent, HandlerContext } from "./context";

export { implement } from "./service";
export type {
  BidiStreamingImpl,
  ClientStreamingImpl,
  MethodImpl,
  ServerStreamingImpl,
  ServiceImpl,
  ServiceRegistration,
  UnaryImpl,
} from "./service";

export { DEFAULT_MAX_RECEIVE_MESSAGE_LENGTH, DEFAULT_SHUTDOWN_GRACE_MS, SERVER_SHUTTING_DOWN, createServer } from "./server";
export type { ServerOptions, StratumServer } from "./server";

export { closeClient, createClient } from "./client";
export type { CallOptions, Client, ClientMethod, ClientOptions } from "./client";
export { bearerToken } from "./bearer-token";

export { CLIENT_REQUEST_ID_FIELD, DEFAULT_RETRY_POLICY, RETRYABLE_CODES, backoffDelay, clientRequestIdField, createRetryInterceptor, isIdempotent } from "./retry";
export { CHANNEL_CLOSED, channelClosedError, isChannelShutDown } from "./channel-closed";
export { isTransportUnavailable } from "./transport";
export type { RetryInterceptorOptions, RetryPolicy } from "./retry";

export { HealthRegistry, ServingStatus, healthService } from "./health";
export { DescriptorIndex, reflectionServices } from "./reflection";

export { Violations, fieldPath, validate } from "@stratum/core";

export { chainInterceptors, observeOutcome, streamsResponses } from "./interceptor";
export type { ServerCall, ServerInterceptor, ServerNext } from "./interceptor";
