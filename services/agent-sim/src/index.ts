export { AgentSim, startAgentSim } from "./agent-sim";
export type { AgentSimOptions } from "./agent-sim";
export { SimHost } from "./sim-host";
export type { SimHostOptions, SimHostStartOptions } from "./sim-host";
export { AgentHttpServer } from "./agent-http-server";
export type { AgentHttpServerOptions, ConnectionStats } from "./agent-http-server";
export { CommandError } from "./command-error";
export { defaultCommands, eipCommands, hostCommands, nicCommands, vmCommands, volumeTaskCommands } from "./commands/index";
export type { CommandContext, CommandHandler, CommandTable, HostDirectory, HostView, ProtocolHandlers } from "./commands/index";
export { isJsonObject, optionalArray, optionalNonNegativeInt, optionalString, requirePositiveInt, requireString } from "./fields";
export type { JsonObject } from "./fields";
export type { FaultKind, FaultPhase, FaultRule, FaultSpec, InjectedFault } from "./faults";
export type { Fence, FencingStats } from "./fences";
export { Hold } from "./holds";
export type { HeldRequest } from "./holds";
export type { CommandLogEntry, CommandStats, EipRule, HostSnapshot, NicRule, VmRecord, VmState } from "./host-state";
export type { LatencyConfig } from "./latency";
export {
  AGENT_VERSION, AgentErrorCode, DEFAULT_SIM_CPU_NUM, DEFAULT_SIM_MEMORY_BYTES, REQUEST_ID_HEADER, REQUEST_ID_PATTERN, TASK_ID_HEADER, TASK_ID_PATTERN,
} from "./protocol";
export type { AgentErrorBody, HostFacts } from "./protocol";
export type { CommandOutcome, TaskCacheOptions } from "./task-cache";
export type { VolumeTask, VolumeTaskState } from "./volume-tasks";
export { TIMELINE_LIMIT } from "./timeline";
export type { TimelineEntry, TimelineEvent } from "./timeline";
export type { Migration } from "./migrations";
