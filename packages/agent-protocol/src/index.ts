/**
 * The hypervisor agent's wire protocol, written once: the agent client (`@stratum/agent-client`),
 * the simulator (`@stratum/agent-sim`) and the compute service's calls are all typed by it.
 * Dependency-free, so a real agent's test kit or a tool can use it too.
 */
export {
  COMMAND_PATTERN, FENCING_TOKEN_HEADER, FENCING_TOKEN_PATTERN, fencingToken, parseAgentError, REQUEST_ID_HEADER, REQUEST_ID_PATTERN, TASK_ID_HEADER, TASK_ID_PATTERN,
} from "./wire";
export type { AgentErrorBody, AgentErrorDetail } from "./wire";
export { AgentErrorCode } from "./error-codes";
export type { AgentErrorCodeName } from "./error-codes";
export { AGENT_COMMAND_NAMES, AGENT_COMMANDS, isAgentCommand, isRetrySafe } from "./commands";
export type { AgentCommand, AgentCommandMap, AgentCommandSpec, AgentReply, AgentRequest, VmRefCommand } from "./commands";
export type {
  HostConnectReply, HostConnectRequest, HostPingReply, HostPingRequest, HostVmsReply, HostVmsRequest, VmPowerState,
} from "./host";
export type {
  VmDestroyReply, VmMigrateAbortReply, VmMigrateRefRequest, VmMigrateReply, VmMigrateRequest, VmMigrateStatusReply, VmMigrationState, VmNicSpec, VmRebootReply, VmRefRequest, VmStartReply, VmStartRequest, VmStopReply,
} from "./vm";
export type {
  EipApplyReply, EipApplyRequest, EipListReply, EipListRequest, EipReleaseReply, EipReleaseRequest, EipRuleInfo, NicApplyReply, NicApplyRequest, NicReleaseReply, NicReleaseRequest,
} from "./network";
export {
  DEFAULT_VOLUME_TASK_CHUNK_BYTES, INCREMENTAL_CHANGED_FRACTION_DIVISOR, isVolumeTaskFinished, VOLUME_TASK_KIND_PATTERN, VOLUME_TASK_WAIT_MAX_MS, VOLUME_TASK_WAIT_MAX_TASKS, VOLUME_TASK_WAIT_MAX_VOLUMES,
} from "./volume-task";
export type {
  VolumeTaskCancelRequest, VolumeTaskInfo, VolumeTaskReply, VolumeTaskStartRequest, VolumeTaskState, VolumeTaskStatusReply, VolumeTaskStatusRequest,
  VolumeTaskWaitReply, VolumeTaskWaitRequest,
} from "./volume-task";
