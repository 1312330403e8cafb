import type { AgentClient, AgentHost } from "@stratum/agent-client";
import type { EipRuleInfo } from "@stratum/agent-protocol";

/** A rule as network sends it to an agent. */
export interface EipRuleSpec {
  eipUuid: string;
  vipIp: string;
  guestIp: string;
  vmNicUuid: string;
  vmUuid: string | null;
}

/**
 * Network's calls to host agents for elastic-IP rules, typed by the agent protocol. Every apply
 * and release carries the EIP's fence (`eip-<uuid>`, the token its owner's sync claimed): an
 * agent refuses a late command of a replica that lost the EIP. A task id per sync makes a retry
 * of a command whose answer was lost safe (the agent answers it from the first run).
 */
export class EipAgents {
  constructor(private readonly client: AgentClient) {}

  /** Applies the rule; `taskId` (see {@link applyTaskId}) names the command, so sending it again joins the first. */
  async apply(host: AgentHost, r: EipRuleSpec, fence: number, taskId: string, signal?: AbortSignal): Promise<void> {
    await this.client.call(
      host.agentUrl,
      "eip/apply",
      { eipUuid: r.eipUuid, vip: r.vipIp, guestIp: r.guestIp, nicUuid: r.vmNicUuid, ...(r.vmUuid ? { vmUuid: r.vmUuid } : {}) },
      { taskId, fence: { resource: `eip-${r.eipUuid}`, token: fence }, hostUuid: host.uuid, ...(signal ? { signal } : {}) },
    );
  }

  /** Releases the EIP's rule on the host; `fence` undefined for a rule of an EIP the database does not know. */
  async release(host: AgentHost, eipUuid: string, fence: number | undefined, taskId: string, signal?: AbortSignal): Promise<void> {
    await this.client.call(host.agentUrl, "eip/release", { eipUuid }, {
      taskId,
      ...(fence === undefined ? {} : { fence: { resource: `eip-${eipUuid}`, token: fence } }),
      hostUuid: host.uuid,
      ...(signal ? { signal } : {}),
    });
  }

  async list(host: AgentHost, signal?: AbortSignal): Promise<EipRuleInfo[]> {
    const { eips } = await this.client.call(host.agentUrl, "eip/list", {}, { hostUuid: host.uuid, ...(signal ? { signal } : {}) });
    return eips;
  }

  close(): Promise<void> {
    return this.client.close();
  }
}

/** The task id of an apply: one per sync (its fence), so a retry within it is answered from the first run. */
export function applyTaskId(eipUuid: string, fence: number): string {
  return `eip-apply-${eipUuid}-${fence}`;
}

/** The task id of a release on a host; `fence` undefined for a rule of an EIP the database does not know. */
export function releaseTaskId(eipUuid: string, hostUuid: string, fence: number | undefined): string {
  return `eip-release-${eipUuid}-${hostUuid}-${fence ?? "orphan"}`;
}
