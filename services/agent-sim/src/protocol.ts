/**
 * The agent wire protocol lives in `@stratum/agent-protocol` (one definition for the simulator,
 * the agent client and compute); this module adds what is the simulator's own.
 */
import type { HostConnectReply } from "@stratum/agent-protocol";

export { AgentErrorCode, FENCING_TOKEN_HEADER, REQUEST_ID_HEADER, REQUEST_ID_PATTERN, TASK_ID_HEADER, TASK_ID_PATTERN } from "@stratum/agent-protocol";
export type { AgentErrorBody } from "@stratum/agent-protocol";

/** Facts a host reports on `POST /host/connect` (the protocol's `HostConnectReply`). */
export type HostFacts = HostConnectReply;

export const AGENT_VERSION = "stratum-agent-sim/0.1.0";

/** CPUs a simulated host has unless told otherwise: a common two-socket hypervisor. */
export const DEFAULT_SIM_CPU_NUM = 32;

/** Memory a simulated host has unless told otherwise: 128 GiB. */
export const DEFAULT_SIM_MEMORY_BYTES = 128 * 1024 ** 3;
