import type postgres from "postgres";
import { qualifiedName, TurnBatcher, type RequestsTable } from "@stratum/db";

interface PendingClaim {
  requestId: string;
  method: string;
  hash: string;
  holder: string;
  resolve(claimed: boolean): void;
  reject(error: unknown): void;
}

interface PendingFinish {
  requestId: string;
  holder: string;
  state: "done" | "failed";
  response: string;
  resolve(held: boolean): void;
  reject(error: unknown): void;
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
  readonly #claims: TurnBatcher<PendingClaim>;
  readonly #finishes: TurnBatcher<PendingFinish>;
  readonly #maxBatch: number;

  constructor(o: RequestBatcherOptions) {
    const { sql, table } = o;
    this.#maxBatch = o.maxBatch ?? 512;
    const name = sql.unsafe(qualifiedName(table));
    const target = sql.unsafe(`${qualifiedName(table)} AS t`);
    const col = (c: { name: string }) => sql.unsafe(`"${c.name}"`);
    const requestId = col(table.requestId);
    const method = col(table.method);
    const hash = col(table.requestHash);
    const holder = col(table.holder);
    const state = col(table.state);
    const response = col(table.response);

    this.#claims = new TurnBatcher(
      (pending) =>
        this.#flush(pending, async (batch) => {
          const rows = await sql`
            INSERT INTO ${name} (${requestId}, ${method}, ${hash}, ${holder})
            SELECT * FROM unnest(${batch.map((p) => p.requestId)}::text[], ${batch.map((p) => p.method)}::text[], ${batch.map((p) => p.hash)}::text[], ${batch.map((p) => p.holder)}::text[])
            ON CONFLICT DO NOTHING
            RETURNING ${requestId} AS request_id`;
          const won = new Set(rows.map((r) => String(r.request_id)));
          for (const p of batch) p.resolve(won.has(p.requestId));
        }),
      (p, e) => p.reject(e),
    );

    this.#finishes = new TurnBatcher(
      (pending) =>
        this.#flush(pending, async (batch) => {
          const rows = await sql`
            UPDATE ${target} SET ${state} = x.state, ${response} = x.response
            FROM unnest(${batch.map((p) => p.requestId)}::text[], ${batch.map((p) => p.holder)}::text[], ${batch.map((p) => p.state)}::text[], ${batch.map((p) => p.response)}::text[]) AS x(request_id, holder, state, response)
            WHERE t.${requestId} = x.request_id AND t.${holder} = x.holder
            RETURNING t.${requestId} AS request_id`;
          const held = new Set(rows.map((r) => String(r.request_id)));
          for (const p of batch) p.resolve(held.has(p.requestId));
        }),
      (p, e) => p.reject(e),
    );
  }

  /** Inserts the id's `running` record for `holder`: true if this call won it, false if a record was there. */
  claim(requestId: string, method: string, hash: string, holder: string): Promise<boolean> {
    return new Promise((resolve, reject) => this.#claims.submit({ requestId, method, hash, holder, resolve, reject }));
  }

  /** Records the outcome if `holder` still holds the id's record: true if it did, false if not (or it is gone). */
  finish(requestId: string, holder: string, state: "done" | "failed", response: string): Promise<boolean> {
    return new Promise((resolve, reject) => this.#finishes.submit({ requestId, holder, state, response, resolve, reject }));
  }

  /** Sends one statement for the pending items it may carry; returns those left for the next flush. */
  async #flush<T extends { requestId: string; reject(error: unknown): void }>(pending: T[], send: (batch: T[]) => Promise<void>): Promise<T[]> {
    const batch: T[] = [];
    const later: T[] = [];
    const seen = new Set<string>();
    for (const p of pending) {
      if (batch.length < this.#maxBatch && !seen.has(p.requestId)) {
        seen.add(p.requestId);
        batch.push(p);
      } else later.push(p);
    }
    try {
      await send(batch);
    } catch (e) {
      for (const p of batch) p.reject(e);
    }
    return later;
  }
}
