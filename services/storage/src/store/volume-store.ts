import { currentWork, StratumError, Code } from "@stratum/core";
import { holdsLease, leaseHeld, type LeaseHolder, leaseLost, mapPgError, rowMapper } from "@stratum/db";
import type postgres from "postgres";
import { RESIZABLE_STATES, statesLeadingTo } from "../domain/volume-state";
import { busyBackupsOf, type BusyBackup } from "./busy-backups";
import type { StorageDb } from "./db";
import { leases, primaryStorages, volumes, type PrimaryStorageRow, type VolumeKindValue, type VolumeRow, type VolumeStateValue } from "./schema";
import { volumeChangedOutbox } from "./volume-events";

const toVolume = rowMapper(volumes);
const toStorage = rowMapper(primaryStorages);

const CONSTRAINTS = {
  constraints: {
    volumes_pkey: { reason: "VOLUME_ALREADY_EXISTS", message: "a volume with this uuid already exists" },
    volumes_client_request_id_uq: { reason: "REQUEST_ID_IN_USE", message: "client_request_id was already used for another volume" },
    primary_storages_pkey: { reason: "PRIMARY_STORAGE_ALREADY_EXISTS", message: "a primary storage with this uuid already exists" },
    primary_storages_client_request_id_uq: { reason: "REQUEST_ID_IN_USE", message: "client_request_id was already used for another primary storage" },
    volumes_vm_root_uq: { reason: "VM_HAS_ROOT_VOLUME", code: Code.FAILED_PRECONDITION, message: "the VM has a root volume attached already" },
  },
};

export interface NewVolume {
  uuid: string;
  name: string;
  primaryStorageUuid: string;
  kind: VolumeKindValue;
  sizeBytes: number;
  clientRequestId: string | null;
}

export interface NewPrimaryStorage {
  uuid: string;
  name: string;
  hostUuid: string | null;
  totalCapacity: number;
  clientRequestId: string | null;
}

export interface VolumeFilter {
  primaryStorageUuid?: string;
  state?: VolumeStateValue;
  vmUuid?: string;
  afterSeq: number;
  limit: number;
}

/**
 * Queries on `storage.primary_storages` and `storage.volumes`. Capacity moves with its volume in
 * one statement or transaction, as a conditional UPDATE of the storage row (`used_bytes + n <=
 * total_capacity`, re-checked on the locked row, and the CHECK behind it). State changes are
 * conditional updates from the states the volume state machine allows, whose result the caller
 * checks. Every volume write is fenced — it needs this replica's lease, so a replica paused past
 * it cannot write beside its successor — stamps the writer, and writes its `volume_changed`
 * event in the same statement.
 */
export class VolumeStore {
  readonly #sql: postgres.Sql;
  readonly #lease: LeaseHolder;

  constructor(
    private readonly handle: StorageDb,
    private readonly actor: () => string,
    /** Tells the kit's outbox relay that events were committed (it publishes them at once). */
    private readonly eventsWritten: () => void = () => {},
  ) {
    this.#sql = handle.sql;
    this.#lease = { leases, holder: actor };
  }

  async addStorage(s: NewPrimaryStorage): Promise<PrimaryStorageRow> {
    const sql = this.#sql;
    try {
      const [raw] = await sql`
        INSERT INTO "storage"."primary_storages" (uuid, name, host_uuid, total_capacity, client_request_id)
        SELECT ${s.uuid}, ${s.name}, ${s.hostUuid}, ${s.totalCapacity}, ${s.clientRequestId} WHERE ${leaseHeld(sql, this.#lease)}
        RETURNING *`;
      if (!raw) throw leaseLost(this.actor());
      return toStorage(raw as Record<string, unknown>);
    } catch (e) {
      throw mapPgError(e, { ...CONSTRAINTS, operation: "add primary storage", resources: { primaryStorageUuid: s.uuid } });
    }
  }

  async getStorage(uuid: string): Promise<PrimaryStorageRow | undefined> {
    const [raw] = await this.#sql`SELECT * FROM "storage"."primary_storages" WHERE uuid = ${uuid}`.catch((e) => {
      throw mapPgError(e, { operation: "get primary storage" });
    });
    return raw ? toStorage(raw as Record<string, unknown>) : undefined;
  }

  async listStorages(f: { hostUuid?: string; afterSeq: number; limit: number }): Promise<PrimaryStorageRow[]> {
    const sql = this.#sql;
    const rows = await sql`SELECT * FROM "storage"."primary_storages" WHERE seq > ${f.afterSeq} ${f.hostUuid ? sql`AND host_uuid = ${f.hostUuid}` : sql``} ORDER BY seq LIMIT ${f.limit}`.catch((e) => {
      throw mapPgError(e, { operation: "list primary storages" });
    });
    return rows.map((r) => toStorage(r as Record<string, unknown>));
  }

  /**
   * Deletes a storage with no bytes reserved on it. `used_bytes = 0` is read on the locked row, so a
   * create that reserved bytes first keeps it; a create after it finds no storage. True when
   * deleted, false when it holds volumes, undefined when it does not exist.
   */
  async deleteStorage(uuid: string): Promise<boolean | undefined> {
    const sql = this.#sql;
    try {
      const gone = await sql`DELETE FROM "storage"."primary_storages" WHERE uuid = ${uuid} AND used_bytes = 0 AND ${leaseHeld(sql, this.#lease)} RETURNING uuid`;
      if (gone.length > 0) return true;
      const s = await this.getStorage(uuid);
      if (!s) return undefined;
      if (s.usedBytes === 0) throw leaseLost(this.actor());
      return false;
    } catch (e) {
      throw mapPgError(e, { operation: "delete primary storage", resources: { primaryStorageUuid: uuid } });
    }
  }

  /**
   * Records a volume, Available, and reserves its size on its storage atomically: the volume row
   * exists only if the conditional UPDATE of the storage succeeded (a failed insert rolls the
   * reservation back with it). Undefined when nothing was written: no such storage, not enough
   * free, or this replica's lease is gone (the caller tells which).
   */
  async createVolume(v: NewVolume): Promise<VolumeRow | undefined> {
    const sql = this.#sql;
    try {
      const rows = await sql`
        WITH reserved AS (
          UPDATE "storage"."primary_storages" SET used_bytes = used_bytes + ${v.sizeBytes}
          WHERE uuid = ${v.primaryStorageUuid} AND used_bytes + ${v.sizeBytes} <= total_capacity AND ${leaseHeld(sql, this.#lease)}
          RETURNING uuid),
        m AS (
          INSERT INTO "storage"."volumes" (uuid, name, primary_storage_uuid, kind, size_bytes, state, client_request_id, last_actor)
          SELECT ${v.uuid}, ${v.name}, reserved.uuid, ${v.kind}::"storage"."volume_kind", ${v.sizeBytes}, 'Available', ${v.clientRequestId}, ${this.actor()} FROM reserved
          RETURNING *),
        o AS (${volumeChangedOutbox(sql, requestId())})
        SELECT * FROM m`;
      return this.#written(rows);
    } catch (e) {
      throw mapPgError(e, { ...CONSTRAINTS, operation: "create volume", resources: { volumeUuid: v.uuid } });
    }
  }

  async get(uuid: string): Promise<VolumeRow | undefined> {
    const [raw] = await this.#sql`SELECT * FROM "storage"."volumes" WHERE uuid = ${uuid}`.catch((e) => {
      throw mapPgError(e, { operation: "get volume" });
    });
    return raw ? toVolume(raw as Record<string, unknown>) : undefined;
  }

  async list(f: VolumeFilter): Promise<VolumeRow[]> {
    const sql = this.#sql;
    const rows = await sql`
      SELECT * FROM "storage"."volumes" WHERE seq > ${f.afterSeq}
        ${f.primaryStorageUuid ? sql`AND primary_storage_uuid = ${f.primaryStorageUuid}` : sql``}
        ${f.state ? sql`AND state = ${f.state}::"storage"."volume_state"` : sql``}
        ${f.vmUuid ? sql`AND vm_uuid = ${f.vmUuid}` : sql``}
      ORDER BY seq LIMIT ${f.limit}`.catch((e) => {
      throw mapPgError(e, { operation: "list volumes" });
    });
    return rows.map((r) => toVolume(r as Record<string, unknown>));
  }

  /**
   * Moves a volume to `to` from the states the state machine allows (narrowed to `from` when
   * given: a detach must not end a restore), setting its VM (`vmUuid` null clears it): the new
   * row, or undefined when the volume was not in one of them.
   */
  async transition(uuid: string, to: VolumeStateValue, vmUuid: string | null, from?: readonly VolumeStateValue[]): Promise<VolumeRow | undefined> {
    const allowed = statesLeadingTo(to).filter((s) => from === undefined || from.includes(s));
    const sql = this.#sql;
    try {
      const rows = await sql`
        WITH m AS (
          UPDATE "storage"."volumes" AS t SET state = ${to}::"storage"."volume_state", vm_uuid = ${vmUuid},
            revision = t.revision + 1, updated_at = now(), last_actor = ${this.actor()}
          WHERE t.uuid = ${uuid} AND t.state::text = ANY(${allowed}::text[]) AND ${leaseHeld(sql, this.#lease)}
          RETURNING t.*),
        o AS (${volumeChangedOutbox(sql, requestId())})
        SELECT * FROM m`;
      return this.#written(rows);
    } catch (e) {
      throw mapPgError(e, { ...CONSTRAINTS, operation: `move volume to ${to}`, resources: { volumeUuid: uuid } });
    }
  }

  /**
   * Grows a volume from `fromSize` to `toSize` and reserves the difference on its storage, in one
   * transaction: both or neither. `no-capacity` when the storage has not that much free;
   * undefined when the volume is no longer at `fromSize` in a resizable state.
   */
  async resize(uuid: string, fromSize: number, toSize: number): Promise<VolumeRow | "no-capacity" | undefined> {
    const sql = this.#sql;
    const delta = toSize - fromSize;
    try {
      return await sql.begin(async (tx) => {
        const rows = await tx`
          WITH m AS (
            UPDATE "storage"."volumes" AS t SET size_bytes = ${toSize}, revision = t.revision + 1, updated_at = now(), last_actor = ${this.actor()}
            WHERE t.uuid = ${uuid} AND t.size_bytes = ${fromSize} AND t.state::text = ANY(${RESIZABLE_STATES as string[]}::text[]) AND ${leaseHeld(tx, this.#lease)}
            RETURNING t.*),
          o AS (${volumeChangedOutbox(tx, requestId())})
          SELECT * FROM m`;
        const [raw] = rows;
        if (!raw) return undefined;
        const reserved = await tx`
          UPDATE "storage"."primary_storages" SET used_bytes = used_bytes + ${delta}
          WHERE uuid = ${raw.primary_storage_uuid as string} AND used_bytes + ${delta} <= total_capacity RETURNING uuid`;
        // Undo the volume's change with the transaction: its size is only what is reserved.
        if (reserved.length === 0) throw NO_CAPACITY;
        return raw;
      }).then((raw) => (raw === undefined ? undefined : this.#written([raw])), (e) => {
        if (e === NO_CAPACITY) return "no-capacity" as const;
        throw e;
      });
    } catch (e) {
      throw mapPgError(e, { operation: "resize volume", resources: { volumeUuid: uuid } });
    }
  }

  /**
   * Deletes an Available volume and gives its bytes back to its storage: the new row, `{ busy }`
   * (nothing changed) when a backup is being created from it or restored into it, or undefined
   * when it was not Available. The volume's row is locked before the backups are read, so a
   * backup create (which locks it too) is either seen or finds the volume Deleted.
   */
  async delete(uuid: string): Promise<VolumeRow | { busy: BusyBackup } | undefined> {
    try {
      const out = await this.#sql.begin(async (tx) => {
        const sql = tx as unknown as postgres.Sql;
        await sql`SELECT 1 FROM "storage"."volumes" WHERE uuid = ${uuid} FOR UPDATE`;
        const [busy] = await busyBackupsOf(tx, [uuid], true);
        if (busy) return { busy };
        return sql`
          WITH m AS (
            UPDATE "storage"."volumes" AS t SET state = 'Deleted', revision = t.revision + 1, updated_at = now(), last_actor = ${this.actor()}
            WHERE t.uuid = ${uuid} AND t.state::text = ANY(${statesLeadingTo("Deleted")}::text[]) AND ${leaseHeld(sql, this.#lease)}
            RETURNING t.*),
          released AS (
            UPDATE "storage"."primary_storages" AS s SET used_bytes = s.used_bytes - m.size_bytes FROM m WHERE s.uuid = m.primary_storage_uuid RETURNING s.uuid),
          o AS (${volumeChangedOutbox(sql, requestId())})
          SELECT m.*, (SELECT count(*) FROM released)::int AS __released FROM m`;
      });
      return "busy" in out ? out : this.#written(out);
    } catch (e) {
      throw mapPgError(e, { operation: "delete volume", resources: { volumeUuid: uuid } });
    }
  }

  /** Whether this replica holds its lease now (why a fenced write matched nothing). */
  async leaseHeld(): Promise<boolean> {
    return holdsLease(this.#sql, this.#lease);
  }

  leaseLost(): StratumError {
    return leaseLost(this.actor());
  }

  #written(rows: readonly postgres.Row[]): VolumeRow | undefined {
    const [raw] = rows;
    if (!raw) return undefined;
    this.eventsWritten();
    return toVolume(raw as Record<string, unknown>);
  }
}

const NO_CAPACITY = new StratumError(Code.RESOURCE_EXHAUSTED, "no capacity", { reason: "PRIMARY_STORAGE_FULL" });

/** The request the current work serves, carried by the events it writes. */
function requestId(): string | null {
  return currentWork()?.requestId ?? null;
}
