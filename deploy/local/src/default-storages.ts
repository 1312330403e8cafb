import { BackupService } from "@stratum/proto/stratum/storage/v1/backup_pb";
import { StorageService } from "@stratum/proto/stratum/storage/v1/storage_pb";
import { closeClient, createClient } from "@stratum/rpc";

const TIB = 1024n ** 4n;

/** What the devstack creates so that volumes and backups work out of the box. */
export const DEFAULT_STORAGES = {
  primary: { name: "devstack-shared", totalCapacityBytes: 1024n * TIB, clientRequestId: "devstack-primary-storage" },
  backup: { name: "devstack-backup", totalCapacityBytes: 256n * TIB, clientRequestId: "devstack-backup-storage" },
} as const;

/**
 * Registers one shared primary storage and one backup storage. Their request ids make it a no-op
 * on a restart that kept the data (the retried call answers the first storage), so a devstack
 * always has exactly these two.
 */
export async function registerDefaultStorages(storageAddress: string): Promise<{ primaryStorageUuid: string; backupStorageUuid: string }> {
  const storage = createClient(StorageService, storageAddress);
  const backup = createClient(BackupService, storageAddress);
  try {
    const { primaryStorage } = await storage.addPrimaryStorage(DEFAULT_STORAGES.primary);
    const { backupStorage } = await backup.addBackupStorage(DEFAULT_STORAGES.backup);
    return { primaryStorageUuid: primaryStorage!.uuid, backupStorageUuid: backupStorage!.uuid };
  } finally {
    closeClient(storage);
    closeClient(backup);
  }
}
