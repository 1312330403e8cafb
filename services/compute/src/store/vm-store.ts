import { and, asc, eq, gt, inArray, ne, sql, type SQL } from "drizzle-orm";
import { currentWork } from "@stratum/core";
import { KeyedBatcher, leaseHeldSql, leaseLost, mapPgError, ownerWriteGuard, rowMapper, TransitionBatcher, type LeaseHolder, type WriteGuard } from "@stratum/db";
import type { ComputeDb } from "./db";
import { PlacementBatcher } from "./placement-batcher";
import { hosts, leases, outbox, vms, volumeReleases, type VmRow, type VmStateValue } from "./schema";
import { vmChangePayload, vmEventKey, VM_STATE_CHANGED } from "./vm-events";

const VM_CONSTRAINTS = {
  constraints: {
    vms_client_request_id_uq: { reason: "REQUEST_ID_IN_USE", message: "client_request_id was already used for another VM" },
    vms_pkey: { reason: "VM_ALREADY_EXISTS", message: "a VM with this uuid already exists" },
  },
};

export interface NewVm {
  uuid: string;
  name: string;
  cpu: number;
  memory: number;
  clientRequestId: string | null;
}

/** States a VM is in only while an operation works on it (Migrating: a compute.migrate job). */
export const TRANSIENT_STATES: readonly VmStateValue[] = ["Created", "Starting", "Stopping", "Rebooting", "Destroying", "Migrating"];

/**
 * Queries on `compute.vms`. State changes are conditional updates whose row count is checked by
 * the caller. Every write is fenced (see `ownerWriteGuard`): it needs this replica's lease, and a
 * VM another incarnation is working on is not this replica's to move until that one's lease is
 * gone; every change increments the VM's `fence`, the token its agent commands carry.
 */
export class VmStore {
  readonly #transitions: TransitionBatcher<typeof vms, VmStateValue>;
  readonly #placements: PlacementBatcher;
  readonly #lease: LeaseHolder;
  readonly #guard: WriteGuard;
  readonly #reads: KeyedBatcher<string, VmRow>;

  /**
   * @param actor the replica incarnation writing (`<replicaId>@<startedAt>`), recorded with every
   *   change of a VM (see `vms.last_actor`).
   */
  constructor(
    private readonly handle: ComputeDb,
    private readonly actor: () => string,
    /** Tells the kit's outbox relay that events were committed (it publishes them at once). */
    private readonly eventsWritten: () => void = () => {},
  ) {
    this.#lease = { leases, holder: actor };
    this.#guard = ownerWriteGuard({ ...this.#lease, actor: vms.lastActor, state: vms.state, busyStates: TRANSIENT_STATES });
    this.#transitions = new TransitionBatcher({
      sql: handle.sql,
      table: vms,
      key: vms.uuid,
      state: vms.state,
      message: vms.lastError,
      updatedAt: vms.updatedAt,
      stamp: { column: vms.lastActor, value: actor },
      guard: this.#guard,
      fence: vms.fence,
      request: vms.opRequest,
      // Every state change and its event in one statement: neither exists without the other.
      outbox: { table: outbox, domain: "compute", event: VM_STATE_CHANGED, payload: (q) => q`${q.unsafe(vmChangePayload("m", "m.__from"))}`, key: (q) => q`${q.unsafe(vmEventKey("m"))}`, written: eventsWritten },
    });
    this.#placements = new PlacementBatcher(handle.sql, vmFromRaw, (vm) => this.#placeAnywhere(vm), this.#lease, eventsWritten);
    // Reads of one turn share a statement: every WatchVm starts with one, every accept makes one.
    this.#reads = new KeyedBatcher((uuid) => uuid, (uuids) => this.#getMany(uuids));
  }

  /**
   * Records a VM in `Created` and reserves its capacity on a host atomically, so that no
   * interleaving of concurrent creates can over-commit a host: the reservation is a conditional
   * UPDATE of the host row (guarded by the capacity checks too), and the VM row exists only if it
   * succeeded. With no `hostUuid`, the connected, enabled host with the most free memory is
   * chosen; concurrent creates of this replica are placed together (PlacementBatcher), a lone one
   * in one statement that skips hosts another create is reserving right now (SKIP LOCKED).
   *
   * Returns undefined when no host can take the VM; nothing is written then.
   */
  async insertPlaced(vm: NewVm, hostUuid: string | undefined): Promise<VmRow | undefined> {
    if (hostUuid) {
      const placed = await this.#insertOn(vm, sql`SELECT ${hosts.uuid} FROM ${hosts} WHERE ${hosts.uuid} = ${hostUuid} FOR UPDATE`);
      if (!placed && !(await this.leaseHeld())) throw leaseLost(this.#lease.holder());
      return placed;
    }
    return this.#placements.place({ ...vm, requestId: currentWork()?.requestId ?? null });
  }

  /** Places one VM on any host that fits, in one statement (the batcher's path for a lone VM). */
  async #placeAnywhere(vm: NewVm): Promise<VmRow | undefined> {
    // SKIP LOCKED can find nothing only because every fitting host is being reserved by a
    // concurrent create at this instant; that is not "no capacity". Then look again, and in the
    // end wait for the locks, so the answer is "no host" only when no host fits.
    for (let attempt = 1; ; attempt++) {
      const wait = attempt > 3;
      const inserted = await this.#insertOn(vm, this.#fittingHost(vm, wait));
      if (inserted) return inserted;
      if (!(await this.leaseHeld())) throw leaseLost(this.#lease.holder());
      if (wait || !(await this.#anyHostFits(vm))) return undefined;
    }
  }

  #fittingHost(vm: NewVm, waitForLocks: boolean): SQL {
    return sql`SELECT ${hosts.uuid} FROM ${hosts} WHERE ${canTake(vm)}
      ORDER BY ${hosts.memoryCapacity} - ${hosts.memoryUsed} DESC
      LIMIT 1 FOR UPDATE ${waitForLocks ? sql`` : sql`SKIP LOCKED`}`;
  }

  /** Whether this replica holds its lease now (a write that matched nothing may be why). */
  async leaseHeld(): Promise<boolean> {
    const [row] = await this.handle.db.execute<{ ok: boolean }>(sql`SELECT ${leaseHeldSql(this.#lease)} AS ok`);
    return row?.ok === true;
  }

  async #anyHostFits(vm: NewVm): Promise<boolean> {
    const rows = await this.handle.db.execute(sql`SELECT 1 FROM ${hosts} WHERE ${canTake(vm)} LIMIT 1`);
    return rows.length > 0;
  }

  async #insertOn(vm: NewVm, candidate: SQL): Promise<VmRow | undefined> {
    try {
      const rows = await this.handle.db.execute<VmRow>(sql`
        WITH reserved AS (
          UPDATE ${hosts} SET cpu_used = cpu_used + ${vm.cpu}, memory_used = memory_used + ${vm.memory}
          WHERE uuid = (${candidate}) AND ${canTake(vm)} AND ${leaseHeldSql(this.#lease)}
          RETURNING uuid
        )
        , placed AS (
          INSERT INTO ${vms} (uuid, name, state, host_uuid, cpu, memory, client_request_id, last_actor, op_request)
          SELECT ${vm.uuid}, ${vm.name}, 'Created', reserved.uuid, ${vm.cpu}, ${vm.memory}, ${vm.clientRequestId}, ${this.actor()}, ${vm.clientRequestId} FROM reserved
          RETURNING *
        ), cleared AS (${clearReleases(sql`SELECT uuid FROM placed`)})
        SELECT placed.* FROM placed`);
      const [raw] = rows as unknown as Record<string, unknown>[];
      return raw ? vmFromRaw(raw) : undefined;
    } catch (e) {
      throw mapPgError(e, { ...VM_CONSTRAINTS, resources: { vmUuid: vm.uuid } });
    }
  }

  /** The VM as committed now (a read submitted after a write sees it: reads of one turn share a statement issued after them). */
  get(uuid: string): Promise<VmRow | undefined> {
    return this.#reads.submit(uuid);
  }

  async #getMany(uuids: string[]): Promise<Map<string, VmRow>> {
    try {
      const rows = await this.handle.sql`SELECT * FROM compute.vms WHERE uuid = ANY(${uuids}::uuid[])`;
      return new Map(rows.map((raw) => vmFromRaw(raw as Record<string, unknown>)).map((vm) => [vm.uuid, vm]));
    } catch (e) {
      throw mapPgError(e, { operation: "get vm" });
    }
  }

  /**
   * The VMs in the middle of an operation (a transient state) that may need a repair, for the
   * takeover scan: those left by an incarnation whose lease is gone, and this replica's own (one
   * of its operations may have failed before recording its end). A VM another replica with a
   * lease works on is not listed.
   */
  async abandoned(): Promise<VmRow[]> {
    return this.handle.db.select().from(vms).where(and(
      inArray(vms.state, [...TRANSIENT_STATES]),
      sql`(${vms.lastActor} = ${this.actor()} OR NOT EXISTS (SELECT 1 FROM ${leases} WHERE ${leases.holder} = ${vms.lastActor} AND ${leases.expiresAt} > now()))`,
    ));
  }

  /**
   * Takes a VM left in `state` by an incarnation that lost its lease (see
   * `TransitionBatcher.claim`): from now on that incarnation's writes and agent commands on it
   * are refused. The claimed row (its new fence), or undefined if it was not there to take.
   */
  claim(uuid: string, state: VmStateValue): Promise<VmRow | undefined> {
    return this.#transitions.claim(uuid, state);
  }

  /** The VMs holding capacity on a host, whatever their state. */
  async placedOn(hostUuid: string): Promise<VmRow[]> {
    return this.handle.db.select().from(vms).where(eq(vms.hostUuid, hostUuid));
  }

  /**
   * Moves a VM from `from` to `to` only if it is still in `from`. Returns the updated row, or
   * undefined when the VM was not in `from` (the caller reports the state it found).
   */
  transition(uuid: string, from: VmStateValue, to: VmStateValue, lastError?: string, opRequest?: string): Promise<VmRow | undefined> {
    return this.#transitions.transition(uuid, from, to, lastError, opRequest);
  }

  /**
   * Moves a VM from `from` to `to` and gives its capacity back to its host, in one transaction:
   * the VM row loses its host and the host's counters drop by the VM's size, or neither happens.
   * Used when a create is rolled back (→ Error) and when a destroy completes (→ Destroyed).
   */
  async transitionReleasing(uuid: string, from: VmStateValue, to: VmStateValue, lastError?: string, opRequest?: string): Promise<VmRow | undefined> {
    const q = this.handle.sql;
    try {
      // `old` is the row before the update (a self-join sees the statement's snapshot): the host
      // whose counters drop is the one the VM held.
      const [raw] = await q`
        WITH m AS (
          UPDATE compute.vms AS t SET state = ${to}::compute.vm_state, host_uuid = NULL, updated_at = now(), last_actor = ${this.actor()},
            fence = t.fence + 1, last_error = COALESCE(${lastError ?? null}::text, t.last_error), op_request = ${opRequest || null}::text
          FROM compute.vms AS old
          WHERE t.uuid = ${uuid} AND old.uuid = t.uuid AND t.state = ${from}::compute.vm_state AND ${this.#guard(q)!}
          RETURNING t.*, old.host_uuid AS __old_host, ${from}::text AS __from
        ), released AS (
          UPDATE compute.hosts AS h SET cpu_used = h.cpu_used - m.cpu, memory_used = h.memory_used - m.memory FROM m WHERE h.uuid = m.__old_host
        ), marked AS (
          -- A destroyed VM's volumes are storage's to release: the mark is durable, VolumeReleaser drains it.
          INSERT INTO compute.volume_releases (vm_uuid) SELECT m.uuid FROM m WHERE m.state = 'Destroyed' ON CONFLICT DO NOTHING
        ), event AS (
          INSERT INTO compute.outbox (domain, event, key, payload, request_id)
          SELECT 'compute', ${VM_STATE_CHANGED}, ${q.unsafe(vmEventKey("m"))}, ${q.unsafe(vmChangePayload("m", "m.__from"))}, ${currentWork()?.requestId ?? null}::text FROM m
        )
        SELECT * FROM m`;
      if (!raw) return undefined;
      this.eventsWritten();
      return vmFromRaw(raw as Record<string, unknown>);
    } catch (e) {
      throw mapPgError(e, { operation: "release vm", resources: { vmUuid: uuid } });
    }
  }

  /**
   * Ends the accepts of placed VMs, in one transaction: those storage gave a root volume record
   * it (their fence moves on) with their first event, Created; the others are removed with their
   * host capacity given back — a create that failed records nothing — and, when storage may have
   * made their root volume without saying so (`maybeMade`), marked for release. The recorded rows.
   */
  async finishCreates(done: ReadonlyArray<{ uuid: string; rootVolumeUuid: string; requestId: string | null }>, failed: readonly string[], maybeMade: readonly string[]): Promise<Map<string, VmRow>> {
    const q = this.handle.sql;
    try {
      const rows = await q.begin(async (tx) => {
        const sql = tx as unknown as typeof q;
        let recorded: Record<string, unknown>[] = [];
        if (done.length > 0) {
          recorded = (await sql`
            WITH m AS (
              UPDATE compute.vms AS t SET root_volume_uuid = x.root, fence = t.fence + 1, updated_at = now(), last_actor = ${this.actor()}
              FROM unnest(${done.map((d) => d.uuid)}::uuid[], ${done.map((d) => d.rootVolumeUuid)}::uuid[]) AS x(uuid, root)
              WHERE t.uuid = x.uuid AND ${this.#guard(sql)!}
              RETURNING t.*
            ), event AS (
              INSERT INTO compute.outbox (domain, event, key, payload, request_id)
              SELECT 'compute', ${VM_STATE_CHANGED}, ${sql.unsafe(vmEventKey("m"))}, ${sql.unsafe(vmChangePayload("m", "(CASE WHEN m.state = 'Created' THEN NULL ELSE m.state::text END)"))}, x.request_id
              FROM m JOIN unnest(${done.map((d) => d.uuid)}::uuid[], ${done.map((d) => d.requestId)}::text[]) AS x(uuid, request_id) ON x.uuid = m.uuid
            )
            SELECT * FROM m`) as unknown as Record<string, unknown>[];
        }
        if (failed.length > 0) {
          await sql`
            WITH gone AS (
              DELETE FROM compute.vms AS t WHERE t.uuid = ANY(${failed as string[]}::uuid[]) AND t.state = 'Created' AND ${this.#guard(sql)!}
              RETURNING t.host_uuid, t.cpu, t.memory
            ), released AS (
              UPDATE compute.hosts AS h SET cpu_used = h.cpu_used - g.cpu, memory_used = h.memory_used - g.memory
              FROM (SELECT host_uuid, sum(cpu)::int AS cpu, sum(memory)::bigint AS memory FROM gone GROUP BY host_uuid) AS g WHERE h.uuid = g.host_uuid
            )
            INSERT INTO compute.volume_releases (vm_uuid) SELECT unnest(${maybeMade as string[]}::uuid[]) ON CONFLICT DO NOTHING`;
        }
        return recorded;
      });
      if (rows.length > 0) this.eventsWritten();
      return new Map(rows.map((raw) => vmFromRaw(raw)).map((vm) => [vm.uuid, vm]));
    } catch (e) {
      throw mapPgError(e, { operation: "record root volumes", resources: { vmUuid: done[0]?.uuid ?? failed[0] ?? "" } });
    }
  }

  /**
   * Reserves capacity for a migrating VM on a target host: the named one, or the connected,
   * enabled host (never the VM's own) with the most free memory that fits it. One transaction:
   * the VM row (Migrating under `opRequest`, no reservation yet, this replica's to write) is
   * locked first, then the host's counters go up and the VM records the host in
   * `migrate_target_uuid`, or nothing changes. Undefined when the VM is not in that state or no
   * host fits (the caller tells which).
   */
  async reserveMigrationTarget(uuid: string, opRequest: string, targetHostUuid: string | undefined): Promise<VmRow | undefined> {
    const q = this.handle.sql;
    try {
      // One statement (the migration's critical path after the backups exit): the VM row and the
      // chosen host are locked by their CTEs before either is written.
      const [raw] = await q`
        WITH v AS (
          SELECT t.uuid, t.cpu, t.memory, t.host_uuid FROM compute.vms AS t
          WHERE t.uuid = ${uuid} AND t.state = 'Migrating' AND t.op_request = ${opRequest} AND t.migrate_target_uuid IS NULL AND ${this.#guard(q)!}
          FOR UPDATE
        ), target AS (
          SELECT h.uuid FROM compute.hosts AS h, v
          WHERE h.uuid <> v.host_uuid AND (${targetHostUuid ?? null}::uuid IS NULL OR h.uuid = ${targetHostUuid ?? null}::uuid)
            AND h.status = 'Connected' AND h.state = 'Enabled' AND h.cpu_used + v.cpu <= h.cpu_capacity AND h.memory_used + v.memory <= h.memory_capacity
          ORDER BY h.memory_capacity - h.memory_used DESC LIMIT 1 FOR UPDATE OF h
        ), reserved AS (
          UPDATE compute.hosts AS h SET cpu_used = h.cpu_used + v.cpu, memory_used = h.memory_used + v.memory FROM v, target WHERE h.uuid = target.uuid RETURNING h.uuid
        )
        UPDATE compute.vms AS t SET migrate_target_uuid = reserved.uuid, updated_at = now() FROM reserved WHERE t.uuid = ${uuid} RETURNING t.*`;
      return raw ? vmFromRaw(raw as Record<string, unknown>) : undefined;
    } catch (e) {
      throw mapPgError(e, { operation: "reserve migration target", resources: { vmUuid: uuid } });
    }
  }

  /**
   * Ends a migration (Migrating under `opRequest` → Running) in one statement with its event.
   * `switch`: the VM now runs on its reserved target — its host becomes the target and the
   * source's capacity is released. Otherwise it stays on its source and the target's reservation
   * (if any) is released, `lastError` saying why. Undefined when the VM was not so (moved, or
   * another replica's now).
   */
  async endMigration(uuid: string, opRequest: string, outcome: "switch" | "revert", lastError: string): Promise<VmRow | undefined> {
    const q = this.handle.sql;
    const switching = outcome === "switch";
    try {
      const [raw] = await q`
        WITH m AS (
          UPDATE compute.vms AS t SET state = 'Running', host_uuid = CASE WHEN ${switching} THEN old.migrate_target_uuid ELSE old.host_uuid END,
            migrate_target_uuid = NULL, updated_at = now(), last_actor = ${this.actor()}, fence = t.fence + 1, last_error = ${lastError}, op_request = ${opRequest}
          FROM compute.vms AS old
          WHERE t.uuid = ${uuid} AND old.uuid = t.uuid AND t.state = 'Migrating' AND t.op_request = ${opRequest}
            AND (NOT ${switching} OR old.migrate_target_uuid IS NOT NULL) AND ${this.#guard(q)!}
          RETURNING t.*, CASE WHEN ${switching} THEN old.host_uuid ELSE old.migrate_target_uuid END AS __released, 'Migrating'::text AS __from
        ), released AS (
          UPDATE compute.hosts AS h SET cpu_used = h.cpu_used - m.cpu, memory_used = h.memory_used - m.memory FROM m WHERE h.uuid = m.__released
        ), event AS (
          INSERT INTO compute.outbox (domain, event, key, payload, request_id)
          SELECT 'compute', ${VM_STATE_CHANGED}, ${q.unsafe(vmEventKey("m"))}, ${q.unsafe(vmChangePayload("m", "m.__from"))}, ${currentWork()?.requestId ?? null}::text FROM m
        )
        SELECT * FROM m`;
      if (!raw) return undefined;
      this.eventsWritten();
      return vmFromRaw(raw as Record<string, unknown>);
    } catch (e) {
      throw mapPgError(e, { operation: "end migration", resources: { vmUuid: uuid } });
    }
  }

  async list(filter: { state?: VmStateValue; hostUuid?: string; name?: string; afterSeq: number; limit: number }): Promise<VmRow[]> {
    const where: SQL[] = [gt(vms.seq, filter.afterSeq)];
    // Destroyed VMs are history: listed only when asked for by state.
    where.push(filter.state ? eq(vms.state, filter.state) : ne(vms.state, "Destroyed"));
    if (filter.hostUuid) where.push(eq(vms.hostUuid, filter.hostUuid));
    if (filter.name) where.push(eq(vms.name, filter.name));
    return this.handle.db.select().from(vms).where(and(...where)).orderBy(asc(vms.seq)).limit(filter.limit);
  }
}

/**
 * Removes the pending volume release of VMs being placed (their uuids in `uuids`, a subquery):
 * a create retried after a rollback adopts whatever root volume storage kept. A release running
 * now holds the rows locked (VolumeReleaseStore.drain), so this waits for it to end first.
 */
export function clearReleases(uuids: SQL): SQL {
  return sql`DELETE FROM ${volumeReleases} WHERE ${volumeReleases.vmUuid} IN (${uuids})`;
}

/** A host that may receive `vm`: connected, enabled, with room for it. */
function canTake(vm: { cpu: number; memory: number }): SQL {
  return sql`${hosts.status} = 'Connected' AND ${hosts.state} = 'Enabled'
    AND ${hosts.cpuUsed} + ${vm.cpu} <= ${hosts.cpuCapacity} AND ${hosts.memoryUsed} + ${vm.memory} <= ${hosts.memoryCapacity}`;
}

/** Maps a raw `RETURNING *` row of a hand-written statement the way drizzle maps its own results. */
const vmFromRaw = rowMapper(vms);
