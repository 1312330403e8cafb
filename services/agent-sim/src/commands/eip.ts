import type { EipRuleInfo } from "@stratum/agent-protocol";
import { CommandError } from "../command-error";
import { optionalString, requireString } from "../fields";
import type { EipRule } from "../host-state";
import { AgentErrorCode } from "../protocol";
import type { ProtocolHandlers } from "./types";

/**
 * Elastic-IP rules keyed by eip uuid. Apply replaces the rule of the same eip (so a repeat is
 * harmless) but refuses a vip already used by another eip on the host, like a real NAT table
 * would; release succeeds when the rule is already gone; list reads them back.
 */
export const eipCommands: ProtocolHandlers<"eip/apply" | "eip/release" | "eip/list"> = {
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

  /**
   * The applied rules, by eip uuid (a stable order to compare with a database's), optionally only
   * those applied with `vmUuid`. Unknown fields are refused: the management plane may release
   * what a list leaves out, so a filter the agent did not understand must not silently widen it.
   */
  "eip/list": ({ host, body }) => {
    for (const field of Object.keys(body)) {
      if (field !== "vmUuid") throw CommandError.badRequest(AgentErrorCode.INVALID_FIELD, `unknown field: ${field} (eip/list takes vmUuid)`);
    }
    const vmUuid = optionalString(body, "vmUuid");
    // An empty filter would match no rule: surely a caller's bug, not a question about "no VM".
    if (vmUuid === "") throw CommandError.invalidField("vmUuid", "a non-empty string");
    const eips = [...host.state.eips.values()]
      .filter((rule) => vmUuid === undefined || rule.vmUuid === vmUuid)
      .sort((x, y) => (x.eipUuid < y.eipUuid ? -1 : x.eipUuid > y.eipUuid ? 1 : 0))
      .map(ruleInfo);
    return { eips };
  },
};

/** A rule as the protocol names it: what `eip/apply` was told, without the sim's own bookkeeping. */
function ruleInfo(rule: EipRule): EipRuleInfo {
  const info: EipRuleInfo = { eipUuid: rule.eipUuid, vip: rule.vip, guestIp: rule.guestIp, nicUuid: rule.nicUuid };
  if (rule.vmUuid !== undefined) info.vmUuid = rule.vmUuid;
  return info;
}
