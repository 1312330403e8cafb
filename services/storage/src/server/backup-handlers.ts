import { BackupService } from "@stratum/proto/stratum/storage/v1/backup_pb";
import { serviceApi, type ServiceApi } from "@stratum/runtime";
import { decodePageToken, encodePageToken, pageSize, pageTokenField, resourceUuid } from "@stratum/validation";
import type { BackupManager } from "../domain/backup-manager";
import type { BackupStore } from "../store/backup-store";
import { BACKUP_MODE_FROM_PROTO, BACKUP_STATE_FROM_PROTO, backupStorageToProto, backupToProto } from "./backup-convert";

/**
 * BackupService: the handlers only call the domain. The kit validates each request (limits in
 * backup.proto), routes a backup's mutations to the owner of its UUID (chosen before routing, from
 * the request id when there is one) and answers retried request ids. Reads come from Postgres.
 */
export function backupApi(manager: BackupManager, store: BackupStore): ServiceApi {
  return serviceApi(
    BackupService,
    {
      async addBackupStorage(req) {
        const s = await manager.addStorage({ uuid: req.uuid, name: req.name, totalCapacity: Number(req.totalCapacityBytes), clientRequestId: req.clientRequestId || null });
        return { backupStorage: backupStorageToProto(s) };
      },
      async getBackupStorage(req) {
        return { backupStorage: backupStorageToProto(await manager.getStorage(req.uuid)) };
      },
      async listBackupStorages(req) {
        const limit = pageSize(req.pageSize);
        const rows = await store.listStorages({ afterSeq: decodePageToken(req.pageToken, {}), limit: limit + 1 });
        const page = rows.slice(0, limit);
        return { backupStorages: page.map(backupStorageToProto), nextPageToken: rows.length > limit ? encodePageToken(page[page.length - 1]!.seq, {}) : "" };
      },
      async createBackup(req) {
        const b = await manager.create({
          uuid: req.uuid,
          name: req.name,
          volumeUuid: req.volumeUuid,
          backupStorageUuid: req.backupStorageUuid,
          mode: BACKUP_MODE_FROM_PROTO.get(req.mode)!, // the proto rules admit FULL and INCREMENTAL only
          clientRequestId: req.clientRequestId,
        });
        return { backup: backupToProto(b), jobUuid: b.jobUuid };
      },
      async getBackup(req) {
        return { backup: backupToProto(await manager.get(req.uuid)) };
      },
      async listBackups(req) {
        const state = BACKUP_STATE_FROM_PROTO.get(req.state);
        const limit = pageSize(req.pageSize);
        const rows = await store.list({
          ...(req.volumeUuid ? { volumeUuid: req.volumeUuid } : {}),
          ...(state ? { state } : {}),
          afterSeq: decodePageToken(req.pageToken, backupFilters(req)),
          limit: limit + 1,
        });
        const page = rows.slice(0, limit);
        return { backups: page.map(backupToProto), nextPageToken: rows.length > limit ? encodePageToken(page[page.length - 1]!.seq, backupFilters(req)) : "" };
      },
      async restoreBackup(req) {
        const { backup, jobUuid } = await manager.restore(req.uuid, req.targetVolumeUuid, req.clientRequestId);
        return { backup: backupToProto(backup), jobUuid };
      },
      async deleteBackup(req) {
        return { backups: (await manager.delete(req.uuid, req.cascade)).map(backupToProto) };
      },
    },
    {
      addBackupStorage: {
        normalize: (r) => (r.uuid ? r : { ...r, uuid: resourceUuid("backup-storage", r) }),
        owner: (r) => r.uuid,
        requestId: (r) => r.clientRequestId,
      },
      listBackupStorages: { validate: (r, v) => pageTokenField(v, "page_token", r.pageToken, {}) },
      createBackup: {
        // The backup's UUID (and so its job's) is chosen before routing: a retry reaches the same
        // owner, the same row and the same job.
        normalize: (r) => (r.uuid ? r : { ...r, uuid: resourceUuid("backup", r) }),
        owner: (r) => r.uuid,
        requestId: (r) => r.clientRequestId,
      },
      listBackups: { validate: (r, v) => pageTokenField(v, "page_token", r.pageToken, backupFilters(r)) },
      restoreBackup: { owner: (r) => r.uuid, requestId: (r) => r.clientRequestId },
      deleteBackup: { owner: (r) => r.uuid, requestId: (r) => r.clientRequestId },
    },
  );
}

/** The filters of a backup listing, which its page tokens are bound to. */
function backupFilters(r: { volumeUuid: string; state: number }) {
  return { volumeUuid: r.volumeUuid, state: r.state };
}
