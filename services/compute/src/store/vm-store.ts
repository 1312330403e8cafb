import { and, asc, eq, gt, inArray, ne, sql, type SQL } from "drizzle-orm";
import { Code, currentWork, StratumError } from "@stratum/core";
import { KeyedBatcher, leaseHeldSql, leaseLost, mapPgError, ownerWriteGuard, rowMapper, TransitionBatcher, type LeaseHolder, type WriteGuard } from "@stratum/db";
import type { ComputeDb } from "./db";
import { PlacementBatcher } from "./placement-batcher";
import { hosts, leases, nicReleases, outbox, vmNics, vms, volumeReleases, type VmNicRow, type VmRow, type VmStateValue } from "./schema";
import { vmChangePayload, vmEventKey, VM_STATE_CHANGED } from "./vm-events";

const NIC_CONSTRAINTS = {
  constraints: {
    vm_nics_mac_uq: { reason: "MAC_ADDRESS_IN_USE", message: "another NIC already has this MAC address" },
  },
};

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
  /** How many NICs the create asks for (`vms.nic_count`; default none). */
  nicCount?: number;
}

/** A placed VM's create, ended (VmStore.finishCreates): its root volume and NICs to record. */
export interface FinishedCreate {
  uuid: string;
  /**
   * The VM's fence as placed: its create is recorded only if nothing moved it since — not a
   * takeover that removed it, nor a new VM of the same uuid (a retry placed after that removal).
   */
  fence: number;
  rootVolumeUuid: string;
  /** The NICs to record (none when it has none, or they are recorded already). */
  nics: readonly VmNicRow[];
  requestId: string | null;
}

/** What VmStore.finishCreates recorded: the VMs, and those it could not (rolled back, and why). */
export interface FinishedCreates {
  recorded: Map<string, VmRow>;
  refused: Map<string, StratumError>;
}

/** Options of a VmStore beyond its handle and actor. */
export interface VmStoreOptions {
  /**
   * Told after a committed write moved a VM that has NICs (its row as written): such a move may
   * have written its EIP sync mark (the `vms_eip_sync` trigger) or, when Destroyed, its NIC
   * release mark, which a drainer is then kicked to send. Never called for VMs without NICs.
   */
  nicVmMoved?: (vm: VmRow) => void;
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
  readonly #nicReads: KeyedBatcher<string, VmNicRow[]>;

  /**
   * @param actor the replica incarnation writing (`<replicaId>@<startedAt>`), recorded with every
   *   change of a VM (see `vms.last_actor`).
   */
  constructor(
    private readonly handle: ComputeDb,
    private readonly actor: () => string,
    /** Tells the kit's outbox relay that events were committed (it publishes them at once). */
    private readonly eventsWritten: () => void = () => {},
    private readonly options: VmStoreOptions = {},
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
    this.#nicReads = new KeyedBatcher((uuid) => uuid, (uuids) => this.#nicsOfMany(uuids));
  }

  /** Tells `nicVmMoved` about a moved row with NICs; returns the row. */
  #moved<T extends VmRow | undefined>(row: T, before?: { nicCount: number }): T {
    if (row && (row.nicCount > 0 || (before?.nicCount ?? 0) > 0)) this.options.nicVmMoved?.(row);
    return row;
  }

  /**
   * The NICs of these VMs (device order), one statement for a page of them and those of
   * concurrent reads: VMs without NICs (`nic_count` 0) cost no query at all.
   */
  async nicsOf(vms: readonly VmRow[]): Promise<Map<string, VmNicRow[]>> {
    const withNics = vms.filter((vm) => vm.nicCount > 0);
    const out = new Map<string, VmNicRow[]>();
    if (withNics.length === 0) return out;
    const lists = await Promise.all(withNics.map((vm) => this.#nicReads.submit(vm.uuid)));
    for (const [i, vm] of withNics.entries()) out.set(vm.uuid, lists[i] ?? []);
    return out;
  }

  async #nicsOfMany(uuids: string[]): Promise<Map<string, VmNicRow[]>> {
    try {
      const rows = await this.handle.sql`SELECT * FROM compute.vm_nics WHERE vm_uuid = ANY(${uuids}::uuid[]) ORDER BY vm_uuid, device_index`;
      const out = new Map<string, VmNicRow[]>();
      for (const raw of rows) {
        const nic = nicFromRaw(raw as Record<string, unknown>);
        const list = out.get(nic.vmUuid);
        if (list) list.push(nic);
        else out.set(nic.vmUuid, [nic]);
      }
      for (const uuid of uuids) if (!out.has(uuid)) out.set(uuid, []);
      return out;
    } catch (e) {
      throw mapPgError(e, { operation: "get vm nics" });
    }
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
          INSERT INTO ${vms} (uuid, name, state, host_uuid, cpu, memory, client_request_id, last_actor, op_request, nic_count)
          SELECT ${vm.uuid}, ${vm.name}, 'Created', reserved.uuid, ${vm.cpu}, ${vm.memory}, ${vm.clientRequestId}, ${this.actor()}, ${vm.clientRequestId}, ${vm.nicCount ?? 0} FROM reserved
          RETURNING *
        ), cleared AS (${clearReleases(sql`SELECT uuid FROM placed`)})
        ${(vm.nicCount ?? 0) > 0 ? sql`, nics_cleared AS (${clearNicReleases(sql`SELECT uuid FROM placed`)})` : sql``}
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
  async transition(uuid: string, from: VmStateValue, to: VmStateValue, lastError?: string, opRequest?: string): Promise<VmRow | undefined> {
    return this.#moved(await this.#transitions.transition(uuid, from, to, lastError, opRequest));
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
            fence = t.fence + 1, last_error = COALESCE(${lastError ?? null}::text, t.last_error), op_request = ${opRequest || null}::text,
            nic_count = CASE WHEN ${to} = 'Destroyed' THEN 0 ELSE t.nic_count END
          FROM compute.vms AS old
          WHERE t.uuid = ${uuid} AND old.uuid = t.uuid AND t.state = ${from}::compute.vm_state AND ${this.#guard(q)!}
          RETURNING t.*, old.host_uuid AS __old_host, old.nic_count AS __old_nics, ${from}::text AS __from
        ), released AS (
          UPDATE compute.hosts AS h SET cpu_used = h.cpu_used - m.cpu, memory_used = h.memory_used - m.memory FROM m WHERE h.uuid = m.__old_host
        ), marked AS (
          -- A destroyed VM's volumes are storage's to release: the mark is durable, a MarkDrainer drains it.
          INSERT INTO compute.volume_releases (vm_uuid) SELECT m.uuid FROM m WHERE m.state = 'Destroyed' ON CONFLICT DO NOTHING
        ), nics_marked AS (
          -- And its NICs' addresses network's to give back; the NICs end with the VM.
          INSERT INTO compute.nic_releases (vm_uuid) SELECT m.uuid FROM m WHERE m.state = 'Destroyed' AND m.__old_nics > 0 ON CONFLICT DO NOTHING
        ), nics_gone AS (
          DELETE FROM compute.vm_nics AS n USING m WHERE n.vm_uuid = m.uuid AND m.state = 'Destroyed' AND m.__old_nics > 0
        ), event AS (
          INSERT INTO compute.outbox (domain, event, key, payload, request_id)
          SELECT 'compute', ${VM_STATE_CHANGED}, ${q.unsafe(vmEventKey("m"))}, ${q.unsafe(vmChangePayload("m", "m.__from"))}, ${currentWork()?.requestId ?? null}::text FROM m
        )
        SELECT * FROM m`;
      if (!raw) return undefined;
      this.eventsWritten();
      return this.#moved(vmFromRaw(raw as Record<string, unknown>), { nicCount: Number(raw.__old_nics) });
    } catch (e) {
      throw mapPgError(e, { operation: "release vm", resources: { vmUuid: uuid } });
    }
  }

  /**
   * Ends the accepts of placed VMs, in one transaction: those that got all they asked for record
   * their root volume and NICs (their fence moves on) with their first event, Created; the others
   * are removed with their host capacity given back — a create that failed records nothing — and
   * marked for release where another service may hold something for them: a root volume storage
   * made or may have made (`volumesMaybeMade`), addresses network gave or may have given their
   * NICs (`nicsMaybeHeld`). A VM one of whose NICs draws a MAC another NIC has is refused too
   * (`MAC_ADDRESS_IN_USE`, in `refused`), never recorded with a shared MAC. Each VM is written
   * only at the fence it was placed with: one a takeover removed meanwhile (or its new incarnation,
   * placed by a retry) is neither recorded nor removed by this stale outcome.
   */
  async finishCreates(
    done: readonly FinishedCreate[],
    failed: ReadonlyArray<{ uuid: string; fence: number }>,
    volumesMaybeMade: readonly string[],
    nicsMaybeHeld: readonly string[],
  ): Promise<FinishedCreates> {
    const q = this.handle.sql;
    const refused = new Map<string, StratumError>();
    const fences = new Map<string, number>([...done, ...failed].map((d) => [d.uuid, d.fence]));
    try {
      const rows = await q.begin(async (tx) => {
        const sql = tx as unknown as typeof q;
        let recording = [...done];
        const gone = failed.map((f) => f.uuid);
        const volumeMarks = [...volumesMaybeMade];
        const nicMarks = [...nicsMaybeHeld];
        const nics = done.flatMap((d) => d.nics);
        if (nics.length > 0) {
          for (const [vmUuid, err] of await this.#insertNics(sql, nics, fences)) {
            refused.set(vmUuid, err);
            gone.push(vmUuid);
            volumeMarks.push(vmUuid);
            nicMarks.push(vmUuid);
          }
          recording = recording.filter((d) => !refused.has(d.uuid));
        }
        let recorded: Record<string, unknown>[] = [];
        if (recording.length > 0) {
          recorded = (await sql`
            WITH m AS (
              UPDATE compute.vms AS t SET root_volume_uuid = x.root, fence = t.fence + 1, updated_at = now(), last_actor = ${this.actor()}
              FROM unnest(${recording.map((d) => d.uuid)}::uuid[], ${recording.map((d) => d.rootVolumeUuid)}::uuid[], ${recording.map((d) => d.fence)}::bigint[]) AS x(uuid, root, fence)
              WHERE t.uuid = x.uuid AND t.fence = x.fence AND ${this.#guard(sql)!}
              RETURNING t.*
            ), event AS (
              INSERT INTO compute.outbox (domain, event, key, payload, request_id)
              SELECT 'compute', ${VM_STATE_CHANGED}, ${sql.unsafe(vmEventKey("m"))}, ${sql.unsafe(vmChangePayload("m", "(CASE WHEN m.state = 'Created' THEN NULL ELSE m.state::text END)"))}, x.request_id
              FROM m JOIN unnest(${recording.map((d) => d.uuid)}::uuid[], ${recording.map((d) => d.requestId)}::text[]) AS x(uuid, request_id) ON x.uuid = m.uuid
            )
            SELECT * FROM m`) as unknown as Record<string, unknown>[];
        }
        if (gone.length > 0) {
          await sql`
            WITH gone AS (
              DELETE FROM compute.vms AS t USING unnest(${gone}::uuid[], ${gone.map((uuid) => fences.get(uuid)!)}::bigint[]) AS x(uuid, fence)
              WHERE t.uuid = x.uuid AND t.fence = x.fence AND t.state = 'Created' AND ${this.#guard(sql)!}
              RETURNING t.host_uuid, t.cpu, t.memory
            ), released AS (
              UPDATE compute.hosts AS h SET cpu_used = h.cpu_used - g.cpu, memory_used = h.memory_used - g.memory
              FROM (SELECT host_uuid, sum(cpu)::int AS cpu, sum(memory)::bigint AS memory FROM gone GROUP BY host_uuid) AS g WHERE h.uuid = g.host_uuid
            ), nics_marked AS (
              INSERT INTO compute.nic_releases (vm_uuid) SELECT unnest(${nicMarks}::uuid[]) ON CONFLICT DO NOTHING
            )
            INSERT INTO compute.volume_releases (vm_uuid) SELECT unnest(${volumeMarks}::uuid[]) ON CONFLICT DO NOTHING`;
        }
        return recorded;
      });
      if (rows.length > 0) this.eventsWritten();
      return { recorded: new Map(rows.map((raw) => vmFromRaw(raw)).map((vm) => [vm.uuid, vm])), refused };
    } catch (e) {
      throw mapPgError(e, { ...NIC_CONSTRAINTS, operation: "record root volumes and nics", resources: { vmUuid: done[0]?.uuid ?? failed[0]?.uuid ?? "" } });
    }
  }

  /**
   * Removes a VM whose create was accepted — placed in Created, its capacity held — but never
   * recorded its root volume and NICs (the replica running it died, or could not record the
   * outcome), exactly as finishCreates removes a failed create: no row, no event (its create
   * never answered with it, so it never had one), the host's capacity back, and its volume
   * release marked, and its NIC release when it asked for NICs — storage and network may have
   * made them and lost only their answer. Only at `fence` (the takeover's claim), so neither a
   * create that did record nor a new VM of the same uuid is touched. The removed row, or
   * undefined when there was none to remove.
   */
  async removeUnfinishedCreate(uuid: string, fence: number): Promise<VmRow | undefined> {
    const q = this.handle.sql;
    try {
      const [raw] = await q`
        WITH gone AS (
          DELETE FROM compute.vms AS t
          WHERE t.uuid = ${uuid} AND t.state = 'Created' AND t.root_volume_uuid IS NULL AND t.fence = ${fence} AND ${this.#guard(q)!}
          RETURNING t.*
        ), released AS (
          UPDATE compute.hosts AS h SET cpu_used = h.cpu_used - g.cpu, memory_used = h.memory_used - g.memory FROM gone AS g WHERE h.uuid = g.host_uuid
        ), nics_marked AS (
          INSERT INTO compute.nic_releases (vm_uuid) SELECT g.uuid FROM gone AS g WHERE g.nic_count > 0 ON CONFLICT DO NOTHING
        ), marked AS (
          INSERT INTO compute.volume_releases (vm_uuid) SELECT g.uuid FROM gone AS g ON CONFLICT DO NOTHING
        )
        SELECT * FROM gone`;
      return raw ? vmFromRaw(raw as Record<string, unknown>) : undefined;
    } catch (e) {
      throw mapPgError(e, { operation: "remove unfinished create", resources: { vmUuid: uuid } });
    }
  }

  /**
   * Inserts the NICs of VMs this replica may write (locked, so the guard holds until the commit),
   * before their Created event is written (its payload reads them). A NIC already there is a
   * retried create's (the same uuid, hence MAC): kept, with the address network answered now. One
   * that is not there although its VM may be written lost its MAC to another NIC: its VM's NICs
   * are removed again and the VM refused, by uuid with why.
   */
  async #insertNics(sql: ComputeDb["sql"], nics: readonly VmNicRow[], fences: ReadonlyMap<string, number>): Promise<Map<string, StratumError>> {
    const vmUuids = [...new Set(nics.map((n) => n.vmUuid))];
    const writable = new Set(
      (
        await sql`SELECT t.uuid FROM compute.vms AS t JOIN unnest(${vmUuids}::uuid[], ${vmUuids.map((uuid) => fences.get(uuid)!)}::bigint[]) AS x(uuid, fence) ON x.uuid = t.uuid
          WHERE t.fence = x.fence AND ${this.#guard(sql)!} FOR UPDATE OF t`
      ).map((r) => r.uuid as string),
    );
    const mine = nics.filter((n) => writable.has(n.vmUuid));
    if (mine.length === 0) return new Map();
    const inserted = new Set(
      (
        await sql`
          INSERT INTO compute.vm_nics (uuid, vm_uuid, l3_network_uuid, ip, mac, device_index)
          SELECT * FROM unnest(${mine.map((n) => n.uuid)}::uuid[], ${mine.map((n) => n.vmUuid)}::uuid[], ${mine.map((n) => n.l3NetworkUuid)}::uuid[],
            ${mine.map((n) => n.ip)}::text[], ${mine.map((n) => n.mac)}::text[], ${mine.map((n) => n.deviceIndex)}::int[])
          ON CONFLICT DO NOTHING RETURNING uuid`
      ).map((r) => r.uuid as string),
    );
    const missing = mine.filter((n) => !inserted.has(n.uuid));
    if (missing.length === 0) return new Map();
    const existing = new Set(
      (
        await sql`
          UPDATE compute.vm_nics AS n SET ip = x.ip FROM unnest(${missing.map((n) => n.uuid)}::uuid[], ${missing.map((n) => n.ip)}::text[]) AS x(uuid, ip)
          WHERE n.uuid = x.uuid RETURNING n.uuid`
      ).map((r) => r.uuid as string),
    );
    const refused = new Map<string, StratumError>();
    for (const n of missing) {
      if (existing.has(n.uuid) || refused.has(n.vmUuid)) continue;
      refused.set(
        n.vmUuid,
        new StratumError(Code.ALREADY_EXISTS, `NIC ${n.uuid} of VM ${n.vmUuid} drew MAC address ${n.mac}, which another NIC already has; retry the create with another request id`, {
          reason: "MAC_ADDRESS_IN_USE",
          resources: { vmUuid: n.vmUuid, nicUuid: n.uuid, mac: n.mac },
        }),
      );
    }
    if (refused.size > 0) await sql`DELETE FROM compute.vm_nics WHERE vm_uuid = ANY(${[...refused.keys()]}::uuid[])`;
    return refused;
  }

  /**
   * Records a NIC's new address (network's ChangeNicIp moved it), in one transaction with the
   * VM's next revision (its fence) and its event, so WatchVm shows the address. Undefined when the
   * NIC is not the VM's or this replica may not write the VM.
   */
  async setNicIp(vmUuid: string, nicUuid: string, ip: string): Promise<VmRow | undefined> {
    const q = this.handle.sql;
    try {
      const raw = await q.begin(async (tx) => {
        const sql = tx as unknown as typeof q;
        const nic = await sql`
          UPDATE compute.vm_nics AS n SET ip = ${ip} FROM compute.vms AS t
          WHERE n.uuid = ${nicUuid} AND n.vm_uuid = ${vmUuid} AND t.uuid = n.vm_uuid AND ${this.#guard(sql)!} RETURNING n.uuid`;
        if (nic.length === 0) return undefined;
        // A statement of its own after the NIC's: the event's payload reads the NICs as committed before it.
        const [row] = await sql`
          WITH m AS (
            UPDATE compute.vms AS t SET fence = t.fence + 1, updated_at = now(), last_actor = ${this.actor()}
            WHERE t.uuid = ${vmUuid} AND ${this.#guard(sql)!}
            RETURNING t.*, t.state::text AS __from
          ), event AS (
            INSERT INTO compute.outbox (domain, event, key, payload, request_id)
            SELECT 'compute', ${VM_STATE_CHANGED}, ${sql.unsafe(vmEventKey("m"))}, ${sql.unsafe(vmChangePayload("m", "m.__from"))}, ${currentWork()?.requestId ?? null}::text FROM m
          )
          SELECT * FROM m`;
        return row as Record<string, unknown> | undefined;
      });
      if (!raw) return undefined;
      this.eventsWritten();
      return vmFromRaw(raw);
    } catch (e) {
      throw mapPgError(e, { ...NIC_CONSTRAINTS, operation: "record nic address", resources: { vmUuid, nicUuid } });
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
      return this.#moved(vmFromRaw(raw as Record<string, unknown>));
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

/** The same for the NIC release of a VM being placed again: its retried create asks network for the same NICs (see `clearReleases`). */
export function clearNicReleases(uuids: SQL): SQL {
  return sql`DELETE FROM ${nicReleases} WHERE ${nicReleases.vmUuid} IN (${uuids})`;
}

/** A host that may receive `vm`: connected, enabled, with room for it. */
function canTake(vm: { cpu: number; memory: number }): SQL {
  return sql`${hosts.status} = 'Connected' AND ${hosts.state} = 'Enabled'
    AND ${hosts.cpuUsed} + ${vm.cpu} <= ${hosts.cpuCapacity} AND ${hosts.memoryUsed} + ${vm.memory} <= ${hosts.memoryCapacity}`;
}

/** Maps a raw `RETURNING *` row of a hand-written statement the way drizzle maps its own results. */
const vmFromRaw = rowMapper(vms);
const nicFromRaw = rowMapper(vmNics);
