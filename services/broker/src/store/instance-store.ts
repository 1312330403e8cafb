import { mapPgError, rowMapper } from "@stratum/db";
import type postgres from "postgres";
import type { BrokerDb } from "./db";
import { instances, type InstanceRow, type InstanceStateName, type OperationKindName } from "./schema";

const toInstance = rowMapper(instances);
const rows = (raw: readonly unknown[]) => raw.map((r) => toInstance(r as Record<string, unknown>));

export interface NewInstance {
  uuid: string;
  tenant: string;
  instanceId: string;
  serviceId: string;
  planId: string;
  parameters: Record<string, unknown>;
  requestHash: string;
  operation: string;
}

/** The resources an operation's job records before it makes them, so a resumed job finds them. */
export interface InstanceResources {
  vmUuid?: string;
  eipUuid?: string;
}

/**
 * Queries on `broker.instances`. No write needs a lease: each is conditional on the row's
 * `operation` (a fresh uuid per operation, never reused) and the state that operation left, so a
 * writer that lost the race — a second identical provision, a job superseded by its resumed
 * attempt, a settle that came twice — matches no row or writes what is already there.
 */
export class InstanceStore {
  readonly #sql: postgres.Sql;

  constructor(handle: BrokerDb) {
    this.#sql = handle.sql;
  }

  /**
   * Inserts the instance unless the tenant's key has a live one: the unique index decides, on any
   * replica, at once (seed 003). Returns the live instance of the key and whether it is this one.
   */
  async insert(n: NewInstance): Promise<{ row: InstanceRow; created: boolean }> {
    const sql = this.#sql;
    try {
      const [raw] = await sql`
        INSERT INTO broker.instances (uuid, tenant, instance_id, service_id, plan_id, parameters, request_hash, operation)
        VALUES (${n.uuid}, ${n.tenant}, ${n.instanceId}, ${n.serviceId}, ${n.planId}, ${JSON.stringify(n.parameters)}::jsonb, ${n.requestHash}, ${n.operation})
        ON CONFLICT (tenant, instance_id) WHERE state <> 'Deleted' DO NOTHING
        RETURNING *`;
      if (raw) return { row: toInstance(raw as Record<string, unknown>), created: true };
    } catch (e) {
      throw mapPgError(e, { operation: "create instance", resources: { instanceId: n.instanceId } });
    }
    // The winner's row; gone again only if it was deprovisioned in between (then insert anew).
    const live = await this.live(n.tenant, n.instanceId);
    return live ? { row: live, created: false } : this.insert(n);
  }

  /** The tenant's live instance of a key. */
  async live(tenant: string, instanceId: string): Promise<InstanceRow | undefined> {
    const [raw] = await this.#sql`SELECT * FROM broker.instances WHERE tenant = ${tenant} AND instance_id = ${instanceId} AND state <> 'Deleted'`;
    return raw ? toInstance(raw as Record<string, unknown>) : undefined;
  }

  /** The tenant's live instance of a key, or else its last Deleted one. */
  async latest(tenant: string, instanceId: string): Promise<InstanceRow | undefined> {
    const [raw] = await this.#sql`
      SELECT * FROM broker.instances WHERE tenant = ${tenant} AND instance_id = ${instanceId}
      ORDER BY (state <> 'Deleted') DESC, seq DESC LIMIT 1`;
    return raw ? toInstance(raw as Record<string, unknown>) : undefined;
  }

  async byUuid(uuid: string): Promise<InstanceRow | undefined> {
    const [raw] = await this.#sql`SELECT * FROM broker.instances WHERE uuid = ${uuid}`;
    return raw ? toInstance(raw as Record<string, unknown>) : undefined;
  }

  async byOperation(operation: string): Promise<InstanceRow | undefined> {
    const [raw] = await this.#sql`SELECT * FROM broker.instances WHERE operation = ${operation}`;
    return raw ? toInstance(raw as Record<string, unknown>) : undefined;
  }

  async list(f: { tenant: string; state?: InstanceStateName; afterSeq: number; limit: number }): Promise<InstanceRow[]> {
    const sql = this.#sql;
    return rows(await sql`
      SELECT * FROM broker.instances WHERE tenant = ${f.tenant} AND seq > ${f.afterSeq}
      ${f.state === undefined ? sql`AND state <> 'Deleted'` : sql`AND state = ${f.state}`}
      ORDER BY seq LIMIT ${f.limit}`);
  }

  /**
   * Starts an operation on an instance in one of `from`: a new operation uuid, not yet submitted.
   * Undefined when the instance is no longer in those states (another operation won).
   */
  async begin(uuid: string, from: readonly InstanceStateName[], to: InstanceStateName, kind: OperationKindName, operation: string, pendingParameters?: Record<string, unknown>): Promise<InstanceRow | undefined> {
    const sql = this.#sql;
    const [raw] = await sql`
      UPDATE broker.instances SET state = ${to}, operation_kind = ${kind}, operation = ${operation}, operation_submitted = false,
        pending_parameters = ${pendingParameters === undefined ? null : JSON.stringify(pendingParameters)}::jsonb,
        error_reason = '', error_message = '', revision = revision + 1, updated_at = now()
      WHERE uuid = ${uuid} AND state::text = ANY(${[...from]}::text[])
      RETURNING *`;
    return raw ? toInstance(raw as Record<string, unknown>) : undefined;
  }

  /** Records that longjob accepted the operation's job. */
  async submitted(operation: string): Promise<void> {
    await this.#sql`UPDATE broker.instances SET operation_submitted = true WHERE operation = ${operation} AND NOT operation_submitted`;
  }

  /** Operations recorded more than `olderThanMs` ago whose job longjob may never have got (their replica died in between). */
  async unsubmitted(olderThanMs: number, limit: number): Promise<InstanceRow[]> {
    return rows(await this.#sql`
      SELECT * FROM broker.instances WHERE NOT operation_submitted AND updated_at < now() - make_interval(secs => ${olderThanMs / 1000})
      ORDER BY updated_at LIMIT ${limit}`);
  }

  /** Records the resources the operation's job is about to make (or has released: ""). */
  async recordResources(operation: string, r: InstanceResources): Promise<InstanceRow | undefined> {
    const sql = this.#sql;
    const [raw] = await sql`
      UPDATE broker.instances SET
        vm_uuid = ${r.vmUuid === undefined ? sql`vm_uuid` : r.vmUuid},
        eip_uuid = ${r.eipUuid === undefined ? sql`eip_uuid` : r.eipUuid},
        revision = revision + 1, updated_at = now()
      WHERE operation = ${operation}
      RETURNING *`;
    return raw ? toInstance(raw as Record<string, unknown>) : undefined;
  }

  /**
   * Ends the operation: from the transient state it set to `to`, with what it produced or why it
   * failed. Undefined when it was ended already (a settle that came twice).
   */
  async settle(
    operation: string,
    from: InstanceStateName,
    to: InstanceStateName,
    patch: { address?: string; vmUuid?: string; eipUuid?: string; errorReason?: string; errorMessage?: string; adoptPending?: boolean },
  ): Promise<InstanceRow | undefined> {
    const sql = this.#sql;
    const [raw] = await sql`
      UPDATE broker.instances SET state = ${to},
        address = ${patch.address === undefined ? sql`address` : patch.address},
        vm_uuid = ${patch.vmUuid === undefined ? sql`vm_uuid` : patch.vmUuid},
        eip_uuid = ${patch.eipUuid === undefined ? sql`eip_uuid` : patch.eipUuid},
        error_reason = ${patch.errorReason ?? ""}, error_message = ${patch.errorMessage ?? ""},
        parameters = ${patch.adoptPending ? sql`COALESCE(pending_parameters, parameters)` : sql`parameters`},
        pending_parameters = NULL, operation_submitted = true,
        revision = revision + 1, updated_at = now()
      WHERE operation = ${operation} AND state = ${from}
      RETURNING *`;
    return raw ? toInstance(raw as Record<string, unknown>) : undefined;
  }
}
