import { AgentErrorCode, type AgentErrorDetail } from "@stratum/agent-protocol";
import { Code, StratumError } from "@stratum/core";

/** Stable reasons of the `StratumError`s the agent client raises. */
export const AgentFailure = {
  /** No answer because the connection failed (refused, reset, closed, DNS…). UNAVAILABLE: retryable when safe. */
  UNREACHABLE: "AGENT_UNREACHABLE",
  /** The agent answered 502/503/504: up but not serving. UNAVAILABLE: retryable when safe. */
  UNAVAILABLE: "AGENT_UNAVAILABLE",
  /** No answer within the call's deadline. DEADLINE_EXCEEDED: the command may still be running. */
  TIMEOUT: "AGENT_TIMEOUT",
  /** The caller's signal aborted the call. CANCELLED. */
  CANCELLED: "AGENT_CALL_CANCELLED",
  /** The agent ran the command and it failed (HTTP 500 and other 5xx). INTERNAL, with the agent's message. */
  ERROR: "AGENT_ERROR",
  /** The agent refused the command (HTTP 4xx): INVALID_ARGUMENT, NOT_FOUND, UNIMPLEMENTED or FAILED_PRECONDITION. */
  REJECTED: "AGENT_REJECTED",
  /** The agent's answer could not be read (not JSON, broken HTTP). INTERNAL. */
  BAD_RESPONSE: "AGENT_BAD_RESPONSE",
  /** The client was closed (shutdown). UNAVAILABLE but never retried. */
  CLIENT_CLOSED: "AGENT_CLIENT_CLOSED",
  /** Anything else that went wrong making the call. UNKNOWN. */
  CALL_FAILED: "AGENT_CALL_FAILED",
} as const;

/** The call an error is about; named in the message and sent as the error's resource ids. */
export interface CallTarget {
  hostUrl: string;
  command: string;
  hostUuid?: string | undefined;
  taskId?: string | undefined;
}

/** Socket-level failures: no HTTP answer was received. */
const CONNECTION_CODES: ReadonlySet<string> = new Set([
  "ECONNRESET", "ECONNREFUSED", "ECONNABORTED", "EPIPE", "ETIMEDOUT", "EHOSTUNREACH", "EHOSTDOWN",
  "ENETUNREACH", "ENETDOWN", "ENOTFOUND", "EAI_AGAIN", "UND_ERR_SOCKET", "UND_ERR_CONNECT_TIMEOUT",
]);
const CLOSED_CODES: ReadonlySet<string> = new Set(["UND_ERR_CLOSED", "UND_ERR_DESTROYED"]);

/** The first `code` along an error's cause chain (`ECONNRESET`, `UND_ERR_SOCKET`, …). */
export function errorCode(err: unknown): string | undefined {
  let current: unknown = err;
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === "string") return code;
    current = current.cause;
  }
  return undefined;
}

/** True for failures where nothing was answered and a retry may succeed: see `CommandPolicy` for when it is safe. */
export function isRetryable(err: StratumError): boolean {
  return err.code === Code.UNAVAILABLE && err.reason !== AgentFailure.CLIENT_CLOSED;
}

/**
 * True when the agent refused the command as fenced (409 `FENCED`): it has seen a newer fencing
 * token for the resource, so the caller no longer owns it and must not act on it as owner.
 */
export function isFenced(err: unknown): boolean {
  return err instanceof StratumError && err.resources["agentErrorCode"] === AgentErrorCode.FENCED;
}

function describe(t: CallTarget): string {
  return `agent ${t.hostUuid === undefined ? t.hostUrl : `${t.hostUuid} (${t.hostUrl})`} ${t.command}`;
}

function resources(t: CallTarget, extra: Record<string, string | undefined> = {}): Record<string, string> {
  const out: Record<string, string> = { hostUrl: t.hostUrl, command: t.command };
  if (t.hostUuid !== undefined) out["hostUuid"] = t.hostUuid;
  if (t.taskId !== undefined) out["taskId"] = t.taskId;
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) out[k] = v;
  return out;
}

function attemptsText(attempts: number): string {
  return attempts === 1 ? "" : ` after ${attempts} attempts`;
}

/** A failure below HTTP (no answer) → UNREACHABLE / TIMEOUT / CLIENT_CLOSED / BAD_RESPONSE / CALL_FAILED. */
export function transportError(t: CallTarget, err: unknown, attempts: number): StratumError {
  const code = errorCode(err);
  const detail = err instanceof Error ? err.message : String(err);
  if (code !== undefined && CONNECTION_CODES.has(code)) {
    return new StratumError(Code.UNAVAILABLE, `${describe(t)}: connection failed (${code}: ${detail})${attemptsText(attempts)}`, {
      reason: AgentFailure.UNREACHABLE, resources: resources(t, { errorCode: code }), cause: err,
    });
  }
  if (code !== undefined && CLOSED_CODES.has(code)) return closedError(t, err);
  if (code !== undefined && (code.startsWith("HPE_") || code === "UND_ERR_RES_CONTENT_LENGTH_MISMATCH" || code === "UND_ERR_RES_EXCEEDED_MAX_SIZE")) {
    return badResponseError(t, `broken HTTP answer (${code})`, err);
  }
  return new StratumError(Code.UNKNOWN, `${describe(t)}: call failed (${code ?? "no code"}: ${detail})`, {
    reason: AgentFailure.CALL_FAILED, resources: resources(t, { errorCode: code }), cause: err,
  });
}

/** An HTTP error answer → REJECTED (4xx), UNAVAILABLE (502/503/504) or ERROR (other 5xx). */
export function httpError(t: CallTarget, status: number, detail: AgentErrorDetail, attempts: number): StratumError {
  const extra = { httpStatus: String(status), agentErrorCode: detail.code };
  const message = `${describe(t)}: HTTP ${status}${detail.code ? ` ${detail.code}` : ""}: ${detail.message}`;
  if (status >= 400 && status < 500) {
    let code = Code.FAILED_PRECONDITION;
    if (status === 400 || status === 413 || status === 422) code = Code.INVALID_ARGUMENT;
    else if (status === 404) code = detail.code === AgentErrorCode.UNKNOWN_COMMAND ? Code.UNIMPLEMENTED : Code.NOT_FOUND;
    else if (status === 405 || status === 501) code = Code.UNIMPLEMENTED;
    return new StratumError(code, message, { reason: AgentFailure.REJECTED, resources: resources(t, extra) });
  }
  if (status === 502 || status === 503 || status === 504) {
    return new StratumError(Code.UNAVAILABLE, `${message}${attemptsText(attempts)}`, { reason: AgentFailure.UNAVAILABLE, resources: resources(t, extra) });
  }
  return new StratumError(Code.INTERNAL, message, { reason: AgentFailure.ERROR, resources: resources(t, extra) });
}

export function timeoutError(t: CallTarget, timeoutMs: number, attempts: number, cause?: unknown): StratumError {
  return new StratumError(Code.DEADLINE_EXCEEDED, `${describe(t)}: no answer within ${timeoutMs} ms${attemptsText(attempts)}`, {
    reason: AgentFailure.TIMEOUT, resources: resources(t, { timeoutMs: String(timeoutMs) }), cause,
  });
}

export function cancelledError(t: CallTarget, cause: unknown): StratumError {
  return new StratumError(Code.CANCELLED, `${describe(t)}: cancelled by the caller`, { reason: AgentFailure.CANCELLED, resources: resources(t), cause });
}

export function badResponseError(t: CallTarget, what: string, cause?: unknown): StratumError {
  return new StratumError(Code.INTERNAL, `${describe(t)}: ${what}`, { reason: AgentFailure.BAD_RESPONSE, resources: resources(t), cause });
}

export function closedError(t: CallTarget, cause?: unknown): StratumError {
  return new StratumError(Code.UNAVAILABLE, `${describe(t)}: the agent client is closed`, { reason: AgentFailure.CLIENT_CLOSED, resources: resources(t), cause });
}
