import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { BackupMode, BackupState, type BackupSchema, type BackupStorageSchema } from "@stratum/proto/stratum/storage/v1/backup_pb";
import type { BackupModeValue, BackupRow, BackupStateValue, BackupStorageRow } from "../store/schema";

/** Database enum ↔ proto enum: one table each way, so a new state cannot be half-mapped. */
export const BACKUP_STATE_TO_PROTO: Record<BackupStateValue, BackupState> = {
  Creating: BackupState.CREATING,
  Available: BackupState.AVAILABLE,
  Error: BackupState.ERROR,
  Canceled: BackupState.CANCELED,
  Restoring: BackupState.RESTORING,
  Deleting: BackupState.DELETING,
  Deleted: BackupState.DELETED,
};
export const BACKUP_STATE_FROM_PROTO = new Map(Object.entries(BACKUP_STATE_TO_PROTO).map(([k, v]) => [v, k as BackupStateValue]));

export const BACKUP_MODE_TO_PROTO: Record<BackupModeValue, BackupMode> = { Full: BackupMode.FULL, Incremental: BackupMode.INCREMENTAL };
export const BACKUP_MODE_FROM_PROTO = new Map(Object.entries(BACKUP_MODE_TO_PROTO).map(([k, v]) => [v, k as BackupModeValue]));

export function backupToProto(b: BackupRow): MessageInitShape<typeof BackupSchema> {
  return {
    uuid: b.uuid,
    name: b.name,
    volumeUuid: b.volumeUuid,
    backupStorageUuid: b.backupStorageUuid,
    mode: BACKUP_MODE_TO_PROTO[b.mode],
    parentBackupUuid: b.parentUuid ?? "",
    state: BACKUP_STATE_TO_PROTO[b.state],
    error: b.error,
    sizeBytes: BigInt(b.sizeBytes),
    jobUuid: b.jobUuid,
    clientRequestId: b.clientRequestId ?? "",
    revision: BigInt(b.revision),
    createTime: timestampFromDate(b.createdAt),
    updateTime: timestampFromDate(b.updatedAt),
  };
}

export function backupStorageToProto(s: BackupStorageRow): MessageInitShape<typeof BackupStorageSchema> {
  return {
    uuid: s.uuid,
    name: s.name,
    totalCapacityBytes: BigInt(s.totalCapacity),
    usedBytes: BigInt(s.usedBytes),
    createTime: timestampFromDate(s.createdAt),
  };
}
