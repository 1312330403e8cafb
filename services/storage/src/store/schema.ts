import { sql } from "drizzle-orm";
import { bigint, bigserial, check, index, pgSchema, text, timestamp, uniqueIndex, uuid } from "drizzle-orm/pg-core";
import { leasesTable, outboxTable, requestsTable } from "@stratum/db";

/** The storage service's own schema: no other service reads these tables. */
export const storage = pgSchema("storage");

export const volumeState = storage.enum("volume_state", ["Available", "InUse", "Deleted"]);
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
    check("volumes_size_positive", sql`${t.sizeBytes} > 0`),
    check("volumes_vm_iff_in_use", sql`(${t.state} = 'InUse') = (${t.vmUuid} IS NOT NULL)`),
  ],
);

export const requests = requestsTable(storage);
export const outbox = outboxTable(storage);
export const leases = leasesTable(storage);

export type PrimaryStorageRow = typeof primaryStorages.$inferSelect;
export type VolumeRow = typeof volumes.$inferSelect;
export type VolumeStateValue = (typeof volumeState.enumValues)[number];
export type VolumeKindValue = (typeof volumeKind.enumValues)[number];
export const tables = { primaryStorages, volumes, requests, outbox, leases };
