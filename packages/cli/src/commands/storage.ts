/**
 * `stratumctl primary-storage …` and `backup-storage …`: where volumes and backups live, on the
 * storage service (StorageService and BackupService; see proto/stratum/storage/v1). Capacity is
 * printed used/total, as hosts print theirs, since that is what placing a volume hinges on.
 */
import { create } from "@bufbuild/protobuf";
import { BackupStorageSchema, ListBackupStoragesResponseSchema, type BackupStorage } from "@stratum/proto/stratum/storage/v1/backup_pb";
import { DeletePrimaryStorageResponseSchema, ListPrimaryStoragesResponseSchema } from "@stratum/proto/stratum/storage/v1/storage_pb";
import { PrimaryStorageSchema, type PrimaryStorage } from "@stratum/proto/stratum/storage/v1/volume_pb";
import type { FlagSpecs } from "../args";
import { renderFields, renderTable } from "../table";
import { formatSize } from "../units";
import { fetchPages, formatTime, jsonOf, listResult, PAGING_FLAGS, present, type Command, type CommandResult } from "./command";

const UUID_ARG = ["UUID"] as const;

/** `12 GiB/1 TiB (1%)`. */
export function capacityCell(used: bigint, total: bigint): string {
  const percent = total > 0n ? ` (${(used * 100n) / total}%)` : "";
  return `${formatSize(used)}/${formatSize(total)}${percent}`;
}

const ADD_FLAGS: FlagSpecs = {
  name: { type: "string", value: "NAME", description: "display name (1–128 characters)", required: true },
  capacity: { type: "string", value: "SIZE", description: "bytes the storage offers, e.g. 2TiB (1 GiB – 1 EiB)", required: true },
  "request-id": { type: "string", value: "KEY", description: "idempotency key: a retry with the same key returns the first storage" },
  uuid: { type: "string", value: "UUID", description: "UUID for the new storage (default: the server chooses)" },
};

// ---- primary storage

const PS_COLUMNS = ["UUID", "NAME", "HOST", "USED/TOTAL"];

function psRow(s: PrimaryStorage): string[] {
  return [s.uuid, s.name, s.hostUuid || "shared", capacityCell(s.usedBytes, s.totalCapacityBytes)];
}

function psResult(s: PrimaryStorage | undefined): CommandResult {
  const storage = present(s, "primary storage");
  return { json: jsonOf(PrimaryStorageSchema, storage), text: renderTable(PS_COLUMNS, [psRow(storage)]) };
}

const psAdd: Command = {
  group: "primary-storage",
  service: "storage",
  name: "add",
  summary: "register a primary storage (shared, or local to a host) with its capacity",
  description:
    "Registers a primary storage that volumes are created on: shared by every host, or local to --host. " +
    "With --request-id, repeating the same command returns the first storage instead of adding a second.",
  args: [],
  flags: { ...ADD_FLAGS, host: { type: "string", value: "UUID", description: "the host of a local storage (default: shared)" } },
  examples: ["stratumctl primary-storage add --name ceph-1 --capacity 100TiB", "stratumctl primary-storage add --name local-kvm-1 --capacity 2TiB --host 0b7c…"],
  async run({ flags, api }) {
    const request = {
      name: flags.required("name"),
      totalCapacityBytes: flags.size("capacity", true),
      hostUuid: flags.string("host") ?? "",
      clientRequestId: flags.string("request-id") ?? "",
      uuid: flags.string("uuid") ?? "",
    };
    return psResult((await api.storage.addPrimaryStorage(request)).primaryStorage);
  },
};

const psList: Command = {
  group: "primary-storage",
  service: "storage",
  name: "list",
  summary: "list primary storages",
  description: "Lists primary storages in the order they were added, with their used and total capacity.",
  args: [],
  flags: { host: { type: "string", value: "UUID", description: "only the local storages of this host" }, ...PAGING_FLAGS },
  async run({ flags, api }) {
    const hostUuid = flags.string("host") ?? "";
    const { items, nextPageToken } = await fetchPages(flags, async (page) => {
      const res = await api.storage.listPrimaryStorages({ hostUuid, ...page });
      return { items: res.primaryStorages, nextPageToken: res.nextPageToken };
    });
    const json = jsonOf(ListPrimaryStoragesResponseSchema, create(ListPrimaryStoragesResponseSchema, { primaryStorages: items, nextPageToken }));
    return listResult({ json, items, nextPageToken, columns: PS_COLUMNS, row: psRow, noun: "primary storages", command: "primary-storage list" });
  },
};

const psGet: Command = {
  group: "primary-storage",
  service: "storage",
  name: "get",
  summary: "show one primary storage",
  description: "Shows a primary storage in detail.",
  args: UUID_ARG,
  flags: {},
  async run({ args, api }) {
    const s = present((await api.storage.getPrimaryStorage({ uuid: args[0]! })).primaryStorage, "primary storage");
    return {
      json: jsonOf(PrimaryStorageSchema, s),
      text: renderFields([
        ["UUID", s.uuid],
        ["Name", s.name],
        ["Host", s.hostUuid || "shared"],
        ["Used", capacityCell(s.usedBytes, s.totalCapacityBytes)],
        ["Free", formatSize(s.totalCapacityBytes > s.usedBytes ? s.totalCapacityBytes - s.usedBytes : 0n)],
        ["Created", formatTime(s.createTime)],
      ]),
    };
  },
};

const psDelete: Command = {
  group: "primary-storage",
  service: "storage",
  name: "delete",
  summary: "remove a primary storage that holds no volumes",
  description: "Removes a primary storage. The server refuses while volumes (not Deleted) are on it: delete or move them first.",
  args: UUID_ARG,
  flags: { "request-id": { type: "string", value: "KEY", description: "idempotency key" } },
  async run({ flags, args, api }) {
    const res = await api.storage.deletePrimaryStorage({ uuid: args[0]!, clientRequestId: flags.string("request-id") ?? "" });
    return { json: jsonOf(DeletePrimaryStorageResponseSchema, res), text: `primary storage ${args[0]!} deleted\n` };
  },
};

export const PRIMARY_STORAGE_COMMANDS: readonly Command[] = [psAdd, psList, psGet, psDelete];

// ---- backup storage

const BS_COLUMNS = ["UUID", "NAME", "USED/TOTAL", "CREATED"];

function bsRow(s: BackupStorage): string[] {
  return [s.uuid, s.name, capacityCell(s.usedBytes, s.totalCapacityBytes), formatTime(s.createTime)];
}

const bsAdd: Command = {
  group: "backup-storage",
  service: "storage",
  name: "add",
  summary: "register a backup storage with its capacity",
  description: "Registers a backup storage that backups are written to. With --request-id, repeating the same command returns the first storage.",
  args: [],
  flags: ADD_FLAGS,
  examples: ["stratumctl backup-storage add --name s3-backups --capacity 500TiB"],
  async run({ flags, api }) {
    const request = {
      name: flags.required("name"),
      totalCapacityBytes: flags.size("capacity", true),
      clientRequestId: flags.string("request-id") ?? "",
      uuid: flags.string("uuid") ?? "",
    };
    const s = present((await api.backups.addBackupStorage(request)).backupStorage, "backup storage");
    return { json: jsonOf(BackupStorageSchema, s), text: renderTable(BS_COLUMNS, [bsRow(s)]) };
  },
};

const bsList: Command = {
  group: "backup-storage",
  service: "storage",
  name: "list",
  summary: "list backup storages",
  description: "Lists backup storages in the order they were added, with the bytes their backups hold.",
  args: [],
  flags: { ...PAGING_FLAGS },
  async run({ flags, api }) {
    const { items, nextPageToken } = await fetchPages(flags, async (page) => {
      const res = await api.backups.listBackupStorages(page);
      return { items: res.backupStorages, nextPageToken: res.nextPageToken };
    });
    const json = jsonOf(ListBackupStoragesResponseSchema, create(ListBackupStoragesResponseSchema, { backupStorages: items, nextPageToken }));
    return listResult({ json, items, nextPageToken, columns: BS_COLUMNS, row: bsRow, noun: "backup storages", command: "backup-storage list" });
  },
};

const bsGet: Command = {
  group: "backup-storage",
  service: "storage",
  name: "get",
  summary: "show one backup storage",
  description: "Shows a backup storage in detail.",
  args: UUID_ARG,
  flags: {},
  async run({ args, api }) {
    const s = present((await api.backups.getBackupStorage({ uuid: args[0]! })).backupStorage, "backup storage");
    return {
      json: jsonOf(BackupStorageSchema, s),
      text: renderFields([
        ["UUID", s.uuid],
        ["Name", s.name],
        ["Used", capacityCell(s.usedBytes, s.totalCapacityBytes)],
        ["Created", formatTime(s.createTime)],
      ]),
    };
  },
};

export const BACKUP_STORAGE_COMMANDS: readonly Command[] = [bsAdd, bsList, bsGet];
