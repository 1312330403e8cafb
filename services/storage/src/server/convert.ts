import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { VolumeKind, VolumeState, type PrimaryStorageSchema, type VolumeSchema, type VolumeTaskSchema } from "@stratum/proto/stratum/storage/v1/volume_pb";
import type { HostVolumeTask } from "../clients/volume-agents";
import type { PrimaryStorageRow, VolumeKindValue, VolumeRow, VolumeStateValue } from "../store/schema";

/** Database enum ↔ proto enum: one table each way, so a new state cannot be half-mapped. */
export const VOLUME_STATE_TO_PROTO: Record<VolumeStateValue, VolumeState> = {
  Available: VolumeState.AVAILABLE,
  InUse: VolumeState.IN_USE,
  Deleted: VolumeState.DELETED,
  Restoring: VolumeState.RESTORING,
};
export const VOLUME_STATE_FROM_PROTO = new Map(Object.entries(VOLUME_STATE_TO_PROTO).map(([k, v]) => [v, k as VolumeStateValue]));

export const VOLUME_KIND_TO_PROTO: Record<VolumeKindValue, VolumeKind> = { Root: VolumeKind.ROOT, Data: VolumeKind.DATA };
export const VOLUME_KIND_FROM_PROTO = new Map(Object.entries(VOLUME_KIND_TO_PROTO).map(([k, v]) => [v, k as VolumeKindValue]));

export function volumeToProto(v: VolumeRow): MessageInitShape<typeof VolumeSchema> {
  return {
    uuid: v.uuid,
    name: v.name,
    primaryStorageUuid: v.primaryStorageUuid,
    kind: VOLUME_KIND_TO_PROTO[v.kind],
    sizeBytes: BigInt(v.sizeBytes),
    state: VOLUME_STATE_TO_PROTO[v.state],
    vmUuid: v.vmUuid ?? "",
    clientRequestId: v.clientRequestId ?? "",
    revision: BigInt(v.revision),
    createTime: timestampFromDate(v.createdAt),
    updateTime: timestampFromDate(v.updatedAt),
  };
}

export function storageToProto(s: PrimaryStorageRow): MessageInitShape<typeof PrimaryStorageSchema> {
  return {
    uuid: s.uuid,
    name: s.name,
    hostUuid: s.hostUuid ?? "",
    totalCapacityBytes: BigInt(s.totalCapacity),
    usedBytes: BigInt(s.usedBytes),
    createTime: timestampFromDate(s.createdAt),
  };
}

export function volumeTaskToProto(t: HostVolumeTask): MessageInitShape<typeof VolumeTaskSchema> {
  const started = Date.parse(t.startedAt);
  return {
    taskUuid: t.taskUuid,
    volumeUuid: t.volumeUuid,
    kind: t.kind,
    state: t.state,
    hostUuid: t.hostUuid,
    bytesDone: BigInt(t.bytesDone ?? 0),
    bytesTotal: BigInt(t.bytesTotal ?? 0),
    ...(Number.isNaN(started) ? {} : { startTime: timestampFromDate(new Date(started)) }),
  };
}
