export { createAgentClient } from "./agent-client";
export type { AgentClient, AgentClientOptions, CallOptions } from "./agent-client";
export type { AgentCallEvent, AgentCallObserver } from "./call-report";
export { DEFAULT_COMMAND_POLICIES, FALLBACK_COMMAND_POLICY } from "./command-policy";
export type { CommandPolicy } from "./command-policy";
export { createAgentDispatcher, DEFAULT_KEEP_ALIVE_TIMEOUT_MS } from "./dispatcher";
export type { AgentDispatcherOptions } from "./dispatcher";
export { AgentFailure, errorCode, isFenced, isRetryable } from "./errors";
export type { CallTarget } from "./errors";
export { backoffDelay } from "./backoff";
export { HostDirectory, HOST_URL_TTL_MS } from "./host-directory";
export type { AgentHost } from "./host-directory";
export type { BackoffOptions } from "./backoff";
// The protocol the client speaks, for callers that depend on the client alone.
export { AGENT_COMMANDS, AgentErrorCode, REQUEST_ID_HEADER, REQUEST_ID_PATTERN, TASK_ID_HEADER, TASK_ID_PATTERN } from "@stratum/agent-protocol";
export type {
  AgentCommand, AgentReply, AgentRequest, HostConnectReply, HostPingReply, HostVmsReply, VmRefCommand, VmStartRequest,
} from "@stratum/agent-protocol";
