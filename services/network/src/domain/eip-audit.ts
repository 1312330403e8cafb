import type { AgentHost, HostDirectory } from "@stratum/agent-client";
import type { EipRuleInfo } from "@stratum/agent-protocol";
import { errorMessage, type Logger } from "@stratum/core";
import { releaseTaskId, type EipAgents } from "../clients/eip-agents";
import type { VmDirectory } from "../clients/vms";
import type { EipStore } from "../store/eip-store";
import type { EipCollector } from "./eip-collector";
import { bindingOf } from "./eip-sync";

/** A rule, as an audit compares them. */
export interface AuditRule {
  eipUuid: string;
  vipIp: string;
  guestIp: string;
  vmNicUuid: string;
}

/** How one host's agent differs from the database. */
export interface HostDrift {
  hostUuid: string;
  /** Wanted there by the database, absent on the agent (or there with other addresses). */
  missing: AuditRule[];
  /** On the agent, not wanted there by the database. */
  stale: AuditRule[];
  /** Set when the host or its agent could not be asked. */
  error: string;
}

export interface EipAuditDeps {
  store: EipStore;
  vms: VmDirectory;
  hosts: HostDirectory;
  agents: EipAgents;
  collector: EipCollector;
  log: Logger;
}

/**
 * Compares agents with the database: the rules a host must have are those of the EIPs bound to
 * the VMs whose EIP host it is (compute's placement); anything else on its agent is stale.
 * `reconcile` repairs a host (a reconnected agent, one that lost its rules in a reboot): the
 * database's belief of what the agent has is replaced by what it answered, rules of EIPs the
 * database does not know are released, and every EIP concerned gets a sync — which applies what
 * is missing and releases what is stale, in the EIP's queue like any other change.
 */
export class EipAudit {
  constructor(private readonly d: EipAuditDeps) {}

  async audit(hostUuids: readonly string[], signal?: AbortSignal): Promise<HostDrift[]> {
    const hosts = hostUuids.length > 0 ? hostUuids : (await this.d.hosts.connected(signal)).map((h) => h.uuid);
    return Promise.all(hosts.map((h) => this.#drift(h, signal).then((d) => d.drift)));
  }

  async reconcile(hostUuid: string, signal?: AbortSignal): Promise<HostDrift> {
    const { drift, host, onAgent } = await this.#drift(hostUuid, signal);
    if (!host || !onAgent) return drift;
    const known = new Set((await this.d.store.believeAgent(hostUuid, onAgent.map(toAuditRule))));
    // Rules of EIPs the database does not know (deleted while the host was away): no sync would release them.
    for (const r of onAgent.filter((r) => !known.has(r.eipUuid))) {
      try {
        await this.d.agents.release(host, r.eipUuid, undefined, releaseTaskId(r.eipUuid, hostUuid, undefined), signal);
        this.d.log.info("released the rule of an unknown elastic IP on a reconnected host", { hostUuid, eipUuid: r.eipUuid, vip: r.vip });
      } catch (e) {
        this.d.log.warn("could not release the rule of an unknown elastic IP; the next reconcile retries", { hostUuid, eipUuid: r.eipUuid, error: errorMessage(e) });
      }
    }
    const concerned = new Set([...known, ...drift.missing.map((m) => m.eipUuid), ...drift.stale.map((s) => s.eipUuid).filter((u) => known.has(u))]);
    await this.d.store.kick([...concerned]);
    this.d.collector.kick([...concerned]);
    return drift;
  }

  async #drift(hostUuid: string, signal?: AbortSignal): Promise<{ drift: HostDrift; host?: AgentHost; onAgent?: EipRuleInfo[] }> {
    const drift: HostDrift = { hostUuid, missing: [], stale: [], error: "" };
    let host: AgentHost;
    let onAgent: EipRuleInfo[];
    let wanted: AuditRule[];
    try {
      host = await this.d.hosts.host(hostUuid, signal);
      [onAgent, wanted] = await Promise.all([this.d.agents.list(host, signal), this.#wanted(hostUuid, signal)]);
    } catch (e) {
      drift.error = errorMessage(e);
      return { drift };
    }
    const agentBy = new Map(onAgent.map((r) => [r.eipUuid, toAuditRule(r)]));
    const wantedBy = new Map(wanted.map((r) => [r.eipUuid, r]));
    for (const w of wanted) if (!same(agentBy.get(w.eipUuid), w)) drift.missing.push(w);
    for (const [uuid, r] of agentBy) if (!same(wantedBy.get(uuid), r)) drift.stale.push(r);
    return { drift, host, onAgent };
  }

  /** The rules the database wants on the host. */
  async #wanted(hostUuid: string, signal?: AbortSignal): Promise<AuditRule[]> {
    const vms = await this.d.vms.eipVmsOn(hostUuid, signal);
    if (vms.length === 0) return [];
    const out: AuditRule[] = [];
    for (const e of await this.d.store.ofVms(vms)) {
      const b = bindingOf(e);
      if (b && !e.deleting) out.push({ eipUuid: e.uuid, vipIp: e.vipIp, guestIp: b.guestIp, vmNicUuid: b.vmNicUuid });
    }
    return out;
  }
}

function toAuditRule(r: EipRuleInfo): AuditRule {
  return { eipUuid: r.eipUuid, vipIp: r.vip, guestIp: r.guestIp, vmNicUuid: r.nicUuid };
}

function same(a: AuditRule | undefined, b: AuditRule): boolean {
  return a !== undefined && a.vipIp === b.vipIp && a.guestIp === b.guestIp && a.vmNicUuid === b.vmNicUuid;
}
