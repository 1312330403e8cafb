import { Code, currentWork, StratumError } from "@stratum/core";
import { holdsLease, leaseHeld, type LeaseHolder, leaseLost, mapPgError, rowMapper } from "@stratum/db";
import type postgres from "postgres";
import { backupStatesLeadingTo } from "../domain/backup-state";
import { statesLeadingTo } from "../domain/volume-state";
import { backupChangedOutbox } from "./backup-events";
import type { StorageDb } from "./db";
import { backups, backupStorages, leases, volumes, type BackupModeValue, type BackupRow, type BackupStateValue, type BackupStorageRow, type VolumeRow } from "./schema";
import { volumeChangedOutbox } from "./volume-events";

const toBackup = rowMapper(backups);
const toBackupStorage = rowMapper(backupStorages);
const toVolume = rowMapper(volumes);

const CONSTRAINTS = {
  constraints: {
    backups_pkey: { reason: "BACKUP_ALREADY_EXISTS", message: "a backup with this uuid already exists" },
    backups_client_request_id_uq: { reason: "REQUEST_ID_IN_USE", message: "client_request_id was already used for another backup" },
    backup_storages_pkey: { reason: "BACKUP_STORAGE_ALREADY_EXISTS", message: "a backup storage with this uuid already exists" },
    backup_storages_client_request_id_uq: { reason: "REQUEST_ID_IN_USE", message: "client_request_id was already used for another backup storage" },
    backup_storages_used_within_capacity: { reason: "BACKUP_STORAGE_FULL", message: "the backup storage has not that much free" },
  },
};

export interface NewBackupStorage {
  uuid: string;
  name: string;
  totalCapacity: number;
  clientRequestId: string | null;
}

export interface NewBackup {
  uuid: string;
  name: string;
  volumeUuid: string;
  volumeSizeBytes: number;
  backupStorageUuid: string;
  mode: BackupModeValue;
  parentUuid: string | null;
  jobUuid: string;
  clientRequestId: string | null;
}

export interface BackupFilter {
  volumeUuid?: string;
  state?: BackupStateValue;
  afterSeq: number;
  limit: number;
}

/** What a transition writes besides the state. `held` says what the backup counts on its storage after it. */
export interface BackupPatch {
  error?: string;
  sizeBytes?: number;
  taskHostUuid?: string | null;
  restore?: { jobUuid: string; volumeUuid: string } | null;
  /** `size`: its size (settled when Available), `none`: nothing (given back), default: unchanged. */
  held?: "size" | "none";
}

/** Why a transition wrote nothing: the rows as they are (one not in a state the edge leaves from), or the lease. */
export type Refusal = { refused: BackupRow[] };

/**
 * Queries on `storage.backup_storages` and `storage.backups`. A backup's bytes move with it: a
 * create reserves the volume's size on its storage in the statement that inserts it, a
 * transition settles or gives back in the transaction that moves it (the storage's CHECK the
 * last word). State changes are conditional updates from the states the backup state machine
 * allows (`BACKUP_TRANSITIONS`), and every write is fenced by this replica's lease, stamps the
 * writer and writes its `backup_changed` event in the same transaction.
 */
export class BackupStore {
  readonly #sql: postgres.Sql;
  readonly #lease: LeaseHolder;

  constructor(
    handle: StorageDb,
    private readonly actor: () => string,
    private readonly eventsWritten: () => void = () => {},
  ) {
    this.#sql = handle.sql;
    this.#lease = { leases, holder: actor };
  }

  async addStorage(s: NewBackupStorage): Promise<BackupStorageRow> {
    const sql = this.#sql;
    try {
      const [raw] = await sql`
        INSERT INTO "storage"."backup_storages" (uuid, name, total_capacity, client_request_id)
        SELECT ${s.uuid}, ${s.name}, ${s.totalCapacity}, ${s.clientRequestId} WHERE ${leaseHeld(sql, this.#lease)}
        RETURNING *`;
      if (!raw) throw leaseLost(this.actor());
      return toBackupStorage(raw as Record<string, unknown>);
    } catch (e) {
      throw mapPgError(e, { ...CONSTRAINTS, operation: "add backup storage", resources: { backupStorageUuid: s.uuid } });
    }
  }

  async getStorage(uuid: string): Promise<BackupStorageRow | undefined> {
    const [raw] = await this.#sql`SELECT * FROM "storage"."backup_storages" WHERE uuid = ${uuid}`.catch((e) => {
      throw mapPgError(e, { operation: "get backup storage" });
    });
    return raw ? toBackupStorage(raw as Record<string, unknown>) : undefined;
  }

  async listStorages(f: { afterSeq: number; limit: number }): Promise<BackupStorageRow[]> {
    const rows = await this.#sql`SELECT * FROM "storage"."backup_storages" WHERE seq > ${f.afterSeq} ORDER BY seq LIMIT ${f.limit}`.catch((e) => {
      throw mapPgError(e, { operation: "list backup storages" });
    });
    return rows.map((r) => toBackupStorage(r as Record<string, unknown>));
  }

  /**
   * Records a backup, Creating, holding the volume's size on its storage: the row exists only if
   * the conditional UPDATE of the storage reserved it, and the volume (its row locked) is not
   * Deleted. Undefined when nothing was written (no such storage, not enough free, the volume
   * deleted meanwhile, or the lease is gone: the caller tells which).
   */
  async create(b: NewBackup): Promise<BackupRow | undefined> {
    const sql = this.#sql;
    try {
      const rows = await sql`
        WITH vol AS (
          -- Locks the volume's row (against a delete, which locks it FOR UPDATE and then looks
          -- for backups being created) and finds it still there: no backup of a deleted volume.
          SELECT uuid FROM "storage"."volumes" WHERE uuid = ${b.volumeUuid} AND state <> 'Deleted' FOR KEY SHARE),
        reserved AS (
          UPDATE "storage"."backup_storages" SET used_bytes = used_bytes + ${b.volumeSizeBytes}
          WHERE uuid = ${b.backupStorageUuid} AND used_bytes + ${b.volumeSizeBytes} <= total_capacity AND ${leaseHeld(sql, this.#lease)}
            AND EXISTS (SELECT 1 FROM vol)
          RETURNING uuid),
        m AS (
          INSERT INTO "storage"."backups" (uuid, name, volume_uuid, backup_storage_uuid, mode, parent_uuid, state, volume_size_bytes, held_bytes, job_uuid, client_request_id, last_actor)
          SELECT ${b.uuid}, ${b.name}, ${b.volumeUuid}, reserved.uuid, ${b.mode}::"storage"."backup_mode", ${b.parentUuid}, 'Creating', ${b.volumeSizeBytes}, ${b.volumeSizeBytes},
            ${b.jobUuid}, ${b.clientRequestId}, ${this.actor()} FROM reserved
          RETURNING *),
        o AS (${backupChangedOutbox(sql, requestId())})
        SELECT * FROM m`;
      return this.#written(rows)[0];
    } catch (e) {
      throw mapPgError(e, { ...CONSTRAINTS, operation: "create backup", resources: { backupUuid: b.uuid } });
    }
  }

  async get(uuid: string): Promise<BackupRow | undefined> {
    const [raw] = await this.#sql`SELECT * FROM "storage"."backups" WHERE uuid = ${uuid}`.catch((e) => {
      throw mapPgError(e, { operation: "get backup" });
    });
    return raw ? toBackup(raw as Record<string, unknown>) : undefined;
  }

  async list(f: BackupFilter): Promise<BackupRow[]> {
    const sql = this.#sql;
    const rows = await sql`
      SELECT * FROM "storage"."backups" WHERE seq > ${f.afterSeq}
        ${f.volumeUuid ? sql`AND volume_uuid = ${f.volumeUuid}` : sql``}
        ${f.state ? sql`AND state = ${f.state}::"storage"."backup_state"` : sql``}
      ORDER BY seq LIMIT ${f.limit}`.catch((e) => {
      throw mapPgError(e, { operation: "list backups" });
    });
    return rows.map((r) => toBackup(r as Record<string, unknown>));
  }

  /** Every backup a job works on (Creating, Restoring): what the repair looks at. */
  async inFlight(): Promise<BackupRow[]> {
    const rows = await this.#sql`SELECT * FROM "storage"."backups" WHERE state IN ('Creating', 'Restoring') ORDER BY seq`.catch((e) => {
      throw mapPgError(e, { operation: "list restoring backups" });
    });
    return rows.map((r) => toBackup(r as Record<string, unknown>));
  }

  /** The newest complete backup of a volume on a storage: what an incremental one chains from. */
  async lastComplete(volumeUuid: string, backupStorageUuid: string): Promise<BackupRow | undefined> {
    const [raw] = await this.#sql`
      SELECT * FROM "storage"."backups" WHERE volume_uuid = ${volumeUuid} AND backup_storage_uuid = ${backupStorageUuid}
        AND state IN ('Available', 'Restoring') ORDER BY seq DESC LIMIT 1`.catch((e) => {
      throw mapPgError(e, { operation: "find parent backup" });
    });
    return raw ? toBackup(raw as Record<string, unknown>) : undefined;
  }

  /** Every backup not Deleted chained (transitively) from `uuid`, nearest first. */
  async dependents(uuid: string): Promise<BackupRow[]> {
    const rows = await this.#sql`
      WITH RECURSIVE chain AS (
        SELECT b.*, 1 AS depth FROM "storage"."backups" b WHERE b.parent_uuid = ${uuid} AND b.state <> 'Deleted'
        UNION ALL
        SELECT b.*, c.depth + 1 FROM "storage"."backups" b JOIN chain c ON b.parent_uuid = c.uuid WHERE b.state <> 'Deleted')
      SELECT * FROM chain ORDER BY depth, seq`.catch((e) => {
      throw mapPgError(e, { operation: "find dependent backups" });
    });
    return rows.map((r) => toBackup(r as Record<string, unknown>));
  }

  /** Backups a job works on now (Creating, Restoring) of these volumes, by the host running their task. */
  async activeTasksOn(volumeUuids: readonly string[]): Promise<Array<{ volumeUuid: string; hostUuid: string }>> {
    const rows = await this.#sql`
      SELECT DISTINCT CASE WHEN state = 'Restoring' THEN restore_volume_uuid ELSE volume_uuid END AS volume_uuid, task_host_uuid
      FROM "storage"."backups"
      WHERE task_host_uuid IS NOT NULL AND ((state = 'Creating' AND volume_uuid = ANY(${volumeUuids as string[]}::uuid[]))
        OR (state = 'Restoring' AND restore_volume_uuid = ANY(${volumeUuids as string[]}::uuid[])))`.catch((e) => {
      throw mapPgError(e, { operation: "find running backup tasks" });
    });
    return rows.map((r) => ({ volumeUuid: r.volume_uuid as string, hostUuid: r.task_host_uuid as string }));
  }

  /**
   * Moves backups to `to`, all or none, each from a state the machine allows (narrowed to `from`),
   * with `patch`, settling or giving back their bytes on their storages in the same transaction.
   * The moved rows, or `{ refused }` with the rows as they are when one was not in such a state.
   */
  async transition(uuids: readonly string[], to: BackupStateValue, patch: BackupPatch = {}, from?: readonly BackupStateValue[]): Promise<BackupRow[] | Refusal> {
    const allowed = backupStatesLeadingTo(to).filter((s) => from === undefined || from.includes(s));
    try {
      const out = await this.#sql.begin(async (tx) => {
        const moved = await this.#move(tx, uuids, to, allowed, patch);
        if ("refused" in moved) return moved;
        if (patch.restore === null) {
          // The restore ended: its volume is Available again (left as it was when it did not finish).
          const restored = moved.map((b) => b.restoreVolumeUuidBefore).filter((v): v is string => v !== null);
          for (const v of restored) await this.#moveVolume(tx, v, "Available", ["Restoring"]);
        }
        return moved.map((m) => m.row);
      });
      if (!("refused" in out)) this.eventsWritten();
      return out;
    } catch (e) {
      throw mapPgError(e, { ...CONSTRAINTS, operation: `move backup to ${to}`, resources: { backupUuid: uuids[0] ?? "" } });
    }
  }

  /**
   * Starts a restore: the backup Available → Restoring (naming its job and target) and the target
   * volume Available → Restoring, together or not at all. `{ refused }` (the backup as it is)
   * when the backup was not Available; `volume` (as it is) when the volume was not Available.
   */
  async startRestore(uuid: string, restore: { jobUuid: string; volumeUuid: string }): Promise<{ backup: BackupRow; volume: VolumeRow } | Refusal | { volume: VolumeRow | undefined; refusedVolume: true }> {
    try {
      const out = await this.#sql.begin(async (tx) => {
        // task_host_uuid named where the backup was made: the restore records its own host.
        const moved = await this.#move(tx, [uuid], "Restoring", backupStatesLeadingTo("Restoring"), { restore, taskHostUuid: null });
        if ("refused" in moved) return moved;
        const volume = await this.#moveVolume(tx, restore.volumeUuid, "Restoring", ["Available"]);
        if (!volume) {
          const [raw] = await tx`SELECT * FROM "storage"."volumes" WHERE uuid = ${restore.volumeUuid}`;
          throw new VolumeRefused(raw ? toVolume(raw as Record<string, unknown>) : undefined);
        }
        return { backup: moved[0]!.row, volume };
      });
      this.eventsWritten();
      return out;
    } catch (e) {
      if (e instanceof VolumeRefused) return { volume: e.volume, refusedVolume: true };
      throw mapPgError(e, { operation: "start restore", resources: { backupUuid: uuid, volumeUuid: restore.volumeUuid } });
    }
  }

  /**
   * Records the host whose agent runs the backup's task, before the task is started: a resumed job
   * goes back to that host, and a wait for the volume's tasks asks it. Only while the backup is in
   * `state` (a job that lost the race to a cancel writes nothing). The new row, or undefined.
   */
  async recordTaskHost(uuid: string, hostUuid: string, state: BackupStateValue): Promise<BackupRow | undefined> {
    const sql = this.#sql;
    try {
      const rows = await sql`
        WITH m AS (
          UPDATE "storage"."backups" AS t SET task_host_uuid = ${hostUuid}, revision = t.revision + 1, updated_at = now(), last_actor = ${this.actor()}
          WHERE t.uuid = ${uuid} AND t.state = ${state}::"storage"."backup_state" AND ${leaseHeld(sql, this.#lease)}
          RETURNING t.*),
        o AS (${backupChangedOutbox(sql, requestId())})
        SELECT * FROM m`;
      return this.#written(rows)[0];
    } catch (e) {
      throw mapPgError(e, { operation: "record backup task host", resources: { backupUuid: uuid } });
    }
  }

  /** Whether this replica holds its lease now (why a fenced write matched nothing). */
  async leaseHeld(): Promise<boolean> {
    return holdsLease(this.#sql, this.#lease);
  }

  leaseLost(): StratumError {
    return leaseLost(this.actor());
  }

  async #move(tx: postgres.TransactionSql, uuids: readonly string[], to: BackupStateValue, allowed: readonly BackupStateValue[], patch: BackupPatch): Promise<Array<{ row: BackupRow; restoreVolumeUuidBefore: string | null }> | Refusal> {
    const sql = tx as unknown as postgres.Sql;
    const locked = (await sql`SELECT * FROM "storage"."backups" WHERE uuid = ANY(${uuids as string[]}::uuid[]) ORDER BY uuid FOR UPDATE`).map((r) => toBackup(r as Record<string, unknown>));
    const refused = locked.filter((b) => !allowed.includes(b.state));
    if (refused.length > 0 || locked.length !== uuids.length) return { refused: locked };
    const out: Array<{ row: BackupRow; restoreVolumeUuidBefore: string | null }> = [];
    for (const b of locked) {
      const size = patch.sizeBytes ?? b.sizeBytes;
      const held = patch.held === "size" ? size : patch.held === "none" ? 0 : b.heldBytes;
      const restore = patch.restore === undefined ? { jobUuid: b.restoreJobUuid, volumeUuid: b.restoreVolumeUuid } : { jobUuid: patch.restore?.jobUuid ?? null, volumeUuid: patch.restore?.volumeUuid ?? null };
      const rows = await sql`
        WITH m AS (
          UPDATE "storage"."backups" AS t SET state = ${to}::"storage"."backup_state", error = ${patch.error ?? b.error}, size_bytes = ${size}, held_bytes = ${held},
            task_host_uuid = ${patch.taskHostUuid === undefined ? b.taskHostUuid : patch.taskHostUuid},
            restore_job_uuid = ${restore.jobUuid}, restore_volume_uuid = ${restore.volumeUuid},
            revision = t.revision + 1, updated_at = now(), last_actor = ${this.actor()}
          WHERE t.uuid = ${b.uuid} AND ${leaseHeld(sql, this.#lease)}
          RETURNING t.*),
        o AS (${backupChangedOutbox(sql, requestId())})
        SELECT * FROM m`;
      if (rows.length === 0) throw leaseLost(this.actor());
      if (held !== b.heldBytes) {
        await sql`UPDATE "storage"."backup_storages" SET used_bytes = used_bytes + ${held - b.heldBytes} WHERE uuid = ${b.backupStorageUuid}`;
      }
      out.push({ row: toBackup(rows[0] as Record<string, unknown>), restoreVolumeUuidBefore: b.restoreVolumeUuid });
    }
    return out;
  }

  async #moveVolume(tx: postgres.TransactionSql, uuid: string, to: "Available" | "Restoring", from: readonly string[]): Promise<VolumeRow | undefined> {
    const sql = tx as unknown as postgres.Sql;
    const allowed = statesLeadingTo(to).filter((s) => from.includes(s));
    const rows = await sql`
      WITH m AS (
        UPDATE "storage"."volumes" AS t SET state = ${to}::"storage"."volume_state", revision = t.revision + 1, updated_at = now(), last_actor = ${this.actor()}
        WHERE t.uuid = ${uuid} AND t.state::text = ANY(${allowed}::text[]) AND ${leaseHeld(sql, this.#lease)}
        RETURNING t.*),
      o AS (${volumeChangedOutbox(sql, requestId())})
      SELECT * FROM m`;
    return rows[0] ? toVolume(rows[0] as Record<string, unknown>) : undefined;
  }

  #written(rows: readonly postgres.Row[]): BackupRow[] {
    if (rows.length > 0) this.eventsWritten();
    return rows.map((r) => toBackup(r as Record<string, unknown>));
  }
}

class VolumeRefused extends Error {
  constructor(readonly volume: VolumeRow | undefined) {
    super("volume refused");
  }
}

/** RESOURCE_EXHAUSTED `BACKUP_STORAGE_FULL`. */
export function backupStorageFull(s: BackupStorageRow, needs: number, backupUuid: string): StratumError {
  return new StratumError(Code.RESOURCE_EXHAUSTED, `backup storage ${s.uuid} has ${s.totalCapacity - s.usedBytes} bytes free, the backup needs ${needs}`, {
    reason: "BACKUP_STORAGE_FULL",
    resources: { backupStorageUuid: s.uuid, backupUuid },
  });
}

/** The request the current work serves, carried by the events it writes. */
function requestId(): string | null {
  return currentWork()?.requestId ?? null;
}
