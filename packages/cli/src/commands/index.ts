/** Every command, by group: the one list that help, parsing and dispatch read. */
import type { Command } from "./command";
import { HOST_COMMANDS } from "./host";
import { JOB_COMMANDS } from "./job";
import { VM_COMMANDS } from "./vm";

export interface CommandGroup {
  readonly name: string;
  /** Heading in the tool's help. */
  readonly title: string;
  readonly commands: readonly Command[];
}

export const GROUPS: readonly CommandGroup[] = [
  { name: "host", title: "Hosts (hypervisors)", commands: HOST_COMMANDS },
  { name: "vm", title: "VMs", commands: VM_COMMANDS },
  { name: "job", title: "Long jobs (on the longjob service)", commands: JOB_COMMANDS },
];

export function findGroup(name: string): CommandGroup | undefined {
  return GROUPS.find((g) => g.name === name);
}

export function findCommand(group: CommandGroup, name: string): Command | undefined {
  return group.commands.find((c) => c.name === name);
}

export type { Api, Command, CommandInput, CommandIo, CommandResult } from "./command";
