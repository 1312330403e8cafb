import type {
  HostConnectReply, HostConnectRequest, HostPingReply, HostPingRequest, HostVmsReply, HostVmsRequest,
} from "./host";
import type {
  EipApplyReply, EipApplyRequest, EipListReply, EipListRequest, EipReleaseReply, EipReleaseRequest, NicApplyReply, NicApplyRequest, NicReleaseReply, NicReleaseRequest,
} from "./network";
import type {
  VmDestroyReply, VmMigrateAbortReply, VmMigrateRefRequest, VmMigrateReply, VmMigrateRequest, VmMigrateStatusReply, VmRebootReply, VmRefRequest, VmStartReply, VmStartRequest, VmStopReply,
} from "./vm";
import type {
  VolumeTaskCancelRequest, VolumeTaskReply, VolumeTaskStartRequest, VolumeTaskStatusReply, VolumeTaskStatusRequest, VolumeTaskWaitReply, VolumeTaskWaitRequest,
} from "./volume-task";

/**
 * Every command of the agent protocol: its request body and its reply. The single source both
 * sides are typed by — the management plane's calls and the simulator's handlers — so a field
 * renamed on one side is a type error on the other.
 */
export interface AgentCommandMap {
  "host/connect": { request: HostConnectRequest; reply: HostConnectReply };
  "host/ping": { request: HostPingRequest; reply: HostPingReply };
  "host/vms": { request: HostVmsRequest; reply: HostVmsReply };
  "vm/start": { request: VmStartRequest; reply: VmStartReply };
  "vm/stop": { request: VmRefRequest; reply: VmStopReply };
  "vm/reboot": { request: VmRefRequest; reply: VmRebootReply };
  "vm/destroy": { request: VmRefRequest; reply: VmDestroyReply };
  "vm/migrate": { request: VmMigrateRequest; reply: VmMigrateReply };
  "vm/migrate/status": { request: VmMigrateRefRequest; reply: VmMigrateStatusReply };
  "vm/migrate/abort": { request: VmMigrateRefRequest; reply: VmMigrateAbortReply };
  "nic/apply": { request: NicApplyRequest; reply: NicApplyReply };
  "nic/release": { request: NicReleaseRequest; reply: NicReleaseReply };
  "eip/apply": { request: EipApplyRequest; reply: EipApplyReply };
  "eip/release": { request: EipReleaseRequest; reply: EipReleaseReply };
  "eip/list": { request: EipListRequest; reply: EipListReply };
  "volume/task/start": { request: VolumeTaskStartRequest; reply: VolumeTaskReply };
  "volume/task/cancel": { request: VolumeTaskCancelRequest; reply: VolumeTaskReply };
  "volume/task/status": { request: VolumeTaskStatusRequest; reply: VolumeTaskStatusReply };
  "volume/task/wait": { request: VolumeTaskWaitRequest; reply: VolumeTaskWaitReply };
}

export type AgentCommand = keyof AgentCommandMap;
export type AgentRequest<C extends AgentCommand> = AgentCommandMap[C]["request"];
export type AgentReply<C extends AgentCommand> = AgentCommandMap[C]["reply"];

/** VM lifecycle commands that take only the VM's uuid. */
export type VmRefCommand = "vm/stop" | "vm/reboot" | "vm/destroy";

/**
 * How a command may be delivered again. An agent deduplicates every command that carries a task
 * id (`x-task-id`): a repeat waits for and answers from the first run. Without one, a repeat
 * runs again — possibly alongside a first attempt still running after its connection died.
 */
export interface AgentCommandSpec {
  /**
   * Safe to send again WITHOUT a task id, even while the first attempt still runs: reads, the
   * handshake, and commands whose effect later work cannot undo. A command that is not
   * idempotent may be retried only with a task id, or a late repeat could undo the next
   * operation (a late `vm/stop` after the next start, a late `eip/apply` after its release).
   */
  readonly idempotent: boolean;
}

/** The delivery rule of every protocol command. */
export const AGENT_COMMANDS: Readonly<Record<AgentCommand, AgentCommandSpec>> = {
  "host/connect": { idempotent: true },
  "host/ping": { idempotent: true },
  "host/vms": { idempotent: true },
  "vm/start": { idempotent: false },
  "vm/stop": { idempotent: false },
  "vm/reboot": { idempotent: false },
  "vm/destroy": { idempotent: false },
  "vm/migrate": { idempotent: false },
  "vm/migrate/status": { idempotent: true },
  // Aborting is final for the copy it finds; a late repeat finds none running and answers `aborted: false`.
  "vm/migrate/abort": { idempotent: true },
  "nic/apply": { idempotent: false },
  "nic/release": { idempotent: false },
  "eip/apply": { idempotent: false },
  "eip/release": { idempotent: false },
  // Only reads the host's rules: a repeat (or a late first attempt) changes nothing.
  "eip/list": { idempotent: true },
  // Starting a task twice runs it twice (unless the caller names the task uuid and a task id).
  "volume/task/start": { idempotent: false },
  "volume/task/status": { idempotent: true },
  // Cancelling a specific task is final: a late repeat finds it cancelled or finished and does nothing.
  "volume/task/cancel": { idempotent: true },
  // A wait only reads: a repeat (or a late first attempt) changes nothing and answers the same question.
  "volume/task/wait": { idempotent: true },
};

/** Every command name of the protocol, in declaration order. */
export const AGENT_COMMAND_NAMES: readonly AgentCommand[] = Object.keys(AGENT_COMMANDS) as AgentCommand[];

/** True when `name` is a command of this protocol (not an extension an agent may also have). */
export function isAgentCommand(name: string): name is AgentCommand {
  return Object.hasOwn(AGENT_COMMANDS, name);
}

/**
 * Whether a call may be sent again after a failure that left its outcome unknown: an idempotent
 * command always, any command when it carries a task id. Commands outside the protocol are
 * assumed not idempotent.
 */
export function isRetrySafe(command: string, taskId: string | undefined): boolean {
  return taskId !== undefined || (isAgentCommand(command) && AGENT_COMMANDS[command].idempotent);
}
