import { Code, errorMessage, StratumError } from "@stratum/core";
import { mapPgError } from "@stratum/db";
import type { ComputeDb } from "./db";

/**
 * A table of durable marks: resources (VMs, hosts) about which compute owes another service a
 * call, written in the statement of the change that makes the call due and deleted once the call
 * succeeded. How a drain holds its marks while it calls:
 * - `locked`: through the call (`FOR UPDATE SKIP LOCKED` in the drain's transaction). For
 *   releases: a create retried for a marked VM deletes the mark to adopt what the other service
 *   kept (`clearReleases`), and must wait for a release in flight to end rather than have it
 *   release what the retry adopts.
 * - `claimed`: not locked through the call (a short claim, `claimed_until`), and written again by
 *   bumping its `generation`. For notifications written by VM transitions (EIP syncs) and
 *   reconnects: a transition must never wait for a call to network, and one committed while a
 *   drain's call is in flight must not be deleted by it (the call may have read the VM before):
 *   the drain deletes a mark only at the generation it claimed.
 */
export interface MarkTable {
  /** Schema-qualified table name. */
  readonly table: string;
  /** Its primary key column: the resource's uuid. */
  readonly key: string;
  readonly mode: "locked" | "claimed";
}

export const VOLUME_RELEASES: MarkTable = { table: "compute.volume_releases", key: "vm_uuid", mode: "locked" };
export const NIC_RELEASES: MarkTable = { table: "compute.nic_releases", key: "vm_uuid", mode: "locked" };
export const EIP_SYNCS: MarkTable = { table: "compute.eip_syncs", key: "vm_uuid", mode: "claimed" };
export const HOST_EIP_RECONCILES: MarkTable = { table: "compute.host_eip_reconciles", key: "host_uuid", mode: "claimed" };

/** How long a `claimed` drain keeps its marks from other drainers: above its call's deadline, so only a dead drainer's are taken. */
const CLAIM_SECONDS = 60;

/**
 * The call a drain makes for a batch of keys: resolves when it succeeded for all, or with the
 * keys it failed for and why (a call made per key); throws when it failed as a whole.
 */
export type MarkCall = (keys: string[]) => Promise<void | ReadonlyMap<string, unknown>>;

/** What one drain did with the marks it took. */
export interface DrainResult {
  /** Deleted: the call succeeded. */
  done: number;
  /** Kept, their attempt and error recorded: the call failed for them. */
  failed: number;
  /** Kept: the call succeeded, but they were written again while it ran (`claimed`), so they are due once more. */
  again: number;
  /** Marks it took: fewer than the limit means the table had no more ready. */
  taken: number;
  /** The error of the first that failed. */
  error?: string;
}

/** A pending mark, as tests and operators see it (what the other service still owes compute). */
export interface PendingMark {
  key: string;
  attempts: number;
  lastError: string;
}

/** The queries on one mark table ({@link MarkTable}). */
export class MarkStore {
  constructor(
    private readonly handle: ComputeDb,
    readonly spec: MarkTable,
  ) {}

  /**
   * Takes up to `limit` ready marks, oldest first, makes the call once for all of them, and
   * deletes the marks of the keys it succeeded for; the others get their attempt and error
   * recorded. A batch the other service refused as a whole (an answer, not an outage) is tried
   * key by key, so one key it cannot serve (a backup running on a root volume) does not hold
   * back the others.
   */
  drain(limit: number, call: MarkCall): Promise<DrainResult> {
    return this.spec.mode === "locked" ? this.#drainLocked(limit, call) : this.#drainClaimed(limit, call);
  }

  /** Writes marks for `keys` (again, when pending: a new generation), outside any change: see {@link MarkTable}. */
  async mark(keys: readonly string[]): Promise<void> {
    if (keys.length === 0) return;
    const { table, key, mode } = this.spec;
    const q = this.handle.sql;
    const onConflict = mode === "claimed" ? `ON CONFLICT (${key}) DO UPDATE SET generation = m.generation + 1` : "ON CONFLICT DO NOTHING";
    try {
      await q`INSERT INTO ${q.unsafe(`${table} AS m`)} (${q.unsafe(key)}) SELECT unnest(${keys as string[]}::uuid[]) ${q.unsafe(onConflict)}`;
    } catch (e) {
      throw mapPgError(e, { operation: `mark ${table}` });
    }
  }

  async pending(): Promise<PendingMark[]> {
    const q = this.handle.sql;
    const rows = await q`SELECT ${q.unsafe(this.spec.key)} AS key, attempts, last_error FROM ${q.unsafe(this.spec.table)} ORDER BY created_at`;
    return rows.map((r) => ({ key: r.key as string, attempts: r.attempts as number, lastError: r.last_error as string }));
  }

  async #drainLocked(limit: number, call: MarkCall): Promise<DrainResult> {
    const { table, key } = this.spec;
    try {
      return await this.handle.sql.begin(async (tx) => {
        const rows = await tx`SELECT ${tx.unsafe(key)} AS key FROM ${tx.unsafe(table)} ORDER BY created_at LIMIT ${limit} FOR UPDATE SKIP LOCKED`;
        const keys = rows.map((r) => r.key as string);
        if (keys.length === 0) return { done: 0, failed: 0, again: 0, taken: 0 };
        const { done, failed } = await callSplitting(keys, call);
        if (done.length > 0) await tx`DELETE FROM ${tx.unsafe(table)} WHERE ${tx.unsafe(key)} = ANY(${done}::uuid[])`;
        if (failed.size > 0) await recordFailures(tx as never, this.spec, failed, "");
        return { done: done.length, failed: failed.size, again: 0, taken: keys.length, ...firstError(failed) };
      });
    } catch (e) {
      throw mapPgError(e, { operation: `drain ${table}` });
    }
  }

  async #drainClaimed(limit: number, call: MarkCall): Promise<DrainResult> {
    const { table, key } = this.spec;
    const q = this.handle.sql;
    const t = q.unsafe(table);
    const k = q.unsafe(key);
    try {
      const claimed = await q`
        UPDATE ${q.unsafe(`${table} AS m`)} SET claimed_until = now() + make_interval(secs => ${CLAIM_SECONDS})
        WHERE m.${k} IN (SELECT ${k} FROM ${t} WHERE claimed_until IS NULL OR claimed_until < now() ORDER BY created_at LIMIT ${limit} FOR UPDATE SKIP LOCKED)
        RETURNING m.${k} AS key, m.generation`;
      if (claimed.length === 0) return { done: 0, failed: 0, again: 0, taken: 0 };
      const generation = new Map(claimed.map((r) => [r.key as string, Number(r.generation)]));
      const keys = [...generation.keys()];
      const { done, failed } = await callSplitting(keys, call);
      let deleted = 0;
      await q.begin(async (tx) => {
        if (done.length > 0) {
          // Only at the generation claimed: a mark written again during the call is the next drain's.
          const gone = await tx`
            DELETE FROM ${tx.unsafe(`${table} AS m`)} USING unnest(${done}::uuid[], ${done.map((d) => generation.get(d)!)}::bigint[]) AS x(key, generation)
            WHERE m.${tx.unsafe(key)} = x.key AND m.generation = x.generation RETURNING 1`;
          deleted = gone.length;
          await tx`UPDATE ${tx.unsafe(table)} SET claimed_until = NULL WHERE ${tx.unsafe(key)} = ANY(${done}::uuid[])`;
        }
        if (failed.size > 0) await recordFailures(tx as never, this.spec, failed, ", claimed_until = NULL");
      });
      return { done: deleted, failed: failed.size, again: done.length - deleted, taken: keys.length, ...firstError(failed) };
    } catch (e) {
      throw mapPgError(e, { operation: `drain ${table}` });
    }
  }
}

/** The call for all keys; when the other service refused the batch as a whole, key by key. */
async function callSplitting(keys: string[], call: MarkCall): Promise<{ done: string[]; failed: Map<string, string> }> {
  const failed = new Map<string, string>();
  try {
    const perKey = await call(keys);
    for (const [k, e] of perKey ?? []) failed.set(k, errorMessage(e));
    return { done: keys.filter((k) => !failed.has(k)), failed };
  } catch (e) {
    // An outage fails every key the same: asking again key by key would only multiply the calls.
    if (keys.length === 1 || !answered(e)) {
      for (const k of keys) failed.set(k, errorMessage(e));
      return { done: [], failed };
    }
  }
  const done: string[] = [];
  for (const k of keys) {
    try {
      const perKey = await call([k]);
      if (perKey?.has(k)) failed.set(k, errorMessage(perKey.get(k)));
      else done.push(k);
    } catch (e) {
      failed.set(k, errorMessage(e));
    }
  }
  return { done, failed };
}

function firstError(failed: Map<string, string>): { error?: string } {
  const [first] = failed;
  return first ? { error: `${first[0]}: ${first[1]}` } : {};
}

/** True when the error is the other service's answer (it refused something), not that it could not be reached. */
function answered(e: unknown): boolean {
  const code = StratumError.from(e).code;
  return code !== Code.UNAVAILABLE && code !== Code.DEADLINE_EXCEEDED && code !== Code.CANCELLED;
}

async function recordFailures(tx: ComputeDb["sql"], spec: MarkTable, failed: Map<string, string>, extraSet: string): Promise<void> {
  const ids = [...failed.keys()];
  await tx`UPDATE ${tx.unsafe(`${spec.table} AS m`)} SET attempts = m.attempts + 1, last_error = x.error${tx.unsafe(extraSet)}
    FROM unnest(${ids}::uuid[], ${ids.map((id) => failed.get(id)!)}::text[]) AS x(key, error) WHERE m.${tx.unsafe(spec.key)} = x.key`;
}
