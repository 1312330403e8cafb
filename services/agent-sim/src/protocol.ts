/**
 * The agent's HTTP/JSON wire protocol, shared by the simulator and its tests.
 *
 * Every command is `POST /<command>` (e.g. `POST /vm/start`) with a JSON object body and answers
 * a JSON object. Failures are HTTP 4xx/5xx with {@link AgentErrorBody}. A command may carry a
 * task id in the {@link TASK_ID_HEADER} header: a header (not a body field) so that it works the
 * same for every command, is never confused with command arguments, and can be added by the
 * client's retry layer without touching the body.
 */

/** Header naming the caller's task id; a repeated id on the same host is answered, not re-run. */
export const TASK_ID_HEADER = "x-task-id";

/** Task ids are opaque to the agent, but bounded and printable so they are safe to log. */
export const TASK_ID_PATTERN = /^[A-Za-z0-9._:@/-]{1,200}$/;

/** Body of every error response. `code` is a stable UPPER_SNAKE reason, `message` is for humans. */
export interface AgentErrorBody {
  error: { code: string; message: string };
}

/** Stable error codes the simulator answers with. Handlers may add their own. */
export const AgentErrorCode = {
  UNKNOWN_COMMAND: "UNKNOWN_COMMAND",
  METHOD_NOT_ALLOWED: "METHOD_NOT_ALLOWED",
  MALFORMED_JSON: "MALFORMED_JSON",
  INVALID_BODY: "INVALID_BODY",
  BODY_TOO_LARGE: "BODY_TOO_LARGE",
  MISSING_FIELD: "MISSING_FIELD",
  INVALID_FIELD: "INVALID_FIELD",
  INVALID_TASK_ID: "INVALID_TASK_ID",
  TASK_ID_CONFLICT: "TASK_ID_CONFLICT",
  INJECTED_FAULT: "INJECTED_FAULT",
  INTERNAL: "INTERNAL",
} as const;

/** Facts a host reports on `POST /host/connect`. */
export interface HostFacts {
  hostUuid: string;
  hypervisorType: string;
  agentVersion: string;
  cpuNum: number;
  cpuSockets: number;
  memoryBytes: number;
  osDistribution: string;
  osVersion: string;
  /** Changes every time the agent (re)starts, so the management plane can detect a restart. */
  bootId: string;
  startedAt: string;
}

export const AGENT_VERSION = "stratum-agent-sim/0.1.0";
