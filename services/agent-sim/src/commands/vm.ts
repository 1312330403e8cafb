import { CommandError } from "../command-error";
import { isJsonObject, optionalArray, optionalString, requirePositiveInt, requireString } from "../fields";
import type { NicRule } from "../host-state";
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
export const vmCommands: ProtocolHandlers<"vm/start" | "vm/stop" | "vm/reboot" | "vm/destroy" | "vm/migrate"> = {
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
   * `targetAgentUrl`. The VM and its vNICs move; host-level rules (EIPs) stay where they are —
   * re-applying them on the target is the management plane's job.
   */
  "vm/migrate": ({ host, hosts, body }) => {
    const vmUuid = requireString(body, "vmUuid");
    const targetHostUuid = optionalString(body, "targetHostUuid");
    const targetAgentUrl = optionalString(body, "targetAgentUrl");
    const ref = targetHostUuid ?? targetAgentUrl;
    if (ref === undefined) throw CommandError.missingField("targetHostUuid");
    const target = hosts.find(ref);
    if (!target) throw CommandError.notFound("TARGET_HOST_NOT_FOUND", `target host ${ref} not found`);
    if (target.uuid === host.uuid) throw CommandError.invalidField(targetHostUuid ? "targetHostUuid" : "targetAgentUrl", "another host");
    // A real migration needs the target's hypervisor to take the memory stream.
    if (!target.listening) throw new CommandError(503, "TARGET_HOST_UNREACHABLE", `target host ${target.uuid} does not answer`);
    const vm = host.state.vms.get(vmUuid);
    if (!vm) throw vmNotFound(vmUuid, host.uuid);
    if (vm.state !== "running") throw CommandError.conflict("VM_NOT_RUNNING", `vm ${vmUuid} is ${vm.state} on host ${host.uuid}`);
    if (target.state.vms.get(vmUuid)?.state === "running") {
      throw CommandError.conflict("VM_EXISTS_ON_TARGET", `vm ${vmUuid} is already running on host ${target.uuid}`);
    }
    const taken = host.state.takeVm(vmUuid);
    if (!taken) throw vmNotFound(vmUuid, host.uuid);
    target.state.vms.set(vmUuid, { ...taken.vm, migratedFrom: host.uuid });
    for (const nic of taken.nics) target.state.nics.set(nic.nicUuid, nic);
    return { vmUuid, state: "running", sourceHostUuid: host.uuid, targetHostUuid: target.uuid };
  },
};
