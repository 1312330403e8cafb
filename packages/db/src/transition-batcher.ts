import type { PgColumn, PgTable } from "drizzle-orm/pg-core";
import { currentWork } from "@stratum/core";
import type postgres from "postgres";
import { mapPgError } from "./pg-errors";
import { qualifiedName, rowMapper } from "./row-mapper";
import { KeyedBatcher } from "./keyed-batcher";

/**
 * A condition every write of the batcher must also meet, as a postgres-js fragment over the
 * updated table aliased `t` (e.g. the ownership token of the replica that writes). Returning
 * undefined adds nothing. This is the hook through which fencing reaches every owner write.
 */
export type WriteGuard = (sql: postgres.Sql) => postgres.PendingQuery<postgres.Row[]> | undefined;

export interface TransitionBatcherOptions<TTable extends PgTable> {
  sql: postgres.Sql;
  table: TTable;
  /** The primary key column the transitions are addressed by. */
  key: PgColumn;
  /** The state column: a Postgres enum (or text) column. */
  state: PgColumn;
  /** A text column set with each transition when given (`COALESCE`: null keeps the old value). */
  message?: PgColumn;
  /** A timestamp column set to `now()` by every transition. */
  updatedAt?: PgColumn;
  /** Extra condition of every write (see {@link WriteGuard}). */
  guard?: WriteGuard;
  /**
   * A text column every transition sets to `value()` (read once per statement): who moved the
   * row last, e.g. the replica (and its incarnation) that did, so a takeover can tell a row that
   * a live replica is working on from one left behind by a dead one.
   */
  stamp?: { column: PgColumn; value: () => string };
  /**
   * A bigint column every transition (and claim) increments: the row's fencing token. Commands a
   * writer sends on the resource's behalf carry the value its last write returned, so whoever
   * receives them (an agent) can refuse one older than the newest it has seen — a writer that
   * lost the row to a takeover is fenced outside the database too.
   */
  fence?: PgColumn;
  /**
   * A text column every transition sets to the request key its caller passes (null if none): which
   * request (its AIP-155 request id) the row's current operation serves, so a retry of that
   * request after the replica running it died can tell that the row's state is its outcome.
   */
  request?: PgColumn;
  /**
   * Writes a domain event for every transition into the service's outbox, in the same statement
   * (see `outboxTable`): `payload` builds its JSON from the moved row, aliased `m`, whose state
   * before the move is `m.__from`. The request id of each transition's submitter goes with it.
   */
  outbox?: {
    table: PgTable;
    domain: string;
    event: string;
    payload: (sql: postgres.Sql) => postgres.PendingQuery<postgres.Row[]>;
    /** The event's subject key from the moved row `m` (e.g. `m.uuid::text`): watchers of one resource subscribe to it alone. */
    key?: (sql: postgres.Sql) => postgres.PendingQuery<postgres.Row[]>;
    written?: () => void;
  };
  /** Largest batch: keeps one statement's arrays and its lock set small. Default 512. */
  maxBatch?: number;
}

interface Pending {
  key: string;
  from: string;
  to: string;
  message: string | null;
  requestId: string | null;
  opRequest: string | null;
}

/**
 * Combines the conditional state updates of concurrent operations into one statement per
 * event-loop turn. Each row keeps its own condition (`state = from`), so the semantics are those
 * of one `UPDATE … WHERE key = $1 AND state = $2` per resource — each caller gets its row, or
 * undefined if its resource was not in `from` (the caller checks: an update that matched nothing
 * is never ignored) — but a burst of N operations costs one round trip instead of N. Alone, an
 * update waits one turn (`setImmediate`) and goes out by itself.
 *
 * Two updates of the same resource never share a statement (a join with two matches would apply
 * only one), and the second waits until the statement carrying the first has returned, so they
 * apply in submission order. Scheduling is a {@link KeyedBatcher}'s: one statement in flight at a
 * time, while the next batch fills up.
 */
export class TransitionBatcher<TTable extends PgTable, TState extends string = string> {
  readonly #batcher: KeyedBatcher<Pending, TTable["$inferSelect"]>;
  readonly #toRow: (raw: Record<string, unknown>) => TTable["$inferSelect"];
  readonly #statement: (keys: string[], from: string[], to: string[], messages: (string | null)[], requestIds: (string | null)[], opRequests: (string | null)[]) => postgres.PendingQuery<postgres.Row[]>;
  readonly #what: string;
  readonly #keyProp: string;

  constructor(private readonly o: TransitionBatcherOptions<TTable>) {
    this.#toRow = rowMapper(o.table);
    this.#keyProp = propertyOf(o.table, o.key);
    const { sql } = o;
    const table = sql.unsafe(`${qualifiedName(o.table)} AS t`);
    const key = sql.unsafe(`"${o.key.name}"`);
    const state = sql.unsafe(`"${o.state.name}"`);
    const stateType = sql.unsafe(enumTypeOf(o.state));
    const keyType = sql.unsafe(`${o.key.getSQLType()}[]`);
    const set = [`"${o.state.name}" = x.to_state::${enumTypeOf(o.state)}`];
    if (o.message) set.push(`"${o.message.name}" = COALESCE(x.message, t."${o.message.name}")`);
    if (o.updatedAt) set.push(`"${o.updatedAt.name}" = now()`);
    if (o.fence) set.push(`"${o.fence.name}" = t."${o.fence.name}" + 1`);
    if (o.request) set.push(`"${o.request.name}" = x.op_request`);
    const assignments = sql.unsafe(set.join(", "));
    const stampColumn = o.stamp ? sql.unsafe(`"${o.stamp.column.name}"`) : undefined;
    this.#what = `update ${qualifiedName(o.table)} ${o.state.name}`;
    const outbox = o.outbox;
    const outboxName = outbox ? sql.unsafe(qualifiedName(outbox.table)) : undefined;
    this.#statement = (keys, from, to, messages, requestIds, opRequests) => {
      const guard = o.guard?.(sql);
      const stamp = stampColumn ? sql`, ${stampColumn} = ${o.stamp!.value()}` : sql``;
      const update = sql`
        UPDATE ${table} SET ${assignments}${stamp}
        FROM unnest(${keys}::${keyType}, ${from}::text[], ${to}::text[], ${messages}::text[], ${requestIds}::text[], ${opRequests}::text[]) AS x(key, from_state, to_state, message, request_id, op_request)
        WHERE t.${key} = x.key AND t.${state} = x.from_state::${stateType} ${guard ? sql`AND ${guard}` : sql``}`;
      if (!outbox) return sql`${update} RETURNING t.*`;
      return sql`
        WITH m AS (${update} RETURNING t.*, x.from_state AS __from, x.request_id AS __request_id),
        o AS (INSERT INTO ${outboxName!} (domain, event, key, payload, request_id) SELECT ${outbox.domain}, ${outbox.event}, ${outbox.key ? outbox.key(sql) : sql`NULL`}, ${outbox.payload(sql)}, m.__request_id FROM m)
        SELECT m.* FROM m`;
    };
    this.#batcher = new KeyedBatcher((p) => p.key, (batch) => this.#flush(batch), o.maxBatch ?? 512);
  }

  /**
   * Takes a row left mid-operation in `state` by another writer, without moving it: stamps it
   * (and increments its fence) if the guard lets this writer have it — for an owner guard, once
   * the writer that left it has lost its lease. The new owner claims before it acts, so from then
   * on the old writer's writes match nothing and its commands carry an older fence. Its new row,
   * or undefined when the row is not in `state` or not this writer's to take.
   */
  async claim(key: string, state: TState): Promise<TTable["$inferSelect"] | undefined> {
    const { sql, stamp, fence, guard } = this.o;
    if (!stamp) throw new TypeError(`${this.#what}: claim needs a stamp column (who holds the row)`);
    const g = guard?.(sql);
    try {
      const [raw] = await sql`
        UPDATE ${sql.unsafe(`${qualifiedName(this.o.table)} AS t`)}
        SET ${sql.unsafe(`"${stamp.column.name}"`)} = ${stamp.value()} ${fence ? sql.unsafe(`, "${fence.name}" = t."${fence.name}" + 1`) : sql``}
        WHERE t.${sql.unsafe(`"${this.o.key.name}"`)} = ${key} AND t.${sql.unsafe(`"${this.o.state.name}"`)}::text = ${state} ${g ? sql`AND ${g}` : sql``}
        RETURNING t.*`;
      return raw ? this.#toRow(raw as Record<string, unknown>) : undefined;
    } catch (e) {
      throw mapPgError(e, { operation: `${this.#what} claim` });
    }
  }

  /**
   * Moves `key` from `from` to `to` if it is still in `from`: its new row, or undefined.
   * `opRequest` is recorded in the `request` column (see the option).
   */
  transition(key: string, from: TState, to: TState, message?: string, opRequest?: string): Promise<TTable["$inferSelect"] | undefined> {
    const requestId = currentWork()?.requestId ?? null;
    return this.#batcher.submit({ key, from, to, message: message ?? null, requestId, opRequest: opRequest || null });
  }

  /** One statement for a batch of distinct keys: each key's new row. */
  async #flush(batch: Pending[]): Promise<Map<string, TTable["$inferSelect"]>> {
    try {
      const rows = await this.#statement(
        batch.map((p) => p.key),
        batch.map((p) => p.from),
        batch.map((p) => p.to),
        batch.map((p) => p.message),
        batch.map((p) => p.requestId),
        batch.map((p) => p.opRequest),
      );
      const byKey = new Map<string, TTable["$inferSelect"]>();
      for (const raw of rows) {
        const row = this.#toRow(raw as Record<string, unknown>);
        byKey.set(String((row as Record<string, unknown>)[this.#keyProp]), row);
      }
      if (rows.length > 0) this.o.outbox?.written?.();
      return byKey;
    } catch (e) {
      throw mapPgError(e, { operation: this.#what });
    }
  }
}

/** The SQL type to cast a state to: the column's enum (schema-qualified) or its own type. */
function enumTypeOf(column: PgColumn): string {
  const e = (column as unknown as { enum?: { enumName: string; schema?: string } }).enum;
  if (!e) return column.getSQLType();
  return e.schema ? `"${e.schema}"."${e.enumName}"` : `"${e.enumName}"`;
}

function propertyOf(table: PgTable, column: PgColumn): string {
  for (const [prop, c] of Object.entries(table as unknown as Record<string, unknown>)) if (c === column) return prop;
  throw new TypeError(`column ${column.name} is not a column of its table`);
}
