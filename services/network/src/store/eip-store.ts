import { Code, StratumError } from "@stratum/core";
import { holdsLease, leaseHeld, type LeaseHolder, leaseLost, mapPgError, rowMapper } from "@stratum/db";
import type postgres from "postgres";
import type { NetworkDb } from "./db";
import { eipRules, eips, leases, type EipRow, type EipRuleRow, type EipRuleStateValue, type EipStatusValue } from "./schema";

const toEip = rowMapper(eips);
const toRule = rowMapper(eipRules);

const CONSTRAINTS = {
  constraints: {
    eips_pkey: { reason: "EIP_ALREADY_EXISTS", message: "an elastic IP with this uuid already exists" },
    eips_client_request_id_uq: { reason: "REQUEST_ID_IN_USE", message: "client_request_id was already used for another elastic IP" },
    eips_vm_nic_uq: { reason: "NIC_HAS_EIP", code: Code.FAILED_PRECONDITION, message: "the NIC has an elastic IP bound already: detach it first" },
  },
};

export interface NewEip {
  uuid: string;
  name: string;
  l3NetworkUuid: string;
  vipUuid: string;
  vipIp: string;
  clientRequestId: string | null;
}

export interface EipFilter {
  status?: EipStatusValue;
  vmUuid?: string;
  l3NetworkUuid?: string;
  afterSeq: number;
  limit: number;
}

/** A binding: the NIC, its VM and the NIC's address the VIP maps to. */
export interface Binding {
  vmNicUuid: string;
  vmUuid: string;
  guestIp: string;
}

/** Which rule: the EIP, the host, and what it maps. */
export type RuleKey = Pick<EipRuleRow, "eipUuid" | "hostUuid" | "vipIp" | "guestIp" | "vmNicUuid">;

/** A command sent for a rule whose outcome is not known yet: what is needed to send it again. */
export interface RuleTask {
  taskId: string;
  fence: number;
  vmUuid: string | null;
}

/** What a sync records as the EIP's observed state. */
export interface Observed {
  status: EipStatusValue;
  hostUuid: string | null;
  reason: string;
}

type Sql = postgres.Sql | postgres.TransactionSql;

/**
 * Queries on `network.eips` and `network.eip_rules`. Two kinds of write:
 *
 * - the user's (bind, unbind, delete) and compute's kicks: conditional updates from the binding
 *   read, each moving `sync_gen` on (the agents now have to follow), with this replica's lease;
 * - a sync's (status, rules, done): only with the fence the sync claimed (`claim`), so a replica
 *   that lost the EIP to a new owner while it was paused writes nothing.
 */
export class EipStore {
  readonly #sql: postgres.Sql;
  readonly #lease: LeaseHolder;

  constructor(
    handle: NetworkDb,
    private readonly actor: () => string,
  ) {
    this.#sql = handle.sql;
    this.#lease = { leases, holder: actor };
  }

  async insert(e: NewEip, q: Sql = this.#sql): Promise<EipRow> {
    const sql = q as postgres.Sql;
    try {
      const [raw] = await sql`
        INSERT INTO network.eips (uuid, name, l3_network_uuid, vip_uuid, vip_ip, client_request_id, last_actor)
        SELECT ${e.uuid}, ${e.name}, ${e.l3NetworkUuid}, ${e.vipUuid}, ${e.vipIp}, ${e.clientRequestId}, ${this.actor()}
        WHERE ${leaseHeld(sql, this.#lease)}
        RETURNING *`;
      if (!raw) throw leaseLost(this.actor());
      return toEip(raw as Record<string, unknown>);
    } catch (e2) {
      throw mapPgError(e2, { operation: "create elastic IP", resources: { eipUuid: e.uuid }, ...CONSTRAINTS });
    }
  }

  async get(uuid: string): Promise<EipRow | undefined> {
    const [raw] = await this.#sql`SELECT * FROM network.eips WHERE uuid = ${uuid}`;
    return raw ? toEip(raw as Record<string, unknown>) : undefined;
  }

  async list(f: EipFilter): Promise<EipRow[]> {
    const sql = this.#sql;
    const rows = await sql`
      SELECT * FROM network.eips WHERE seq > ${f.afterSeq}
        ${f.status ? sql`AND status = ${f.status}::network.eip_status` : sql``}
        ${f.vmUuid ? sql`AND vm_uuid = ${f.vmUuid}` : sql``}
        ${f.l3NetworkUuid ? sql`AND l3_network_uuid = ${f.l3NetworkUuid}` : sql``}
      ORDER BY seq LIMIT ${f.limit}`;
    return rows.map((r) => toEip(r as Record<string, unknown>));
  }

  /** EIPs bound to NICs of these VMs. */
  async ofVms(vmUuids: readonly string[]): Promise<EipRow[]> {
    const rows = await this.#sql`SELECT * FROM network.eips WHERE vm_uuid = ANY(${[...vmUuids]}::uuid[])`;
    return rows.map((r) => toEip(r as Record<string, unknown>));
  }

  /** Binds an unbound EIP (not being deleted) to a NIC; undefined when it was bound meanwhile or is being deleted. */
  async bind(uuid: string, b: Binding): Promise<EipRow | undefined> {
    return this.#userWrite(
      "attach elastic IP",
      uuid,
      (sql) => sql`
        UPDATE network.eips SET vm_nic_uuid = ${b.vmNicUuid}, vm_uuid = ${b.vmUuid}, guest_ip = ${b.guestIp}, status = 'Applying', status_reason = '',
          sync_gen = sync_gen + 1, retry_at = now(), attempts = 0, revision = revision + 1, updated_at = now()
        WHERE uuid = ${uuid} AND vm_nic_uuid IS NULL AND NOT deleting AND ${leaseHeld(sql, this.#lease)}
        RETURNING *`,
    );
  }

  /** Unbinds an EIP from whatever it is bound to; undefined when it is not bound. */
  async unbind(uuid: string, deleting = false): Promise<EipRow | undefined> {
    return this.#userWrite(
      "detach elastic IP",
      uuid,
      (sql) => sql`
        UPDATE network.eips SET vm_nic_uuid = NULL, vm_uuid = NULL, guest_ip = NULL, deleting = deleting OR ${deleting},
          status = CASE WHEN ${deleting} THEN 'Deleting' WHEN EXISTS (SELECT 1 FROM network.eip_rules r WHERE r.eip_uuid = eips.uuid) THEN 'Releasing' ELSE 'Detached' END::network.eip_status,
          sync_gen = sync_gen + 1, retry_at = now(), attempts = 0, revision = revision + 1, updated_at = now()
        WHERE uuid = ${uuid} AND (vm_nic_uuid IS NOT NULL OR (${deleting} AND NOT deleting)) AND ${leaseHeld(sql, this.#lease)}
        RETURNING *`,
    );
  }

  /**
   * Rolls back a failed attach's binding — only if the EIP is still bound to the same NIC with
   * the same guest address (seed 000): a binding that changed meanwhile (the NIC's address moved,
   * a detach and another attach) is not this attach's to undo. Undefined when it matched nothing.
   */
  async rollbackBinding(uuid: string, b: Binding, reason: string): Promise<EipRow | undefined> {
    return this.#userWrite(
      "roll back elastic IP attach",
      uuid,
      (sql) => sql`
        UPDATE network.eips SET vm_nic_uuid = NULL, vm_uuid = NULL, guest_ip = NULL, status_reason = ${reason},
          status = CASE WHEN EXISTS (SELECT 1 FROM network.eip_rules r WHERE r.eip_uuid = eips.uuid) THEN 'Releasing' ELSE 'Detached' END::network.eip_status,
          sync_gen = sync_gen + 1, retry_at = now(), revision = revision + 1, updated_at = now()
        WHERE uuid = ${uuid} AND vm_nic_uuid = ${b.vmNicUuid} AND guest_ip = ${b.guestIp} AND ${leaseHeld(sql, this.#lease)}
        RETURNING *`,
    );
  }

  /**
   * EIPs bound with `oldIp` to a NIC whose address moved follow it (ZStack's vmIpChanged): their
   * guest address changes and their rules have to be applied again.
   */
  async followNicIp(vmNicUuid: string, oldIp: string, newIp: string): Promise<EipRow[]> {
    const sql = this.#sql;
    const rows = await sql`
      UPDATE network.eips SET guest_ip = ${newIp}, sync_gen = sync_gen + 1, retry_at = now(), revision = revision + 1, updated_at = now(),
        -- An Active rule maps the old address now: it is not what the EIP says until it is applied again.
        status = CASE WHEN status = 'Active' THEN 'Applying' ELSE status END::network.eip_status
      WHERE vm_nic_uuid = ${vmNicUuid} AND guest_ip = ${oldIp} AND ${leaseHeld(sql, this.#lease)}
      RETURNING *`;
    return rows.map((r) => toEip(r as Record<string, unknown>));
  }

  /** Compute's kick: the EIPs bound to these VMs have to follow them. Their uuids. */
  async kickVms(vmUuids: readonly string[]): Promise<string[]> {
    const sql = this.#sql;
    const rows = await sql`
      UPDATE network.eips SET sync_gen = sync_gen + 1, retry_at = now(), attempts = 0, updated_at = now()
      WHERE vm_uuid = ANY(${[...vmUuids]}::uuid[]) AND ${leaseHeld(sql, this.#lease)}
      RETURNING uuid`;
    if (rows.length === 0 && !(await holdsLease(sql, this.#lease))) throw leaseLost(this.actor());
    return rows.map((r) => r.uuid as string);
  }

  /** A reconcile's kick: these EIPs have to be checked against their agents again. */
  async kick(uuids: readonly string[]): Promise<void> {
    if (uuids.length === 0) return;
    const sql = this.#sql;
    await sql`UPDATE network.eips SET sync_gen = sync_gen + 1, retry_at = now(), attempts = 0 WHERE uuid = ANY(${[...uuids]}::uuid[]) AND ${leaseHeld(sql, this.#lease)}`;
  }

  /**
   * Starts a sync as the EIP's owner: the fence moves on (agents refuse the commands of an
   * earlier owner from now on) and this incarnation becomes its actor. Undefined when it is gone.
   */
  async claim(uuid: string): Promise<EipRow | undefined> {
    const sql = this.#sql;
    try {
      const [raw] = await sql`
        UPDATE network.eips SET fence = fence + 1, last_actor = ${this.actor()}
        WHERE uuid = ${uuid} AND ${leaseHeld(sql, this.#lease)} RETURNING *`;
      if (raw) return toEip(raw as Record<string, unknown>);
      if (!(await holdsLease(sql, this.#lease))) throw leaseLost(this.actor());
      return undefined;
    } catch (e) {
      throw mapPgError(e, { operation: "claim elastic IP", resources: { eipUuid: uuid } });
    }
  }

  /** Records what a running sync observes; undefined when its fence is not the EIP's any more. */
  async observe(uuid: string, fence: number, o: Observed): Promise<EipRow | undefined> {
    return this.#syncWrite(
      uuid,
      fence,
      (sql) => sql`
        UPDATE network.eips SET status = ${o.status}::network.eip_status, host_uuid = ${o.hostUuid}, status_reason = ${o.reason},
          revision = revision + CASE WHEN status = ${o.status}::network.eip_status AND host_uuid IS NOT DISTINCT FROM ${o.hostUuid}::uuid AND status_reason = ${o.reason} THEN 0 ELSE 1 END,
          updated_at = now()
        WHERE uuid = ${uuid} AND fence = ${fence} AND ${leaseHeld(sql, this.#lease)} RETURNING *`,
    );
  }

  /** Ends a sync that reached generation `gen`: the EIP's observed state, no retry pending. */
  async synced(uuid: string, fence: number, gen: number, o: Observed): Promise<EipRow | undefined> {
    return this.#syncWrite(
      uuid,
      fence,
      (sql) => sql`
        UPDATE network.eips SET status = ${o.status}::network.eip_status, host_uuid = ${o.hostUuid}, status_reason = ${o.reason},
          synced_gen = GREATEST(synced_gen, ${gen}), attempts = 0, revision = revision + 1, updated_at = now()
        WHERE uuid = ${uuid} AND fence = ${fence} AND ${leaseHeld(sql, this.#lease)} RETURNING *`,
    );
  }

  /** Ends a sync that failed: Error with its reason, retried after `backoffMs`. */
  async failed(uuid: string, fence: number, reason: string, backoffMs: (attempts: number) => number, hostUuid: string | null): Promise<EipRow | undefined> {
    const row = await this.get(uuid);
    const delay = backoffMs((row?.attempts ?? 0) + 1);
    return this.#syncWrite(
      uuid,
      fence,
      (sql) => sql`
        UPDATE network.eips SET status = CASE WHEN deleting THEN 'Deleting' ELSE 'Error' END::network.eip_status, status_reason = ${reason}, host_uuid = ${hostUuid},
          attempts = attempts + 1, retry_at = now() + ${delay} * interval '1 millisecond', revision = revision + 1, updated_at = now()
        WHERE uuid = ${uuid} AND fence = ${fence} AND ${leaseHeld(sql, this.#lease)} RETURNING *`,
    );
  }

  /**
   * Deletes an EIP being deleted whose rules are all released, and gives its VIP back, in one
   * transaction. False when its fence moved or a rule is left.
   */
  async remove(uuid: string, fence: number, releaseVip: (q: postgres.TransactionSql, vipUuid: string) => Promise<unknown>): Promise<boolean> {
    try {
      return await this.#sql.begin(async (tx) => {
        const q = tx as unknown as postgres.Sql;
        const [raw] = await q`
          DELETE FROM network.eips e WHERE e.uuid = ${uuid} AND e.fence = ${fence} AND e.deleting AND ${leaseHeld(q, this.#lease)}
            AND NOT EXISTS (SELECT 1 FROM network.eip_rules r WHERE r.eip_uuid = e.uuid)
          RETURNING vip_uuid`;
        if (!raw) return false;
        await releaseVip(tx, raw.vip_uuid as string);
        return true;
      });
    } catch (e) {
      throw mapPgError(e, { operation: "delete elastic IP", resources: { eipUuid: uuid } });
    }
  }

  async rules(eipUuid: string): Promise<EipRuleRow[]> {
    const rows = await this.#sql`SELECT * FROM network.eip_rules WHERE eip_uuid = ${eipUuid} ORDER BY host_uuid`;
    return rows.map((r) => toRule(r as Record<string, unknown>));
  }

  async rulesOfHost(hostUuid: string): Promise<EipRuleRow[]> {
    const rows = await this.#sql`SELECT * FROM network.eip_rules WHERE host_uuid = ${hostUuid}`;
    return rows.map((r) => toRule(r as Record<string, unknown>));
  }

  /**
   * Records a rule in `state`. With `task` (before an apply or a release is sent), the command
   * is kept with it until its outcome is known (see `eip_rules`); without, the rule's outcome is
   * known (Applied) and any kept command is forgotten.
   */
  async putRule(r: RuleKey, state: EipRuleStateValue, fence: number, task?: RuleTask): Promise<boolean> {
    const sql = this.#sql;
    const rows = await sql`
      INSERT INTO network.eip_rules (eip_uuid, host_uuid, vip_ip, guest_ip, vm_nic_uuid, state, vm_uuid, task_id, task_fence)
      SELECT ${r.eipUuid}, ${r.hostUuid}, ${r.vipIp}, ${r.guestIp}, ${r.vmNicUuid}, ${state}::network.eip_rule_state, ${task?.vmUuid ?? null}::uuid, ${task?.taskId ?? null}::text, ${task?.fence ?? null}::bigint
      WHERE EXISTS (SELECT 1 FROM network.eips e WHERE e.uuid = ${r.eipUuid} AND e.fence = ${fence}) AND ${leaseHeld(sql, this.#lease)}
      ON CONFLICT (eip_uuid, host_uuid) DO UPDATE SET vip_ip = EXCLUDED.vip_ip, guest_ip = EXCLUDED.guest_ip, vm_nic_uuid = EXCLUDED.vm_nic_uuid,
        state = EXCLUDED.state, vm_uuid = EXCLUDED.vm_uuid, task_id = EXCLUDED.task_id, task_fence = EXCLUDED.task_fence, updated_at = now()
      RETURNING 1`;
    return rows.length > 0;
  }

  /** Forgets a rule the agent confirmed it no longer has. */
  async dropRule(eipUuid: string, hostUuid: string, fence: number): Promise<boolean> {
    const sql = this.#sql;
    const rows = await sql`
      DELETE FROM network.eip_rules WHERE eip_uuid = ${eipUuid} AND host_uuid = ${hostUuid}
        AND EXISTS (SELECT 1 FROM network.eips e WHERE e.uuid = ${eipUuid} AND e.fence = ${fence}) AND ${leaseHeld(sql, this.#lease)}
      RETURNING 1`;
    return rows.length > 0;
  }

  /**
   * A reconcile's view of a host's agent: rules the database believes are there that the agent
   * lacks are forgotten (it lost them), and rules the agent has of EIPs the database knows but
   * believed elsewhere are recorded (so a sync releases or keeps them). The EIPs touched.
   */
  async believeAgent(hostUuid: string, present: ReadonlyArray<Omit<RuleKey, "hostUuid">>): Promise<string[]> {
    const ids = present.map((p) => p.eipUuid);
    return this.#sql.begin(async (tx) => {
      const q = tx as unknown as postgres.Sql;
      const lost = await q`
        DELETE FROM network.eip_rules WHERE host_uuid = ${hostUuid} AND NOT (eip_uuid = ANY(${ids}::uuid[])) AND ${leaseHeld(q, this.#lease)} RETURNING eip_uuid`;
      const found = await q`
        INSERT INTO network.eip_rules (eip_uuid, host_uuid, vip_ip, guest_ip, vm_nic_uuid, state)
        SELECT x.eip, ${hostUuid}, x.vip, x.guest, x.nic, 'Applied' FROM unnest(${ids}::uuid[], ${present.map((p) => p.vipIp)}::text[], ${present.map((p) => p.guestIp)}::text[],
          ${present.map((p) => p.vmNicUuid)}::uuid[]) AS x(eip, vip, guest, nic)
        WHERE EXISTS (SELECT 1 FROM network.eips e WHERE e.uuid = x.eip) AND ${leaseHeld(q, this.#lease)}
        ON CONFLICT (eip_uuid, host_uuid) DO UPDATE SET vip_ip = EXCLUDED.vip_ip, guest_ip = EXCLUDED.guest_ip, vm_nic_uuid = EXCLUDED.vm_nic_uuid, state = 'Applied',
          task_id = NULL, task_fence = NULL, updated_at = now()
        RETURNING eip_uuid`;
      return [...new Set([...lost, ...found].map((r) => r.eip_uuid as string))];
    });
  }

  /** EIPs with a sync due (asked for and not done, past their retry time): the collector's work. */
  async due(limit: number): Promise<string[]> {
    const rows = await this.#sql`SELECT uuid FROM network.eips WHERE sync_gen > synced_gen AND retry_at <= now() ORDER BY retry_at LIMIT ${limit}`;
    return rows.map((r) => r.uuid as string);
  }

  async leaseHeld(): Promise<boolean> {
    return holdsLease(this.#sql, this.#lease);
  }

  leaseLost(): StratumError {
    return leaseLost(this.actor());
  }

  async #userWrite(operation: string, uuid: string, run: (sql: postgres.Sql) => Promise<postgres.RowList<postgres.Row[]>>): Promise<EipRow | undefined> {
    try {
      const [raw] = await run(this.#sql);
      if (raw) return toEip(raw as Record<string, unknown>);
      if (!(await holdsLease(this.#sql, this.#lease))) throw leaseLost(this.actor());
      return undefined;
    } catch (e) {
      throw mapPgError(e, { operation, resources: { eipUuid: uuid }, ...CONSTRAINTS });
    }
  }

  async #syncWrite(uuid: string, fence: number, run: (sql: postgres.Sql) => Promise<postgres.RowList<postgres.Row[]>>): Promise<EipRow | undefined> {
    try {
      const [raw] = await run(this.#sql);
      return raw ? toEip(raw as Record<string, unknown>) : undefined;
    } catch (e) {
      throw mapPgError(e, { operation: "record elastic IP status", resources: { eipUuid: uuid, fence: String(fence) } });
    }
  }
}
