import type postgres from "postgres";
import { KeyedBatcher, qualifiedName, type RequestsTable } from "@stratum/db";

interface Claim {
  requestId: string;
  method: string;
  hash: string;
  holder: string;
}

interface Finish {
  requestId: string;
  holder: string;
  state: "done" | "failed";
  response: string;
}

export interface RequestBatcherOptions {
  /** The postgres-js pool the statements go out on. */
  sql: postgres.Sql;
  table: RequestsTable;
  /** Largest batch: keeps one statement's arrays and its lock set small. Default 512. */
  maxBatch?: number;
}

/**
 * The two statements every call with a request id makes — the claim of its id and the record of
 * its outcome — combined across concurrent calls into one statement of each kind per event-loop
 * turn ({@link TurnBatcher}), so a burst of N mutating calls costs Postgres (and the replica's
 * driver) two statements instead of 2N. Each row keeps its own conditions, so every caller learns
 * what its own single-row statement would have told it: whether its insert won the id, whether
 * its update still matched a record it holds.
 *
 * Two items for one request id never share a statement (the later is left for the next flush):
 * within one `INSERT … ON CONFLICT DO NOTHING` only one of them can win and the statement does not
 * say which, and one `UPDATE … FROM` applies only one of two matches for a row. A failed statement
 * (Postgres away) rejects each of its callers with the driver's error, as their own statement
 * would have; the serving chain maps it (a lost connection is UNAVAILABLE).
 */
export class RequestBatcher {
  readonly #claims: KeyedBatcher<Claim, true>;
  readonly #finishes: KeyedBatcher<Finish, true>;

  constructor(o: RequestBatcherOptions) {
    const { sql, table } = o;
    const name = sql.unsafe(qualifiedName(table));
    const target = sql.unsafe(`${qualifiedName(table)} AS t`);
    const col = (c: { name: string }) => sql.unsafe(`"${c.name}"`);
    const requestId = col(table.requestId);
    const method = col(table.method);
    const hash = col(table.requestHash);
    const holder = col(table.holder);
    const state = col(table.state);
    const response = col(table.response);
    const matched = (rows: readonly { request_id?: unknown }[]) => new Map(rows.map((r) => [String(r.request_id), true as const]));

    this.#claims = new KeyedBatcher<Claim, true>(
      (c) => c.requestId,
      async (batch) =>
        matched(await sql`
          INSERT INTO ${name} (${requestId}, ${method}, ${hash}, ${holder})
          SELECT * FROM unnest(${batch.map((p) => p.requestId)}::text[], ${batch.map((p) => p.method)}::text[], ${batch.map((p) => p.hash)}::text[], ${batch.map((p) => p.holder)}::text[])
          ON CONFLICT DO NOTHING
          RETURNING ${requestId} AS request_id`),
      o.maxBatch,
    );

    this.#finishes = new KeyedBatcher<Finish, true>(
      (f) => f.requestId,
      async (batch) =>
        matched(await sql`
          UPDATE ${target} SET ${state} = x.state, ${response} = x.response
          FROM unnest(${batch.map((p) => p.requestId)}::text[], ${batch.map((p) => p.holder)}::text[], ${batch.map((p) => p.state)}::text[], ${batch.map((p) => p.response)}::text[]) AS x(request_id, holder, state, response)
          WHERE t.${requestId} = x.request_id AND t.${holder} = x.holder
          RETURNING t.${requestId} AS request_id`),
      o.maxBatch,
    );
  }

  /** Inserts the id's `running` record for `holder`: true if this call won it, false if a record was there. */
  async claim(requestId: string, method: string, hash: string, holder: string): Promise<boolean> {
    return (await this.#claims.submit({ requestId, method, hash, holder })) === true;
  }

  /** Records the outcome if `holder` still holds the id's record: true if it did, false if not (or it is gone). */
  async finish(requestId: string, holder: string, state: "done" | "failed", response: string): Promise<boolean> {
    return (await this.#finishes.submit({ requestId, holder, state, response })) === true;
  }
}
