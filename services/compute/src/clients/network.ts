import type { ServiceRouter } from "@stratum/bus";
import { Code, errorMessage, StratumError } from "@stratum/core";
import type { EipService } from "@stratum/proto/stratum/network/v1/eip_pb";
import type { NetworkService } from "@stratum/proto/stratum/network/v1/network_pb";

/** Deadline of one network call: each is a batch of statements on network's side (an EIP reconcile also talks to one agent). */
const CALL_TIMEOUT_MS = 10_000;
/** ReconcileHostEips compares and repairs one agent's rules: more than a statement. */
const RECONCILE_TIMEOUT_MS = 30_000;

/** One NIC whose address to ask network for. */
export interface NicIpAsk {
  nicUuid: string;
  vmUuid: string;
  l3NetworkUuid: string;
}

/** Network's answer for one NIC: its address, or the error it has none for. */
export type NicIpAnswer = { nicUuid: string; ip: string } | { nicUuid: string; error: StratumError };

/** What compute asks of network about its VMs' NICs and their elastic IPs. */
export interface VmNetwork {
  /** One AllocateNicIps call for the batch; throws (UNAVAILABLE `NETWORK_UNAVAILABLE`) when network did not answer. */
  allocateNicIps(asks: readonly NicIpAsk[]): Promise<NicIpAnswer[]>;
  /** One ReleaseVmNics call: the VMs' NIC addresses back, the EIPs bound to them detached. */
  releaseVmNics(vmUuids: readonly string[]): Promise<void>;
  /** ChangeNicIp: the NIC's new address (`ip`, or the next free one when empty). */
  changeNicIp(nicUuid: string, ip: string, clientRequestId: string): Promise<string>;
  /** One SyncVmEips call: the VMs' placement changed, their EIP rules are to follow. */
  syncVmEips(vmUuids: readonly string[]): Promise<void>;
  /** ReconcileHostEips: the host's agent (re)connected. */
  reconcileHostEips(hostUuid: string): Promise<void>;
}

/**
 * {@link VmNetwork} over the kit's routers to network. Network serves the batch calls on whichever
 * replica they reach, so their key only spreads the batches over its replicas; ChangeNicIp and
 * ReconcileHostEips go to the owner of the NIC and of the host.
 */
export function vmNetwork(network: ServiceRouter<typeof NetworkService>, eips: ServiceRouter<typeof EipService>): VmNetwork {
  return {
    async allocateNicIps(asks) {
      let results;
      try {
        ({ results } = await network.call(asks[0]!.vmUuid, (c) =>
          c.allocateNicIps({ nics: asks.map((a) => ({ nicUuid: a.nicUuid, vmUuid: a.vmUuid, l3NetworkUuid: a.l3NetworkUuid })) }, { timeoutMs: CALL_TIMEOUT_MS }),
        ));
      } catch (e) {
        throw networkUnavailable("allocate the NIC addresses", e);
      }
      const byNic = new Map(results.map((r) => [r.nicUuid, r]));
      return asks.map((a) => {
        const r = byNic.get(a.nicUuid);
        if (r && !r.errorCode && r.ip) return { nicUuid: a.nicUuid, ip: r.ip };
        const code = r ? (Code[r.errorCode as keyof typeof Code] ?? Code.INTERNAL) : Code.INTERNAL;
        const message = r ? r.errorMessage || `network answered no address (${r.errorCode || "no error code"})` : `network answered no result for NIC ${a.nicUuid}`;
        return {
          nicUuid: a.nicUuid,
          error: new StratumError(code, `the NIC of VM ${a.vmUuid} on L3 network ${a.l3NetworkUuid} got no address: ${message}`, {
            reason: nicReason(code),
            resources: { vmUuid: a.vmUuid, l3NetworkUuid: a.l3NetworkUuid },
          }),
        };
      });
    },
    async releaseVmNics(vmUuids) {
      await network.call(vmUuids[0]!, (c) => c.releaseVmNics({ vmUuids: [...vmUuids] }, { timeoutMs: CALL_TIMEOUT_MS }));
    },
    async changeNicIp(nicUuid, ip, clientRequestId) {
      const { result } = await network.call(nicUuid, (c) => c.changeNicIp({ nicUuid, ip, clientRequestId }, { timeoutMs: CALL_TIMEOUT_MS }));
      if (!result?.ip) throw new StratumError(Code.INTERNAL, `network answered no address for NIC ${nicUuid}`, { reason: "NIC_IP_MISSING", resources: { nicUuid } });
      return result.ip;
    },
    async syncVmEips(vmUuids) {
      await eips.call(vmUuids[0]!, (c) => c.syncVmEips({ vmUuids: [...vmUuids] }, { timeoutMs: CALL_TIMEOUT_MS }));
    },
    async reconcileHostEips(hostUuid) {
      await eips.call(hostUuid, (c) => c.reconcileHostEips({ hostUuid }, { timeoutMs: RECONCILE_TIMEOUT_MS }));
    },
  };
}

function nicReason(code: Code): string {
  return code === Code.RESOURCE_EXHAUSTED ? "L3_NETWORK_FULL" : code === Code.NOT_FOUND ? "L3_NETWORK_NOT_FOUND" : "NIC_IP_FAILED";
}

/** UNAVAILABLE `NETWORK_UNAVAILABLE`: network did not answer (a retry may reach it). */
function networkUnavailable(what: string, e: unknown): StratumError {
  const cause = StratumError.from(e);
  const code = cause.code === Code.INVALID_ARGUMENT || cause.code === Code.INTERNAL ? cause.code : Code.UNAVAILABLE;
  return new StratumError(code, `network could not ${what}: ${errorMessage(e)}`, { reason: code === Code.UNAVAILABLE ? "NETWORK_UNAVAILABLE" : cause.reason, cause });
}
