import { and, asc, eq, gt, sql, type SQL } from "drizzle-orm";
import { mapPgError, pgErrorCode } from "@stratum/db";
import type { ComputeDb } from "./db";
import { hosts, leases, vms, type HostRow, type HostStateValue, type HostStatusValue } from "./schema";
import { leaseHeld, leaseLost, rowMapper } from "@stratum/db";
import { currentWork } from "@stratum/core";

/** The event every change of a host's status writes (`stratum.compute.host_status_changed`). */
export const HOST_STATUS_CHANGED = "host_status_changed";
const hostFromRaw = rowMapper(hosts);

const HOST_CONSTRAINTS = {
  constraints: {
    hosts_agent_url_uq: { reason: "HOST_AGENT_URL_IN_USE", message: "another host already has this agent URL" },
    hosts_client_request_id_uq: { reason: "REQUEST_ID_IN_USE", message: "client_request_id was already used for another host" },
    hosts_pkey: { reason: "HOST_ALREADY_EXISTS", message: "a host with this uuid already exists" },
  },
};

/** Queries on `compute.hosts`. Capacity is changed only through conditional updates. */
export class HostStore {
  /** Agent URLs by host: a host's URL never changes, so every VM operation need not read it again. */
  readonly #agents = new Map<string, { uuid: string; agentUrl: string }>();

  constructor(
    private readonly handle: ComputeDb,
    /** This replica's incarnation: the holder of the lease its status writes need (see `ownerWriteGuard`). */
    private readonly actor: () => string,
    /** Tells the kit's outbox relay that events were committed (it publishes them at once). */
    private readonly eventsWritten: () => void = () => {},
  ) {}

  /** Where the agent of a host is, from memory after the first read. */
  async agentOf(uuid: string): Promise<{ uuid: string; agentUrl: string } | undefined> {
    const known = this.#agents.get(uuid);
    if (known) return known;
    const [row] = await this.handle.db.select({ uuid: hosts.uuid, agentUrl: hosts.agentUrl }).from(hosts).where(eq(hosts.uuid, uuid));
    if (row) this.#agents.set(uuid, row);
    return row;
  }

  async insert(row: { uuid: string; name: string; agentUrl: string; cpuCapacity: number; memoryCapacity: number; clientRequestId: string | null }): Promise<HostRow> {
    try {
      const [inserted] = await this.handle.db.insert(hosts).values(row).returning();
      return inserted!;
    } catch (e) {
      throw mapPgError(e, { ...HOST_CONSTRAINTS, resources: { hostUuid: row.uuid, agentUrl: row.agentUrl } });
    }
  }

  async get(uuid: string): Promise<HostRow | undefined> {
    const [row] = await this.handle.db.select().from(hosts).where(eq(hosts.uuid, uuid));
    return row;
  }

  async list(filter: { status?: HostStatusValue; afterSeq: number; limit: number }): Promise<HostRow[]> {
    const where: SQL[] = [gt(hosts.seq, filter.afterSeq)];
    if (filter.status) where.push(eq(hosts.status, filter.status));
    return this.handle.db.select().from(hosts).where(and(...where)).orderBy(asc(hosts.seq)).limit(filter.limit);
  }

  /** Every host's uuid: the pinger keeps those its replica owns. */
  async allUuids(): Promise<string[]> {
    const rows = await this.handle.db.select({ uuid: hosts.uuid }).from(hosts);
    return rows.map((r) => r.uuid);
  }

  /**
   * Sets a host's status — an owner write, fenced by this replica's lease and, given `fence`, by
   * the host's fence it read ("fenced" when another write came first) — and, when it changed
   * (or the host was just `added`, from no status), writes its `host_status_changed` event into
   * the outbox in the same statement: no status change without its event, across a crash or a
   * NATS outage (the kit's relay publishes it). `reconcileEips`: the write records a reconnect,
   * and marks the host for network's EIP reconcile in the same statement (`host_eip_reconciles`,
   * drained by a MarkDrainer), so a crash right after it loses no reconcile.
   */
  async setStatus(uuid: string, status: HostStatusValue, patch: { lastError?: string; agentBootId?: string; seen?: boolean; added?: boolean; fence?: number; reconcileEips?: boolean } = {}): Promise<HostRow | undefined | "fenced"> {
    const q = this.handle.sql;
    let raw: Record<string, unknown> | undefined;
    try {
      [raw] = await q`
        WITH m AS (
          UPDATE compute.hosts AS h SET status = ${status}::compute.host_status,
            last_error = COALESCE(${patch.lastError ?? null}::text, h.last_error),
            agent_boot_id = COALESCE(${patch.agentBootId ?? null}::text, h.agent_boot_id),
            last_seen_at = CASE WHEN ${patch.seen ?? false} THEN now() ELSE h.last_seen_at END,
            fence = h.fence + 1
          FROM compute.hosts AS old
          WHERE h.uuid = ${uuid} AND old.uuid = h.uuid AND ${leaseHeld(q, { leases, holder: this.actor })}
            AND (${patch.fence ?? null}::bigint IS NULL OR h.fence = ${patch.fence ?? null}::bigint)
          RETURNING h.*, old.status::text AS __from
        ), event AS (
          INSERT INTO compute.outbox (domain, event, payload, request_id)
          SELECT 'compute', ${HOST_STATUS_CHANGED},
            jsonb_build_object('hostUuid', m.uuid, 'from', CASE WHEN ${patch.added ?? false} THEN NULL ELSE m.__from END, 'to', m.status, 'lastError', m.last_error),
            ${currentWork()?.requestId ?? null}::text
          FROM m WHERE ${patch.added ?? false} OR m.__from <> m.status::text
          RETURNING 1
        ), reconcile AS (
          INSERT INTO compute.host_eip_reconciles AS r (host_uuid) SELECT m.uuid FROM m WHERE ${patch.reconcileEips ?? false}
          ON CONFLICT (host_uuid) DO UPDATE SET generation = r.generation + 1
        )
        SELECT m.*, (SELECT count(*) FROM event)::int AS __events FROM m` as Record<string, unknown>[];
    } catch (e) {
      throw mapPgError(e, { operation: "set host status", resources: { hostUuid: uuid } });
    }
    if (!raw) {
      const now = await this.get(uuid);
      if (!now) return undefined;
      // Written by another replica since it was read (the fence moved on): not this one's to write.
      if (patch.fence !== undefined && now.fence !== patch.fence) return "fenced";
      // The host's status is written by its owner only while it holds its lease.
      throw leaseLost(this.actor());
    }
    if ((raw.__events as number) > 0) this.eventsWritten();
    return hostFromRaw(raw);
  }

  async setState(uuid: string, state: HostStateValue): Promise<HostRow | undefined> {
    const [row] = await this.handle.db.update(hosts).set({ state }).where(eq(hosts.uuid, uuid)).returning();
    return row;
  }

  /**
   * Deletes the host unless a VM is placed on it. One statement, so a VM placed concurrently
   * either makes the delete find it, or fails its own reservation on the missing host (FK).
   */
  async deleteIfEmpty(uuid: string): Promise<"deleted" | "has-vms" | "not-found"> {
    let deleted: { uuid: string }[];
    try {
      deleted = await this.handle.db
        .delete(hosts)
        .where(and(eq(hosts.uuid, uuid), sql`NOT EXISTS (SELECT 1 FROM ${vms} WHERE ${vms.hostUuid} = ${hosts.uuid})`))
        .returning({ uuid: hosts.uuid });
    } catch (e) {
      // A VM placed concurrently, after this statement's snapshot: the foreign key catches it.
      if (pgErrorCode(e) === "23503") return "has-vms";
      throw mapPgError(e, { resources: { hostUuid: uuid } });
    }
    if (deleted.length > 0) {
      this.#agents.delete(uuid);
      return "deleted";
    }
    return (await this.get(uuid)) ? "has-vms" : "not-found";
  }

  async vmCount(uuid: string): Promise<number> {
    const [row] = await this.handle.db.select({ n: sql<number>`count(*)::int` }).from(vms).where(eq(vms.hostUuid, uuid));
    return row?.n ?? 0;
  }
}
