import { mapPgError, rowMapper } from "@stratum/db";
import type postgres from "postgres";
import type { BrokerDb } from "./db";
import { bindings, type BindingRow } from "./schema";

const toBinding = rowMapper(bindings);

export type NewBinding = Omit<BindingRow, "createdAt">;

/**
 * Queries on `broker.bindings`. Like instances, a binding's key is a unique index: concurrent
 * identical binds create one binding and every caller gets it. A bind is written only while its
 * instance is Ready, in the same statement, holding the instance row (FOR SHARE) until it
 * commits: a deprovision's state change waits for it, and its revocation then sees the binding;
 * or the deprovision came first and the bind matches no instance. None slips between the two.
 */
export class BindingStore {
  readonly #sql: postgres.Sql;

  constructor(handle: BrokerDb) {
    this.#sql = handle.sql;
  }

  /** Inserts it unless the key is bound already; undefined when the instance is not Ready any more. */
  async insert(b: NewBinding): Promise<{ row: BindingRow; created: boolean } | undefined> {
    const sql = this.#sql;
    try {
      const [raw] = await sql`
        INSERT INTO broker.bindings (uuid, tenant, instance_uuid, binding_id, parameters, request_hash, username, password)
        SELECT ${b.uuid}, ${b.tenant}, ${b.instanceUuid}, ${b.bindingId}, ${JSON.stringify(b.parameters)}::jsonb, ${b.requestHash}, ${b.username}, ${b.password}
        WHERE EXISTS (SELECT 1 FROM broker.instances WHERE uuid = ${b.instanceUuid} AND state IN ('Ready', 'Updating') FOR SHARE)
        ON CONFLICT (instance_uuid, binding_id) DO NOTHING
        RETURNING *`;
      if (raw) return { row: toBinding(raw as Record<string, unknown>), created: true };
    } catch (e) {
      throw mapPgError(e, { operation: "create binding", resources: { bindingId: b.bindingId } });
    }
    const existing = await this.get(b.instanceUuid, b.bindingId);
    return existing ? { row: existing, created: false } : undefined;
  }

  async get(instanceUuid: string, bindingId: string): Promise<BindingRow | undefined> {
    const [raw] = await this.#sql`SELECT * FROM broker.bindings WHERE instance_uuid = ${instanceUuid} AND binding_id = ${bindingId}`;
    return raw ? toBinding(raw as Record<string, unknown>) : undefined;
  }

  /** Revokes one binding; whether it was there. */
  async delete(instanceUuid: string, bindingId: string): Promise<boolean> {
    const gone = await this.#sql`DELETE FROM broker.bindings WHERE instance_uuid = ${instanceUuid} AND binding_id = ${bindingId} RETURNING uuid`;
    return gone.length > 0;
  }

  /** Revokes every binding of an instance (its deprovision). */
  async deleteAll(instanceUuid: string): Promise<number> {
    const gone = await this.#sql`DELETE FROM broker.bindings WHERE instance_uuid = ${instanceUuid} RETURNING uuid`;
    return gone.length;
  }
}
