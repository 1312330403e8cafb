import { currentWork } from "@stratum/core";
import { holdsLease, leaseHeld, type LeaseHolder, leaseLost, mapPgError, rowMapper } from "@stratum/db";
import type postgres from "postgres";
import { busyBackupsOf, type BusyBackup } from "./busy-backups";
import type { StorageDb } from "./db";
import { leases, primaryStorages, volumes, type PrimaryStorageRow, type VolumeRow } from "./schema";
import { volumeChangedOutbox } from "./volume-events";

const toVolume = rowMapper(volumes);
const toStorage = rowMapper(primaryStorages);

/** One root volume to insert, on the storage chosen for it. */
export interface NewRootVolume {
  uuid: string;
  name: string;
  vmUuid: string;
  primaryStorageUuid: string;
  sizeBytes: number;
}

/** Constraint names a racing create of the same VM's root volume trips over (see RootVolumes.create). */
export const ROOT_VOLUME_RACE_CONSTRAINTS = new Set(["volumes_vm_root_uq", "volumes_pkey"]);

/**
 * The batched statements of VMs' volumes: root volumes created for a placement batch, and the
 * volumes of destroyed VMs released. Fenced by this replica's lease like every volume write, with
 * each changed volume's `volume_changed` event in the same statement. Neither needs the owner of
 * the volumes: the rows are new (the database arbitrates capacity and the one-root-volume-per-VM
 * index), or moved by conditional updates on rows this transaction has locked.
 */
export class RootVolumeStore {
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

  /** Whether this replica holds its lease now (why a fenced write matched nothing). */
  async leaseHeld(): Promise<boolean> {
    return holdsLease(this.#sql, this.#lease);
  }

  leaseLost() {
    return leaseLost(this.actor());
  }

  /** The root volumes the VMs are attached to now. */
  async rootVolumesOf(vmUuids: readonly string[]): Promise<VolumeRow[]> {
    const rows = await this.#sql`SELECT * FROM "storage"."volumes" WHERE vm_uuid = ANY(${vmUuids as string[]}::uuid[]) AND kind = 'Root'`.catch((e) => {
      throw mapPgError(e, { operation: "find root volumes" });
    });
    return rows.map((r) => toVolume(r as Record<string, unknown>));
  }

  /** The storages a batch may use: the local storages of its hosts, every shared one, and the named ones. */
  async candidates(hostUuids: readonly string[], named: readonly string[]): Promise<PrimaryStorageRow[]> {
    const rows = await this.#sql`
      SELECT * FROM "storage"."primary_storages"
      WHERE host_uuid IS NULL OR host_uuid = ANY(${hostUuids as string[]}::uuid[]) OR uuid = ANY(${named as string[]}::uuid[])
      ORDER BY seq`.catch((e) => {
      throw mapPgError(e, { operation: "find primary storages" });
    });
    return rows.map((r) => toStorage(r as Record<string, unknown>));
  }

  async storages(uuids: readonly string[]): Promise<PrimaryStorageRow[]> {
    const rows = await this.#sql`SELECT * FROM "storage"."primary_storages" WHERE uuid = ANY(${uuids as string[]}::uuid[])`.catch((e) => {
      throw mapPgError(e, { operation: "read primary storages" });
    });
    return rows.map((r) => toStorage(r as Record<string, unknown>));
  }

  /**
   * Inserts root volumes, InUse and attached to their VMs, reserving their bytes: one statement
   * for the whole batch. Each storage row is locked (in uuid order, so batches never deadlock) and
   * read as it is now; on each storage the volumes that fit — in request order, a running sum
   * against its free bytes — are inserted and their sum reserved by one UPDATE of that storage
   * (the CHECK the last word). The rows inserted; a volume missing from them did not fit (or the
   * lease is gone: nothing is inserted then, and the caller tells which).
   *
   * A volume of a VM that has one already fails the statement (`volumes_vm_root_uq`): the caller
   * reads what is there and tries again without it.
   */
  async insert(batch: readonly NewRootVolume[]): Promise<VolumeRow[]> {
    if (batch.length === 0) return [];
    const sql = this.#sql;
    try {
      const rows = await sql`
        WITH req AS (
          SELECT * FROM unnest(
            ${batch.map((v) => v.uuid)}::uuid[], ${batch.map((v) => v.name)}::text[], ${batch.map((v) => v.primaryStorageUuid)}::uuid[],
            ${batch.map((v) => v.vmUuid)}::uuid[], ${batch.map((v) => v.sizeBytes)}::bigint[]
          ) WITH ORDINALITY AS r(uuid, name, storage, vm, size, n)),
        s AS (
          SELECT p.uuid, p.total_capacity - p.used_bytes AS free FROM "storage"."primary_storages" AS p
          WHERE p.uuid IN (SELECT storage FROM req) AND ${leaseHeld(sql, this.#lease)}
          ORDER BY p.uuid FOR UPDATE),
        fit AS (
          SELECT c.* FROM (SELECT req.*, sum(req.size) OVER (PARTITION BY req.storage ORDER BY req.n) AS upto FROM req) AS c
          JOIN s ON s.uuid = c.storage WHERE c.upto <= s.free),
        reserved AS (
          UPDATE "storage"."primary_storages" AS p SET used_bytes = p.used_bytes + f.total
          FROM (SELECT storage, sum(size)::bigint AS total FROM fit GROUP BY storage) AS f
          WHERE p.uuid = f.storage RETURNING p.uuid),
        m AS (
          INSERT INTO "storage"."volumes" (uuid, name, primary_storage_uuid, kind, size_bytes, state, vm_uuid, last_actor)
          SELECT fit.uuid, fit.name, fit.storage, 'Root', fit.size, 'InUse', fit.vm, ${this.actor()} FROM fit ORDER BY fit.n
          RETURNING *),
        o AS (${volumeChangedOutbox(sql, requestId())})
        SELECT m.*, (SELECT count(*) FROM reserved)::int AS __reserved FROM m`;
      if (rows.length > 0) this.eventsWritten();
      return rows.map((r) => toVolume(r as Record<string, unknown>));
    } catch (e) {
      if (isRace(e)) throw new RootVolumeRace();
      throw mapPgError(e, { operation: "create root volumes" });
    }
  }

  /**
   * Releases the volumes attached to the VMs, in one transaction: their rows locked first (so a
   * backup being created on one waits, or is seen), then — unless a backup is being created from
   * a root volume, `{ busy }` then and nothing changes — root volumes Deleted with their bytes
   * given back to their storages, data volumes detached (Available). The volumes changed.
   */
  async release(vmUuids: readonly string[]): Promise<VolumeRow[] | { busy: BusyBackup[] }> {
    try {
      const out = await this.#sql.begin(async (tx) => {
        const sql = tx as unknown as postgres.Sql;
        const attached = await sql`
          SELECT uuid, kind FROM "storage"."volumes" WHERE vm_uuid = ANY(${vmUuids as string[]}::uuid[]) AND state = 'InUse' ORDER BY uuid FOR UPDATE`;
        if (attached.length === 0) return [];
        const roots = attached.filter((v) => v.kind === "Root").map((v) => v.uuid as string);
        const busy = roots.length > 0 ? await busyBackupsOf(tx, roots) : [];
        if (busy.length > 0) return { busy };
        const ids = attached.map((v) => v.uuid as string);
        const rows = await sql`
          WITH m AS (
            UPDATE "storage"."volumes" AS t SET state = (CASE WHEN t.kind = 'Root' THEN 'Deleted' ELSE 'Available' END)::"storage"."volume_state",
              vm_uuid = NULL, revision = t.revision + 1, updated_at = now(), last_actor = ${this.actor()}
            WHERE t.uuid = ANY(${ids}::uuid[]) AND t.state = 'InUse' AND ${leaseHeld(sql, this.#lease)}
            RETURNING t.*),
          released AS (
            UPDATE "storage"."primary_storages" AS s SET used_bytes = s.used_bytes - x.total
            FROM (SELECT primary_storage_uuid, sum(size_bytes)::bigint AS total FROM m WHERE kind = 'Root' GROUP BY primary_storage_uuid) AS x
            WHERE s.uuid = x.primary_storage_uuid RETURNING s.uuid),
          o AS (${volumeChangedOutbox(sql, requestId())})
          SELECT m.*, (SELECT count(*) FROM released)::int AS __released FROM m`;
        // The rows are locked by this transaction: only a lost lease matches fewer.
        if (rows.length !== ids.length) throw leaseLost(this.actor());
        return rows.map((r) => toVolume(r as Record<string, unknown>));
      });
      if (Array.isArray(out) && out.length > 0) this.eventsWritten();
      return out;
    } catch (e) {
      throw mapPgError(e, { operation: "release vm volumes" });
    }
  }
}

/** A concurrent create gave one of the batch's VMs its root volume first. */
export class RootVolumeRace extends Error {
  constructor() {
    super("a VM of the batch got a root volume concurrently");
  }
}

function isRace(e: unknown): boolean {
  const pg = e as { code?: string; constraint_name?: string };
  return pg?.code === "23505" && ROOT_VOLUME_RACE_CONSTRAINTS.has(pg.constraint_name ?? "");
}

/** The request the current work serves, carried by the events it writes. */
function requestId(): string | null {
  return currentWork()?.requestId ?? null;
}
