import type { AgentCommand } from "@stratum/agent-protocol";
import { eipCommands } from "./eip";
import { hostCommands } from "./host";
import { nicCommands } from "./nic";
import type { ProtocolHandlers } from "./types";
import { vmCommands } from "./vm";
import { volumeTaskCommands } from "./volume-task";

export type { CommandContext, CommandHandler, CommandTable, HostDirectory, HostView, ProtocolHandlers } from "./types";
export { eipCommands, hostCommands, nicCommands, vmCommands, volumeTaskCommands };

/** Every command of the protocol, as a simulated agent runs it (the type makes the table complete). */
export const defaultCommands: ProtocolHandlers<AgentCommand> = {
  ...hostCommands,
  ...vmCommands,
  ...nicCommands,
  ...eipCommands,
  ...volumeTaskCommands,
};
