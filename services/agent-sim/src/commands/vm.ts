import { AgentErrorCode, VOLUME_TASK_WAIT_MAX_VOLUMES } from "@stratum/agent-protocol";
import { CommandError } from "../command-error";
import { isJsonObject, optionalArray, optionalNonNegativeInt, optionalString, optionalStringList, requirePositiveInt, requireString } from "../fields";
import type { NicRule, VmRecord } from "../host-state";
import type { ProtocolHandlers } from "./types";

function vmNotFound(vmUuid: string, hostUuid: string): CommandError {
  return CommandError.notFound("VM_NOT_FOUND", `vm ${vmUuid} not found on host ${hostUuid}`);
}

/** Reads `nics[i]` of a start command into vNIC records. */
function nicsOf(vmUuid: string, nics: unknown[] | undefined): NicRule[] {
  if (!nics) return [];
  const at = new Date().toISOString();
  return nics.map((nic, i) => {
    if (!isJsonObject(nic)) throw CommandError.invalidField(`nics[${i}]`, "an object");
    const rule: NicRule = { nicUuid: requireString(nic, "nicUuid"), vmUuid, appliedAt: at };
    const mac = optionalString(nic, "mac");
    const ip = optionalString(nic, "ip");
    const l3 = optionalString(nic, "l3NetworkUuid");
    if (mac !== undefined) rule.mac = mac;
    if (ip !== undefined) rule.ip = ip;
    if (l3 !== undefined) rule.l3NetworkUuid = l3;
    return rule;
  });
}

/**
 * VM lifecycle, with the semantics of a real hypervisor agent: start creates an unknown VM (the
 * start command carries the full spec) and is a no-op on a running one; stop and destroy succeed
 * on a VM that is already stopped or gone (so the management plane can repeat them after a lost
 * reply); reboot and migrate need a running VM.
 */
export const vmCommands: ProtocolHandlers<"vm/start" | "vm/stop" | "vm/reboot" | "vm/destroy" | "vm/migrate" | "vm/migrate/status" | "vm/migrate/abort"> = {
  "vm/start": ({ host, body }) => {
    const vmUuid = requireString(body, "vmUuid");
    const cpuNum = requirePositiveInt(body, "cpuNum");
    const memoryBytes = requirePositiveInt(body, "memoryBytes");
    const nics = nicsOf(vmUuid, optionalArray(body, "nics"));
    const existing = host.state.vms.get(vmUuid);
    if (existing?.state === "running") return { vmUuid, state: "running", alreadyRunning: true };
    host.state.vms.set(vmUuid, { vmUuid, state: "running", cpuNum, memoryBytes, spec: structuredClone(body), startedAt: new Date().toISOString() });
    for (const nic of nics) host.state.nics.set(nic.nicUuid, nic);
    return { vmUuid, state: "running", alreadyRunning: false };
  },

  "vm/stop": ({ host, body }) => {
    const vmUuid = requireString(body, "vmUuid");
    const vm = host.state.vms.get(vmUuid);
    if (vm) {
      vm.state = "stopped";
      delete vm.startedAt;
    }
    return { vmUuid, state: "stopped", found: vm !== undefined };
  },

  "vm/reboot": ({ host, body }) => {
    const vmUuid = requireString(body, "vmUuid");
    const vm = host.state.vms.get(vmUuid);
    if (!vm) throw vmNotFound(vmUuid, host.uuid);
    if (vm.state !== "running") throw CommandError.conflict("VM_NOT_RUNNING", `vm ${vmUuid} is ${vm.state} on host ${host.uuid}`);
    vm.startedAt = new Date().toISOString();
    return { vmUuid, state: "running" };
  },

  "vm/destroy": ({ host, body }) => {
    const vmUuid = requireString(body, "vmUuid");
    const taken = host.state.takeVm(vmUuid);
    return { vmUuid, state: "destroyed", found: taken !== undefined };
  },

  /**
   * Live-migrates a running VM to another host of the same sim, named by `targetHostUuid` or
   * `targetAgentUrl`. The memory copy runs `durationMs` (default: the host's); the VM and its
   * vNICs move when it ends, if the VM still runs here and the target still answers. Host-level
   * rules (EIPs) stay where they are — re-applying them on the target is the management plane's job.
   * A repeat with the same task id joins the running copy (the task cache), it does not start another.
   */
  "vm/migrate": async ({ host, hosts, body }) => {
    const vmUuid = requireString(body, "vmUuid");
    const targetHostUuid = optionalString(body, "targetHostUuid");
    const targetAgentUrl = optionalString(body, "targetAgentUrl");
    const volumeUuids = optionalStringList(body, "volumeUuids", VOLUME_TASK_WAIT_MAX_VOLUMES, { allowEmpty: true }) ?? [];
    const durationMs = optionalNonNegativeInt(body, "durationMs") ?? host.migrateDurationMs;
    const ref = targetHostUuid ?? targetAgentUrl;
    if (ref === undefined) throw CommandError.missingField("targetHostUuid");
    const target = hosts.find(ref);
    if (!target) throw CommandError.notFound("TARGET_HOST_NOT_FOUND", `target host ${ref} not found`);
    if (target.uuid === host.uuid) throw CommandError.invalidField(targetHostUuid ? "targetHostUuid" : "targetAgentUrl", "another host");
    const checkMovable = (): VmRecord => {
      // A real migration needs the target's hypervisor to take the memory stream.
      if (!target.listening) throw new CommandError(503, "TARGET_HOST_UNREACHABLE", `target host ${target.uuid} does not answer`);
      const vm = host.state.vms.get(vmUuid);
      if (!vm) throw vmNotFound(vmUuid, host.uuid);
      if (vm.state !== "running") throw CommandError.conflict("VM_NOT_RUNNING", `vm ${vmUuid} is ${vm.state} on host ${host.uuid}`);
      if (target.state.vms.get(vmUuid)?.state === "running") {
        throw CommandError.conflict("VM_EXISTS_ON_TARGET", `vm ${vmUuid} is already running on host ${target.uuid}`);
      }
      return vm;
    };
    const vm = checkMovable();
    if (host.state.migrations.copying(vmUuid)) {
      throw CommandError.conflict(AgentErrorCode.VM_MIGRATING, `vm ${vmUuid} is already migrating from host ${host.uuid}`);
    }
    // libvirt refuses to migrate a domain with an active block job (a backup's drive-mirror/backup job):
    // one on the disks the caller names, or one started as the VM's (a disk the caller's list missed).
    const onDisks = volumeUuids.length === 0 ? [] : host.state.volumeTasks.running({ volumeUuids, kinds: ["backup"] });
    const ofVm = host.state.volumeTasks.list({ kind: "backup", includeFinished: false }).filter((t) => t.args["vmUuid"] === vmUuid);
    const blockJobs = [...new Map([...onDisks, ...ofVm].map((t) => [t.taskUuid, t])).values()];
    if (blockJobs.length > 0) {
      const named = blockJobs.map((t) => `${t.taskUuid} (${t.state}, volume ${t.volumeUuid})`).join(", ");
      throw CommandError.conflict(AgentErrorCode.BLOCK_JOB_ACTIVE, `vm ${vmUuid} cannot migrate while backup tasks run on its volumes: ${named}`);
    }
    await host.state.migrations.run(
      { vmUuid, targetHostUuid: target.uuid, volumeUuids, durationMs, memoryBytesTotal: vm.memoryBytes },
      () => {
        checkMovable();
        const taken = host.state.takeVm(vmUuid);
        if (!taken) throw vmNotFound(vmUuid, host.uuid);
        target.state.vms.set(vmUuid, { ...taken.vm, migratedFrom: host.uuid });
        for (const nic of taken.nics) target.state.nics.set(nic.nicUuid, nic);
      },
    );
    return { vmUuid, state: "running", sourceHostUuid: host.uuid, targetHostUuid: target.uuid };
  },

  /** The last migration of the VM from this host: copying, or how it ended. */
  "vm/migrate/status": ({ host, body }) => {
    const vmUuid = requireString(body, "vmUuid");
    const status = host.state.migrations.status(vmUuid);
    if (!status) throw CommandError.notFound("VM_NOT_FOUND", `no migration of vm ${vmUuid} from host ${host.uuid}`);
    return status;
  },

  /** Aborts the running copy (its `vm/migrate` answers 409 MIGRATION_ABORTED); `aborted: false` when none runs. */
  "vm/migrate/abort": ({ host, body }) => {
    const vmUuid = requireString(body, "vmUuid");
    return { vmUuid, aborted: host.state.migrations.abort(vmUuid) };
  },
};
