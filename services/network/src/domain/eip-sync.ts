import type { ChainTaskQueue } from "@stratum/chain-task";
import { Code, errorMessage, StratumError, type Logger } from "@stratum/core";
import { isFenced, type AgentHost, type HostDirectory } from "@stratum/agent-client";
import { applyTaskId, releaseTaskId, type EipAgents, type EipRuleSpec } from "../clients/eip-agents";
import type { VmDirectory } from "../clients/vms";
import type { Binding, EipStore, Observed } from "../store/eip-store";
import type { EipRow, EipRuleRow } from "../store/schema";

export interface EipSyncDeps {
  store: EipStore;
  vms: VmDirectory;
  hosts: HostDirectory;
  agents: EipAgents;
  queue: ChainTaskQueue;
  log: Logger;
  /** Gives back an EIP's VIP, in the transaction that deletes the EIP. */
  releaseVip: Parameters<EipStore["remove"]>[2];
  /** Told when a failed attach's rollback matched no row (a metric counts them). */
  onRollbackUnmatched?: () => void;
}

/** How long a failed sync waits before the collector retries it: doubling from 200 ms to 10 s. */
export function retryBackoffMs(attempts: number): number {
  return Math.min(200 * 2 ** Math.max(0, attempts - 1), 10_000);
}

/** Passes of one sync before it leaves the rest to the collector: each pass follows a change made while the last one ran. */
const MAX_PASSES = 5;

/**
 * Brings the agents to an EIP's binding, level-triggered: it compares where the rule must be (the
 * VM's host while it runs there, as compute says) with the rules the database believes the
 * agents have (`eip_rules`), releases what is not wanted, applies what is missing, and records the
 * EIP's observed status. It runs in the EIP's queue on its owner, so an attach's apply, a detach
 * and a VM stop's release run one after the other in the order they came.
 *
 * Every request to change the EIP moves its `sync_gen` on; a sync ends by recording the
 * generation it reached, and goes round again when a request came while it ran (the seed 000
 * race: a VM stopped during a held apply gets its release right after the apply). A failure
 * leaves the generation undone with the EIP in Error and a retry time: the collector runs it again.
 */
export class EipSyncer {
  constructor(private readonly d: EipSyncDeps) {}

  /** Queues a sync of the EIP on this replica (coalesced with one already waiting). */
  request(uuid: string): Promise<EipRow | undefined> {
    return this.d.queue.submit({ signature: eipQueue(uuid), name: "sync-eip", dedupKey: "sync", run: () => this.run(uuid) });
  }

  /**
   * The sync, in the EIP's queue. `attach` is the binding an attach just recorded: if its apply
   * fails, that binding is rolled back — only if it is still the EIP's (a conditional update) —
   * instead of retried. Undefined when the EIP is gone (deleted) or another owner took it.
   */
  async run(uuid: string, attach?: Binding): Promise<EipRow | undefined> {
    const current = await this.d.store.get(uuid);
    if (!current) return undefined;
    if (!attach && current.syncGen <= current.syncedGen) return current;
    let reason = "";
    for (let pass = 0; pass < MAX_PASSES; pass++) {
      const eip = await this.d.store.claim(uuid);
      if (!eip) return undefined;
      const { fence, syncGen: gen } = eip;
      let wanted: EipRuleSpec & { hostUuid: string } | null;
      try {
        wanted = await this.#wanted(eip);
      } catch (e) {
        return this.#failed(eip, `could not learn where VM ${eip.vmUuid} runs: ${errorMessage(e)}`, eip.hostUuid);
      }
      for (const rule of await this.d.store.rules(uuid)) {
        if (!rule.taskId) continue;
        const joined = await this.#join(eip, rule);
        if (joined !== true) return joined;
      }
      for (const rule of await this.d.store.rules(uuid)) {
        if (wanted && sameRule(rule, wanted) && rule.state === "Applied") continue;
        if (wanted && rule.hostUuid === wanted.hostUuid) continue; // replaced by the apply below (an apply replaces the EIP's rule)
        const released = await this.#release(eip, rule);
        if (released !== true) return released;
      }
      if (wanted) {
        const rules = await this.d.store.rules(uuid);
        if (!rules.some((r) => sameRule(r, wanted) && r.state === "Applied")) {
          const applied = await this.#apply(eip, wanted);
          if (applied !== true) {
            if (attach) {
              reason = `attach failed: ${applied.reason}`;
              await this.#rollBack(uuid, attach, reason);
              attach = undefined;
              continue; // the next pass releases what the failed apply may have left, and settles the status
            }
            return this.#failed(eip, applied.reason, wanted.hostUuid);
          }
        }
      }
      attach = undefined;
      if (eip.deleting && (await this.d.store.remove(uuid, fence, this.d.releaseVip))) return undefined;
      const observed: Observed = { status: !eip.vmNicUuid ? "Detached" : wanted ? "Active" : "Down", hostUuid: wanted?.hostUuid ?? null, reason: eip.vmNicUuid ? "" : reason };
      const done = await this.d.store.synced(uuid, fence, gen, observed);
      if (!done || done.syncGen <= done.syncedGen) return done;
      // A change came while this pass ran (a VM stop during the apply): follow it now.
    }
    return this.d.store.get(uuid);
  }

  /** Where the EIP's rule must be, or null: bound, not being deleted, and its VM running on a host. */
  async #wanted(eip: EipRow): Promise<(EipRuleSpec & { hostUuid: string }) | null> {
    const b = bindingOf(eip);
    if (!b || eip.deleting) return null;
    const placement = await this.d.vms.placement(b.vmUuid);
    if (!placement.eipHostUuid) return null;
    return { eipUuid: eip.uuid, vipIp: eip.vipIp, guestIp: b.guestIp, vmNicUuid: b.vmNicUuid, vmUuid: b.vmUuid, hostUuid: placement.eipHostUuid };
  }

  /**
   * Learns how a command sent earlier for a rule ended — one whose answer was lost may still run
   * on the agent, and a contrary command sent now could run before it. The same command goes
   * again with its task id and fence: the agent answers it from its first run once that has
   * ended (or runs it, if it never ran). True once the rule's state is known; the failed sync's
   * outcome otherwise.
   */
  async #join(eip: EipRow, rule: EipRuleRow): Promise<true | EipRow | undefined> {
    const { uuid, fence } = eip;
    const what = rule.state === "Applying" ? "apply" : "release";
    try {
      const host = await this.#host(rule.hostUuid);
      if (!host) return (await this.d.store.dropRule(uuid, rule.hostUuid, fence)) ? true : this.d.store.get(uuid);
      if (rule.state === "Applying") await this.d.agents.apply(host, { ...rule, vmUuid: rule.vmUuid }, rule.taskFence!, rule.taskId!);
      else await this.d.agents.release(host, uuid, rule.taskFence!, rule.taskId!);
    } catch (e) {
      // Refused as fenced: a newer command for the EIP reached the agent, so this one can no longer run there.
      if (!isFenced(e)) return this.#failed(eip, `the ${what} sent earlier to host ${rule.hostUuid} has not answered: ${errorMessage(e)}`, rule.hostUuid);
    }
    const known = rule.state === "Applying" ? await this.d.store.putRule(rule, "Applied", fence) : await this.d.store.dropRule(uuid, rule.hostUuid, fence);
    return known ? true : this.d.store.get(uuid);
  }

  /** Releases a rule the EIP must not have: true, or the failed sync's outcome. */
  async #release(eip: EipRow, rule: EipRuleRow): Promise<true | EipRow | undefined> {
    const { uuid, fence } = eip;
    const taskId = releaseTaskId(uuid, rule.hostUuid, fence);
    if (!(await this.d.store.putRule(rule, "Releasing", fence, { taskId, fence, vmUuid: rule.vmUuid }))) return this.d.store.get(uuid);
    await this.d.store.observe(uuid, fence, { status: eip.deleting ? "Deleting" : "Releasing", hostUuid: rule.hostUuid, reason: "" });
    try {
      const host = await this.#host(rule.hostUuid);
      if (host) await this.d.agents.release(host, uuid, fence, taskId);
    } catch (e) {
      return this.#failed(eip, `release of its rule on host ${rule.hostUuid} failed: ${errorMessage(e)}`, rule.hostUuid);
    }
    if (!(await this.d.store.dropRule(uuid, rule.hostUuid, fence))) return this.d.store.get(uuid);
    return true;
  }

  /**
   * Applies the wanted rule: true, or why it failed. The rule is recorded, with the command,
   * before the apply is sent; a failed apply leaves it so (its outcome unknown) for the next
   * pass to join.
   */
  async #apply(eip: EipRow, wanted: EipRuleSpec & { hostUuid: string }): Promise<true | { reason: string }> {
    const { uuid, fence } = eip;
    const taskId = applyTaskId(uuid, fence);
    const rule = { eipUuid: uuid, hostUuid: wanted.hostUuid, vipIp: wanted.vipIp, guestIp: wanted.guestIp, vmNicUuid: wanted.vmNicUuid };
    if (!(await this.d.store.putRule(rule, "Applying", fence, { taskId, fence, vmUuid: wanted.vmUuid }))) return { reason: `elastic IP ${uuid} was taken over by another replica` };
    await this.d.store.observe(uuid, fence, { status: "Applying", hostUuid: wanted.hostUuid, reason: "" });
    try {
      const host = await this.#host(wanted.hostUuid);
      if (!host) return { reason: `host ${wanted.hostUuid} is not known to compute` };
      await this.d.agents.apply(host, wanted, fence, taskId);
    } catch (e) {
      return { reason: `apply on host ${wanted.hostUuid} failed: ${errorMessage(e)}` };
    }
    await this.d.store.putRule(rule, "Applied", fence);
    return true;
  }

  /**
   * Seed 000's rollback: the attach's binding is undone only if the EIP still has it. A rollback
   * that matches nothing (the NIC's address moved, or a detach came, while the apply ran) is
   * warned about with every id and counted — never silently ignored; the binding there now is
   * what the next pass brings the agents to.
   */
  async #rollBack(uuid: string, attach: Binding, reason: string): Promise<void> {
    const back = await this.d.store.rollbackBinding(uuid, attach, reason);
    if (back) {
      this.d.log.info("elastic IP attach failed: binding rolled back", { eipUuid: uuid, vmNicUuid: attach.vmNicUuid, guestIp: attach.guestIp, error: reason });
      return;
    }
    this.d.onRollbackUnmatched?.();
    this.d.log.warn("elastic IP attach rollback matched no row: the binding changed while the apply ran, so it is left as it is now", {
      eipUuid: uuid,
      vmNicUuid: attach.vmNicUuid,
      guestIp: attach.guestIp,
      vmUuid: attach.vmUuid,
      error: reason,
    });
  }

  /** The host's agent; undefined for a host compute no longer knows (deleted: it has no rules to release). */
  async #host(hostUuid: string): Promise<AgentHost | undefined> {
    try {
      return await this.d.hosts.host(hostUuid);
    } catch (e) {
      if (e instanceof StratumError && e.code === Code.NOT_FOUND) return undefined;
      throw e;
    }
  }

  async #failed(eip: EipRow, reason: string, hostUuid: string | null): Promise<EipRow | undefined> {
    this.d.log.warn("elastic IP sync failed; it is retried", { eipUuid: eip.uuid, hostUuid: hostUuid ?? "", error: reason });
    return this.d.store.failed(eip.uuid, eip.fence, reason, retryBackoffMs, hostUuid);
  }
}

/** The queue every mutation of an EIP runs in, on its owner. */
export function eipQueue(uuid: string): string {
  return `eip-${uuid}`;
}

export function bindingOf(e: EipRow): Binding | undefined {
  return e.vmNicUuid && e.vmUuid && e.guestIp ? { vmNicUuid: e.vmNicUuid, vmUuid: e.vmUuid, guestIp: e.guestIp } : undefined;
}

function sameRule(r: Pick<EipRuleRow, "hostUuid" | "vipIp" | "guestIp" | "vmNicUuid">, w: { hostUuid: string; vipIp: string; guestIp: string; vmNicUuid: string }): boolean {
  return r.hostUuid === w.hostUuid && r.vipIp === w.vipIp && r.guestIp === w.guestIp && r.vmNicUuid === w.vmNicUuid;
}
