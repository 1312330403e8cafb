import type { Logger } from "@stratum/core";
import { Code, codeName, type StratumError } from "@stratum/core";
import { AgentFailure, type CallTarget } from "./errors";

/**
 * How one logical agent call ended (all its attempts), for metrics: a counter by
 * `command`/`outcome` and a histogram of `durationMs` need nothing else.
 */
export interface AgentCallEvent {
  command: string;
  hostUuid?: string;
  /** `"ok"`, or the `StratumError` reason of the failure (`AGENT_UNREACHABLE`, `AGENT_TIMEOUT`…). */
  outcome: "ok" | string;
  /** The gRPC `Code` of the failure; absent when the call succeeded. */
  code?: number;
  /** From the call to its end, retries and backoff included. */
  durationMs: number;
  /** Attempts sent (0 when the call ended before the first, e.g. the client was closed). */
  attempts: number;
}

/** Receives each call's {@link AgentCallEvent}; must not throw (a throw is logged, never fails the call). */
export type AgentCallObserver = (event: AgentCallEvent) => void;

type Level = "debug" | "info" | "warn" | "error";

/**
 * The level of a call's final failure. Host trouble (unreachable, not serving, no answer) is what
 * an operator watches: warn. A command the agent refused is the caller's business and usually
 * becomes the caller's error (a reboot of a stopped VM): info. A failure inside the agent or an
 * answer we cannot read is a bug on one side: error. Cancellation and shutdown were asked for: debug.
 */
function failureLevel(failure: StratumError): Level {
  switch (failure.reason) {
    case AgentFailure.UNREACHABLE:
    case AgentFailure.UNAVAILABLE:
    case AgentFailure.TIMEOUT:
      return "warn";
    case AgentFailure.REJECTED:
      return "info";
    case AgentFailure.CANCELLED:
    case AgentFailure.CLIENT_CLOSED:
      return "debug";
    default:
      return failure.code === Code.UNAVAILABLE ? "warn" : "error";
  }
}

/** The ids every log line of a call carries. */
export function callFields(target: CallTarget, requestId: string | undefined): Record<string, unknown> {
  return { command: target.command, hostUuid: target.hostUuid, hostUrl: target.hostUrl, taskId: target.taskId, requestId };
}

/** Logs a retry about to happen. */
export function logRetry(logger: Logger, target: CallTarget, requestId: string | undefined, attempt: number, nextDelayMs: number, failure: StratumError): void {
  logger.warn("agent call retried", {
    ...callFields(target, requestId), attempt, nextDelayMs, reason: failure.reason, code: codeName(failure.code), error: failure.message,
  });
}

/** Logs a call's final failure at the level its kind deserves. */
export function logFailure(logger: Logger, target: CallTarget, requestId: string | undefined, attempts: number, durationMs: number, failure: StratumError): void {
  logger[failureLevel(failure)]("agent call failed", {
    ...callFields(target, requestId), attempts, durationMs, reason: failure.reason, code: codeName(failure.code), error: failure.message,
  });
}
