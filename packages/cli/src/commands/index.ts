/** Every command, by group: the one list that help, parsing and dispatch read. */
import type { Command } from "./command";
import { HOST_COMMANDS } from "./host";
import { JOB_COMMANDS } from "./job";
import { BACKUP_COMMANDS } from "./backup";
import { BACKUP_STORAGE_COMMANDS, PRIMARY_STORAGE_COMMANDS } from "./storage";
import { VM_COMMANDS } from "./vm";
import { VOLUME_COMMANDS } from "./volume";
import { NETWORK_COMMANDS } from "./network";
import { EIP_COMMANDS } from "./eip";
import { BROKER_COMMANDS } from "./broker";

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
  { name: "primary-storage", title: "Primary storage (where volumes live; on the storage service)", commands: PRIMARY_STORAGE_COMMANDS },
  { name: "backup-storage", title: "Backup storage (where backups are kept; on the storage service)", commands: BACKUP_STORAGE_COMMANDS },
  { name: "volume", title: "Volumes (on the storage service)", commands: VOLUME_COMMANDS },
  { name: "backup", title: "Backups of volumes (on the storage service; their jobs on longjob)", commands: BACKUP_COMMANDS },
  { name: "network", title: "L3 networks, their IP ranges and addresses (on the network service)", commands: NETWORK_COMMANDS },
  { name: "eip", title: "Elastic IPs: VIPs of public networks bound to VM NICs (on the network service)", commands: EIP_COMMANDS },
  { name: "broker", title: "Service broker: its catalog, your instances (VMs of a plan) and their bindings (on the broker service, as the tenant of --token)", commands: BROKER_COMMANDS },
];

export function findGroup(name: string): CommandGroup | undefined {
  return GROUPS.find((g) => g.name === name);
}

export function findCommand(group: CommandGroup, name: string): Command | undefined {
  return group.commands.find((c) => c.name === name);
}

export type { Api, Command, CommandInput, CommandIo, CommandResult } from "./command";
