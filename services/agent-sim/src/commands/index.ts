import { eipCommands } from "./eip";
import { hostCommands } from "./host";
import { nicCommands } from "./nic";
import type { CommandTable } from "./types";
import { vmCommands } from "./vm";
import { volumeTaskCommands } from "./volume-task";

export type { CommandContext, CommandHandler, CommandTable, HostDirectory, HostView } from "./types";
export { eipCommands, hostCommands, nicCommands, vmCommands, volumeTaskCommands };

/** Every command a simulated agent understands out of the box. */
export const defaultCommands: CommandTable = {
  ...hostCommands,
  ...vmCommands,
  ...nicCommands,
  ...eipCommands,
  ...volumeTaskCommands,
};
