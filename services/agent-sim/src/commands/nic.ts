import { CommandError } from "../command-error";
import { optionalString, requireString } from "../fields";
import type { NicRule } from "../host-state";
import type { ProtocolHandlers } from "./types";

/** vNIC attach/detach. Apply needs the VM on this host (a real agent plugs into the domain). */
export const nicCommands: ProtocolHandlers<"nic/apply" | "nic/release"> = {
  /** Attaches (or re-attaches, replacing) vNIC `nicUuid` to VM `vmUuid`. */
  "nic/apply": ({ host, body }) => {
    const nicUuid = requireString(body, "nicUuid");
    const vmUuid = requireString(body, "vmUuid");
    if (!host.state.vms.has(vmUuid)) {
      throw CommandError.notFound("VM_NOT_FOUND", `vm ${vmUuid} not found on host ${host.uuid}`);
    }
    const rule: NicRule = { nicUuid, vmUuid, appliedAt: new Date().toISOString() };
    const mac = optionalString(body, "mac");
    const ip = optionalString(body, "ip");
    const l3 = optionalString(body, "l3NetworkUuid");
    if (mac !== undefined) rule.mac = mac;
    if (ip !== undefined) rule.ip = ip;
    if (l3 !== undefined) rule.l3NetworkUuid = l3;
    host.state.nics.set(nicUuid, rule);
    return { nicUuid, vmUuid, applied: true };
  },

  /** Detaches a vNIC; succeeds if it is already gone. */
  "nic/release": ({ host, body }) => {
    const nicUuid = requireString(body, "nicUuid");
    const found = host.state.nics.delete(nicUuid);
    return { nicUuid, released: true, found };
  },
};
