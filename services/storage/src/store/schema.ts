import { sql } from "drizzle-orm";
import { bigint, bigserial, check, index, pgSchema, text, timestamp, uniqueIndex, uuid } from "drizzle-orm/pg-core";
import { leasesTable, outboxTable, requestsTable } from "@stratum/db";

/** The storage service's own schema: no other service reads these tables. */
export const storage = pgSchema("storage");

export const volumeState = storage.enum("volume_state", ["Available", "InUse", "Deleted", "Restoring"]);
export const volumeKind = storage.enum("volume_kind", ["Root", "Data"]);

/**
 * Primary storages and their capacity accounting. `used_bytes` is the sum of the sizes of the
 * storage's volumes that are not Deleted: every create, resize and delete moves it in the same
 * statement or transaction as the volume, with a conditional UPDATE of this row; the CHECK is the
 * last word, so no interleaving of concurrent creates can over-commit a storage.
 */
export const primaryStorages = storage.table(
  "primary_storages",
  {
    uuid: uuid().primaryKey(),
    name: text().notNull(),
    /** The host of a local storage; null for shared storage. */
    hostUuid: uuid("host_uuid"),
    totalCapacity: bigint("total_capacity", { mode: "number" }).notNull(),
    usedBytes: bigint("used_bytes", { mode: "number" }).notNull().default(0),
    clientRequestId: text("client_request_id"),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    seq: bigserial({ mode: "number" }).notNull(),
  },
  (t) => [
    uniqueIndex("primary_storages_seq_uq").on(t.seq),
    uniqueIndex("primary_storages_client_request_id_uq").on(t.clientRequestId),
    index("primary_storages_host_idx").on(t.hostUuid),
    check("primary_storages_used_within_capacity", sql`${t.usedBytes} >= 0 AND ${t.usedBytes} <= ${t.totalCapacity}`),
  ],
);

/**
 * Volumes. A Deleted volume is kept (its bytes given back) so that a retried delete, or a read
 * after it, still finds what happened. `vm_uuid` is set exactly while the volume is InUse.
 */
export const volumes = storage.table(
  "volumes",
  {
    uuid: uuid().primaryKey(),
    name: text().notNull(),
    primaryStorageUuid: uuid("primary_storage_uuid").notNull(),
    kind: volumeKind().notNull(),
    sizeBytes: bigint("size_bytes", { mode: "number" }).notNull(),
    state: volumeState().notNull().default("Available"),
    vmUuid: uuid("vm_uuid"),
    clientRequestId: text("client_request_id"),
    /** The incarnation that wrote the volume last (`<replicaId>@<startedAt>`). */
    lastActor: text("last_actor").notNull().default(""),
    /** Increments with every change: a watcher orders what it sees by it. */
    revision: bigint({ mode: "number" }).notNull().default(1),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
    seq: bigserial({ mode: "number" }).notNull(),
  },
  (t) => [
    uniqueIndex("volumes_seq_uq").on(t.seq),
    uniqueIndex("volumes_client_request_id_uq").on(t.clientRequestId),
    index("volumes_primary_storage_idx").on(t.primaryStorageUuid),
    index("volumes_vm_idx").on(t.vmUuid),
    // A VM boots from one root volume: a retried CreateRootVolumes (or a racing one) finds it
    // instead of making a second. vm_uuid is null unless InUse, so a Deleted one never counts.
    uniqueIndex("volumes_vm_root_uq").on(t.vmUuid).where(sql`${t.kind} = 'Root'`),
    check("volumes_size_positive", sql`${t.sizeBytes} > 0`),
    check("volumes_vm_iff_in_use", sql`(${t.state} = 'InUse') = (${t.vmUuid} IS NOT NULL)`),
  ],
);

export const backupState = storage.enum("backup_state", ["Creating", "Available", "Error", "Canceled", "Restoring", "Deleting", "Deleted"]);
export const backupMode = storage.enum("backup_mode", ["Full", "Incremental"]);

/**
 * Backup storages and their capacity accounting, as primary storages do it: `used_bytes` is the
 * sum of the `held_bytes` of its backups, moved in the statement that changes the backup, with
 * the CHECK as the last word.
 */
export const backupStorages = storage.table(
  "backup_storages",
  {
    uuid: uuid().primaryKey(),
    name: text().notNull(),
    totalCapacity: bigint("total_capacity", { mode: "number" }).notNull(),
    usedBytes: bigint("used_bytes", { mode: "number" }).notNull().default(0),
    clientRequestId: text("client_request_id"),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    seq: bigserial({ mode: "number" }).notNull(),
  },
  (t) => [
    uniqueIndex("backup_storages_seq_uq").on(t.seq),
    uniqueIndex("backup_storages_client_request_id_uq").on(t.clientRequestId),
    check("backup_storages_used_within_capacity", sql`${t.usedBytes} >= 0 AND ${t.usedBytes} <= ${t.totalCapacity}`),
  ],
);

/**
 * Backups of volumes. `held_bytes` is what the backup counts on its storage: the volume's size
 * while Creating (reserved up front, so a full storage refuses the backup instead of failing it
 * half-way), its real size once Available (and while Restoring or Deleting), nothing once Error,
 * Canceled or Deleted. A Deleted backup is kept so that a retried delete finds what happened.
 */
export const backups = storage.table(
  "backups",
  {
    uuid: uuid().primaryKey(),
    name: text().notNull(),
    volumeUuid: uuid("volume_uuid").notNull(),
    backupStorageUuid: uuid("backup_storage_uuid").notNull(),
    mode: backupMode().notNull(),
    parentUuid: uuid("parent_uuid"),
    state: backupState().notNull().default("Creating"),
    error: text().notNull().default(""),
    /** The volume's size when it was backed up: a restore needs a target at least this big. */
    volumeSizeBytes: bigint("volume_size_bytes", { mode: "number" }).notNull(),
    sizeBytes: bigint("size_bytes", { mode: "number" }).notNull().default(0),
    heldBytes: bigint("held_bytes", { mode: "number" }).notNull().default(0),
    jobUuid: uuid("job_uuid").notNull(),
    clientRequestId: text("client_request_id"),
    /** The host whose agent runs the backup's current task (its creation or a restore), once sent. */
    taskHostUuid: uuid("task_host_uuid"),
    /** While Restoring: the restore job and the volume it writes. */
    restoreJobUuid: uuid("restore_job_uuid"),
    restoreVolumeUuid: uuid("restore_volume_uuid"),
    lastActor: text("last_actor").notNull().default(""),
    revision: bigint({ mode: "number" }).notNull().default(1),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
    seq: bigserial({ mode: "number" }).notNull(),
  },
  (t) => [
    uniqueIndex("backups_seq_uq").on(t.seq),
    uniqueIndex("backups_client_request_id_uq").on(t.clientRequestId),
    index("backups_volume_idx").on(t.volumeUuid, t.backupStorageUuid),
    index("backups_parent_idx").on(t.parentUuid),
    check("backups_held_non_negative", sql`${t.heldBytes} >= 0 AND ${t.sizeBytes} >= 0`),
    check("backups_parent_iff_incremental", sql`(${t.mode} = 'Incremental') = (${t.parentUuid} IS NOT NULL)`),
    check("backups_restore_iff_restoring", sql`(${t.state} = 'Restoring') = (${t.restoreJobUuid} IS NOT NULL)`),
  ],
);

export const requests = requestsTable(storage);
export const outbox = outboxTable(storage);
export const leases = leasesTable(storage);

export type PrimaryStorageRow = typeof primaryStorages.$inferSelect;
export type VolumeRow = typeof volumes.$inferSelect;
export type VolumeStateValue = (typeof volumeState.enumValues)[number];
export type VolumeKindValue = (typeof volumeKind.enumValues)[number];
export type BackupStorageRow = typeof backupStorages.$inferSelect;
export type BackupRow = typeof backups.$inferSelect;
export type BackupStateValue = (typeof backupState.enumValues)[number];
export type BackupModeValue = (typeof backupMode.enumValues)[number];
export const tables = { primaryStorages, volumes, backupStorages, backups, requests, outbox, leases };
