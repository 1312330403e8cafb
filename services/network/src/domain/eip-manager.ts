import { createHash } from "node:crypto";
import type { ChainTaskQueue } from "@stratum/chain-task";
import { Code, StratumError, type Logger } from "@stratum/core";
import type { EipStore } from "../store/eip-store";
import type { AddressOutcome, IpStore } from "../store/ip-store";
import type { NetworkStore } from "../store/network-store";
import type { EipRow, IpAddressRow } from "../store/schema";
import type { EipCollector } from "./eip-collector";
import { bindingOf, eipQueue, type EipSyncer } from "./eip-sync";
import { ipToInt } from "./ipv4";

export interface EipManagerDeps {
  eips: EipStore;
  ips: IpStore;
  networks: NetworkStore;
  syncer: EipSyncer;
  collector: EipCollector;
  queue: ChainTaskQueue;
  log: Logger;
}

export interface CreateEipSpec {
  uuid: string;
  name: string;
  l3NetworkUuid: string;
  vipIp: string;
  clientRequestId: string;
}

/**
 * Elastic-IP operations. Each mutation runs in the EIP's queue (`eip-<uuid>`) on its owner and
 * answers once its change is recorded: the binding for an attach, its removal for a detach. The
 * agent work follows in the same queue task (EipSyncer), so the caller never waits on an agent,
 * and the next operation on the EIP — a VM stop's release, another detach — runs after it.
 */
export class EipManager {
  constructor(private readonly d: EipManagerDeps) {}

  /** Allocates a VIP on a public network and creates a Detached EIP with it, in one transaction. */
  async create(spec: CreateEipSpec): Promise<EipRow> {
    return this.d.queue.submit({
      signature: eipQueue(spec.uuid),
      name: "create-eip",
      run: async () => {
        const existing = await this.d.eips.get(spec.uuid);
        if (existing) {
          if (spec.clientRequestId && existing.clientRequestId === spec.clientRequestId) return existing;
          throw new StratumError(Code.ALREADY_EXISTS, `elastic IP ${spec.uuid} already exists`, { reason: "EIP_ALREADY_EXISTS", resources: { eipUuid: spec.uuid } });
        }
        const network = await this.d.networks.get(spec.l3NetworkUuid);
        if (!network) throw StratumError.notFound("l3Network", spec.l3NetworkUuid);
        if (!network.public) {
          throw new StratumError(Code.FAILED_PRECONDITION, `L3 network ${network.uuid} is not public: an elastic IP's VIP comes from a public network`, {
            reason: "L3_NETWORK_NOT_PUBLIC",
            resources: { l3NetworkUuid: network.uuid },
          });
        }
        const ranges = await this.d.networks.ranges(network.uuid);
        const vipUuid = vipUuidOf(spec.uuid);
        // In the network's allocation queue, as NIC allocations are: concurrent creates on this
        // replica would otherwise race for the same free addresses inside their transactions.
        return this.d.queue.submit({ signature: `ip-${network.uuid}`, name: "allocate-vip", run: () => this.d.ips.sql.begin(async (tx) => {
          const [vip] = (await this.d.ips.allocate(
            [{ holderUuid: vipUuid, holderKind: "Vip", vmUuid: null, l3NetworkUuid: network.uuid, ...(spec.vipIp ? { ipInt: ipToInt(spec.vipIp) } : {}) }],
            ranges,
            tx,
          )) as [AddressOutcome];
          if ("error" in vip) throw vip.error;
          return this.d.eips.insert({ uuid: spec.uuid, name: spec.name, l3NetworkUuid: network.uuid, vipUuid, vipIp: vip.address.ip, clientRequestId: spec.clientRequestId || null }, tx);
        }) });
      },
    });
  }

  async get(uuid: string): Promise<EipRow> {
    const e = await this.d.eips.get(uuid);
    if (!e) throw StratumError.notFound("eip", uuid);
    return e;
  }

  /**
   * Binds the EIP to a NIC and applies its rule where the VM runs. The binding is committed
   * before the apply is sent (seed 000), and the call answers then, with the EIP Applying; the
   * apply follows in the same queue task, and a failed apply rolls the binding back if it is
   * still this one.
   */
  attach(uuid: string, vmNicUuid: string): Promise<EipRow> {
    return this.#answerEarly(uuid, "attach-eip", async (answer) => {
      const eip = await this.get(uuid);
      if (eip.vmNicUuid === vmNicUuid) {
        answer(eip); // bound there already: a retry
        await this.d.syncer.run(uuid);
        return;
      }
      if (eip.deleting) throw deleting(uuid);
      if (eip.vmNicUuid) {
        throw new StratumError(Code.FAILED_PRECONDITION, `elastic IP ${uuid} is attached to NIC ${eip.vmNicUuid} of VM ${eip.vmUuid}: detach it first`, {
          reason: "EIP_ATTACHED",
          resources: { eipUuid: uuid, vmNicUuid: eip.vmNicUuid, vmUuid: eip.vmUuid ?? "" },
        });
      }
      const nic = await this.#nic(vmNicUuid);
      if (nic.l3NetworkUuid === eip.l3NetworkUuid) {
        throw new StratumError(Code.FAILED_PRECONDITION, `NIC ${vmNicUuid} is on the elastic IP's own public network ${eip.l3NetworkUuid}: it needs no NAT`, {
          reason: "NIC_ON_VIP_NETWORK",
          resources: { eipUuid: uuid, vmNicUuid },
        });
      }
      const binding = { vmNicUuid, vmUuid: nic.vmUuid!, guestIp: nic.ip };
      const bound = await this.d.eips.bind(uuid, binding);
      if (!bound) throw await this.#refused(uuid);
      answer(bound);
      await this.d.syncer.run(uuid, binding);
    });
  }

  /** Removes the binding and releases the rule; answers with the EIP Releasing (or Detached). */
  detach(uuid: string): Promise<EipRow> {
    return this.#answerEarly(uuid, "detach-eip", async (answer) => {
      const unbound = await this.d.eips.unbind(uuid);
      const eip = unbound ?? (await this.get(uuid));
      answer(eip); // not bound (any more): nothing to detach
      await this.d.syncer.run(uuid);
    });
  }

  /**
   * Detaches the EIP (releasing its rule), then deletes it and gives its VIP back. Answers
   * undefined once it is gone, or the EIP Deleting when a release failed (the collector finishes
   * the delete once the release succeeds). Deleting an EIP that is gone answers undefined.
   */
  delete(uuid: string): Promise<EipRow | undefined> {
    return this.d.queue.submit({
      signature: eipQueue(uuid),
      name: "delete-eip",
      run: async () => {
        const eip = await this.d.eips.get(uuid);
        if (!eip) return undefined;
        if (!eip.deleting) await this.d.eips.unbind(uuid, true);
        return this.d.syncer.run(uuid);
      },
    });
  }

  /** Compute's kick: the EIPs bound to these VMs follow them. Their uuids. */
  async syncVms(vmUuids: readonly string[]): Promise<string[]> {
    const uuids = await this.d.eips.kickVms(vmUuids);
    this.d.collector.kick(uuids);
    return uuids;
  }

  /**
   * A VM's destroy: the EIPs bound to its NICs are detached (their rules released by their
   * syncs), then the NICs' addresses are given back — in that order, so no EIP ever maps to an
   * address someone else may hold.
   */
  async releaseVmNics(vmUuids: readonly string[]): Promise<{ released: IpAddressRow[]; detached: string[] }> {
    const detached: string[] = [];
    for (const eip of await this.d.eips.ofVms(vmUuids)) {
      if (await this.d.eips.unbind(eip.uuid)) detached.push(eip.uuid);
    }
    this.d.collector.kick(detached);
    const nics = await this.d.ips.ofVms(vmUuids);
    const released = await this.d.ips.release(nics.map((n) => n.holderUuid));
    return { released, detached };
  }

  /**
   * Runs `work` in the EIP's queue and answers the caller as soon as `work` calls `answer` —
   * the rest of `work` (the agent call) goes on in the queue task. A throw before `answer` is
   * the caller's error; one after it is logged (the EIP's status already says what happened).
   */
  #answerEarly(uuid: string, name: string, work: (answer: (e: EipRow) => void) => Promise<void>): Promise<EipRow> {
    return new Promise<EipRow>((resolve, reject) => {
      let answered = false;
      const answer = (e: EipRow) => {
        answered = true;
        resolve(e);
      };
      this.d.queue.submit({ signature: eipQueue(uuid), name, run: () => work(answer) }).then(
        () => {
          if (!answered) reject(new StratumError(Code.INTERNAL, `${name} of elastic IP ${uuid} ended without an answer`));
        },
        (e: unknown) => {
          if (!answered) reject(e);
          else this.d.log.warn(`${name}: the agent work after the answer failed; the collector retries it`, { eipUuid: uuid, error: e instanceof Error ? e.message : String(e) });
        },
      );
    });
  }

  async #nic(vmNicUuid: string): Promise<IpAddressRow> {
    const nic = await this.d.ips.ofHolder(vmNicUuid);
    if (!nic || nic.holderKind !== "Nic") {
      throw new StratumError(Code.NOT_FOUND, `VM NIC ${vmNicUuid} not found: it holds no address (the VM does not exist or is not on an L3 network)`, {
        reason: "VM_NIC_NOT_FOUND",
        resources: { vmNicUuid },
      });
    }
    return nic;
  }

  /** Why a bind matched nothing: the EIP was bound or is being deleted meanwhile. */
  async #refused(uuid: string): Promise<StratumError> {
    const now = await this.get(uuid);
    if (now.deleting) return deleting(uuid);
    const b = bindingOf(now);
    return new StratumError(Code.ABORTED, `elastic IP ${uuid} changed concurrently${b ? ` (now attached to NIC ${b.vmNicUuid})` : ""}; retry`, {
      reason: "EIP_CONCURRENT_UPDATE",
      resources: { eipUuid: uuid },
    });
  }
}

function deleting(uuid: string): StratumError {
  return new StratumError(Code.FAILED_PRECONDITION, `elastic IP ${uuid} is being deleted`, { reason: "EIP_DELETING", resources: { eipUuid: uuid } });
}

/** The VIP of an EIP: derived from its uuid, so a retried create allocates for the same holder and finds its address. */
export function vipUuidOf(eipUuid: string): string {
  const h = createHash("sha256").update(`vip/${eipUuid}`).digest("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${((parseInt(h[16]!, 16) & 3) | 8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}
