import { CommandError } from "../command-error";
import { optionalString, requireString } from "../fields";
import type { EipRule } from "../host-state";
import type { ProtocolHandlers } from "./types";

/**
 * Elastic-IP rules keyed by eip uuid. Apply replaces the rule of the same eip (so a repeat is
 * harmless) but refuses a vip already used by another eip on the host, like a real NAT table
 * would; release succeeds when the rule is already gone.
 */
export const eipCommands: ProtocolHandlers<"eip/apply" | "eip/release"> = {
  "eip/apply": ({ host, body }) => {
    const eipUuid = requireString(body, "eipUuid");
    const vip = requireString(body, "vip");
    const guestIp = requireString(body, "guestIp");
    const nicUuid = requireString(body, "nicUuid");
    const vmUuid = optionalString(body, "vmUuid");
    for (const other of host.state.eips.values()) {
      if (other.vip === vip && other.eipUuid !== eipUuid) {
        throw CommandError.conflict("VIP_IN_USE", `vip ${vip} is already used by eip ${other.eipUuid} on host ${host.uuid}`);
      }
    }
    const rule: EipRule = { eipUuid, vip, guestIp, nicUuid, appliedAt: new Date().toISOString() };
    if (vmUuid !== undefined) rule.vmUuid = vmUuid;
    host.state.eips.set(eipUuid, rule);
    return { eipUuid, applied: true };
  },

  "eip/release": ({ host, body }) => {
    const eipUuid = requireString(body, "eipUuid");
    const found = host.state.eips.delete(eipUuid);
    return { eipUuid, released: true, found };
  },
};
