import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { codeName } from "@stratum/core";
import { EipStatus, type EipSchema, type HostEipDriftSchema } from "@stratum/proto/stratum/network/v1/eip_pb";
import { IpHolderKind, type IpAddressSchema, type IpRangeSchema, type L3NetworkSchema, type NicIpResultSchema } from "@stratum/proto/stratum/network/v1/network_pb";
import type { HostDrift } from "../domain/eip-audit";
import { intToIp } from "../domain/ipv4";
import type { NicOutcome } from "../domain/network-manager";
import type { EipRow, EipStatusValue, IpAddressRow, IpHolderKindValue, IpRangeRow, L3NetworkRow } from "../store/schema";

/** Database enum ↔ proto enum: one table each way, so a new status cannot be half-mapped. */
export const EIP_STATUS_TO_PROTO: Record<EipStatusValue, EipStatus> = {
  Detached: EipStatus.DETACHED,
  Applying: EipStatus.APPLYING,
  Active: EipStatus.ACTIVE,
  Down: EipStatus.DOWN,
  Releasing: EipStatus.RELEASING,
  Error: EipStatus.ERROR,
  Deleting: EipStatus.DELETING,
};
export const EIP_STATUS_FROM_PROTO = new Map(Object.entries(EIP_STATUS_TO_PROTO).map(([k, v]) => [v, k as EipStatusValue]));

const HOLDER_TO_PROTO: Record<IpHolderKindValue, IpHolderKind> = { Nic: IpHolderKind.NIC, Vip: IpHolderKind.VIP };

export function l3ToProto(n: L3NetworkRow): MessageInitShape<typeof L3NetworkSchema> {
  return {
    uuid: n.uuid,
    name: n.name,
    cidr: n.cidr,
    gateway: n.gateway,
    dns: n.dns,
    public: n.public,
    clientRequestId: n.clientRequestId ?? "",
    createTime: timestampFromDate(n.createdAt),
  };
}

export function rangeToProto(r: IpRangeRow): MessageInitShape<typeof IpRangeSchema> {
  return { uuid: r.uuid, l3NetworkUuid: r.l3NetworkUuid, startIp: intToIp(r.startInt), endIp: intToIp(r.endInt), createTime: timestampFromDate(r.createdAt) };
}

export function addressToProto(a: IpAddressRow): MessageInitShape<typeof IpAddressSchema> {
  return { l3NetworkUuid: a.l3NetworkUuid, ip: a.ip, holderKind: HOLDER_TO_PROTO[a.holderKind], holderUuid: a.holderUuid, vmUuid: a.vmUuid ?? "", createTime: timestampFromDate(a.createdAt) };
}

export function nicResultToProto(o: NicOutcome): MessageInitShape<typeof NicIpResultSchema> {
  if ("error" in o) return { nicUuid: o.nicUuid, errorCode: codeName(o.error.code), errorMessage: o.error.message };
  return { nicUuid: o.nicUuid, ip: o.address.ip, prefixLength: o.network.prefixLength, gateway: o.network.gateway, dns: o.network.dns };
}

export function eipToProto(e: EipRow): MessageInitShape<typeof EipSchema> {
  return {
    uuid: e.uuid,
    name: e.name,
    l3NetworkUuid: e.l3NetworkUuid,
    vipUuid: e.vipUuid,
    vipIp: e.vipIp,
    vmNicUuid: e.vmNicUuid ?? "",
    vmUuid: e.vmUuid ?? "",
    guestIp: e.guestIp ?? "",
    status: EIP_STATUS_TO_PROTO[e.status],
    statusReason: e.statusReason,
    hostUuid: e.hostUuid ?? "",
    clientRequestId: e.clientRequestId ?? "",
    createTime: timestampFromDate(e.createdAt),
    updateTime: timestampFromDate(e.updatedAt),
    revision: BigInt(e.revision),
  };
}

export function driftToProto(d: HostDrift): MessageInitShape<typeof HostEipDriftSchema> {
  return { hostUuid: d.hostUuid, missing: d.missing, stale: d.stale, error: d.error };
}
