import { createHash } from "node:crypto";
import { create, fromBinary, toBinary, type DescMessage, type DescMethod, type Message } from "@bufbuild/protobuf";
import { and, eq, lt, or, sql, type SQL } from "drizzle-orm";
import type { PostgresJsDatabase } from "drizzle-orm/postgres-js";
import type postgres from "postgres";
import { Code, StratumError, type FieldViolation } from "@stratum/core";
import type { LeasesTable, RequestsTable } from "@stratum/db";
import type { ServerInterceptor } from "@stratum/rpc";
import type { MethodRules } from "./api";
import { toStratumError } from "./errors";
import { RequestBatcher } from "./request-batcher";

/**
 * Failures after which the operation did not happen (or must be allowed to run again): the
 * request id is released so a retry runs it. Every other outcome is the call's one outcome.
 */
const RETRYABLE: ReadonlySet<Code> = new Set([Code.UNAVAILABLE, Code.RESOURCE_EXHAUSTED, Code.CANCELLED, Code.DEADLINE_EXCEEDED, Code.ABORTED]);

/** Default of how long a `running` record may stay before another call may take it over. */
export const DEFAULT_STALE_REQUEST_MS = 10 * 60_000;

interface StoredError {
  code: Code;
  message: string;
  reason: string;
  resources: Record<string, string>;
  violations: FieldViolation[];
}

interface InFlight {
  method: string;
  hash: string;
  outcome: Promise<Message>;
}

export interface IdempotencyOptions {
  db: PostgresJsDatabase<Record<string, unknown>>;
  /**
   * The postgres-js pool under `db`, which the batched claim and outcome statements go out on.
   * Default: `db.$client`, the pool drizzle was made over.
   */
  sql?: postgres.Sql;
  table: RequestsTable;
  rules: (method: DescMethod) => MethodRules<unknown> | undefined;
  /**
   * A record still `running` after this long belongs to a call whose replica died before it
   * finished: a retry may run the operation again. Above the service's longest operation.
   */
  staleAfterMs?: number;
  /**
   * Who runs the operations of this replica (its incarnation), whether another holder is alive,
   * and the leases that fence them: with these, a retry takes over a request whose holder died as
   * soon as that holder's lease is gone, instead of after `staleAfterMs`.
   */
  holder?: { self: () => string; isLive: (holder: string) => boolean; leases?: LeasesTable };
}

/**
 * Request-id idempotency for every mutating call that declares a request-id field (AIP-155),
 * so no handler writes its own check. The first call with an id claims it (a primary key, not a
 * lock) with its method and a hash of its request; its outcome — the response, or a failure
 * that says the operation ran and failed — is stored, and a retry gets that outcome back
 * without running again. The same id with another request or method is ALREADY_EXISTS
 * `REQUEST_ID_IN_USE` naming the id. A retry that arrives while the first call runs on this
 * replica waits for it and shares its outcome; one that finds it running elsewhere is UNAVAILABLE
 * `REQUEST_IN_PROGRESS` (a client retries it with backoff). Failures that mean "nothing
 * happened" (see RETRYABLE) release the id.
 *
 * A record names its holder, the incarnation running the operation, and only the holder records
 * the outcome. A retry runs the operation again — the domain then finds what the first attempt
 * left and answers from it — when the holder is dead (gone from the membership and its lease
 * expired), or is this very replica but no call of it runs the request any more (recording its
 * outcome failed: Postgres was away). A holder whose request was taken over meanwhile (it was
 * paused past its lease) answers with the outcome the new holder recorded.
 *
 * It runs on the owner of the resource, after validation and routing, so the calls racing for
 * one id meet on one replica.
 */
export function idempotency(options: IdempotencyOptions): ServerInterceptor {
  const { db, table } = options;
  const staleAfterMs = options.staleAfterMs ?? DEFAULT_STALE_REQUEST_MS;
  const inFlight = new Map<string, InFlight>();
  const client = options.sql ?? (db as { $client?: postgres.Sql }).$client;
  if (typeof client !== "function") throw new TypeError("idempotency: db has no postgres-js client ($client); pass the pool as options.sql");
  // The claim and the outcome of every call, one statement per event-loop turn for all calls.
  const statements = new RequestBatcher({ sql: client, table });

  const conflict = (requestId: string) =>
    new StratumError(Code.ALREADY_EXISTS, `request id ${requestId} was already used for a different request`, { reason: "REQUEST_ID_IN_USE", resources: { requestId } });

  const me = () => options.holder?.self() ?? "";
  const leases = options.holder?.leases;

  /** Why a running record's call is gone, so a retry may run it again; undefined if it may not be. */
  const orphaned = (row: { holder: string }): SQL | undefined => {
    const stale = lt(table.createdAt, sql`now() - ${`${staleAfterMs} milliseconds`}::interval`);
    if (!options.holder) return stale;
    // This replica's own record that no call of it runs (it is not in flight here).
    if (row.holder === me()) return or(stale, eq(table.holder, me()));
    if (options.holder.isLive(row.holder)) return stale;
    // A dead holder's, once its lease is gone too (the authority: it may only be paused).
    if (!leases) return or(stale, eq(table.holder, row.holder));
    return or(stale, and(eq(table.holder, row.holder), sql`NOT EXISTS (SELECT 1 FROM ${leases} WHERE ${leases.holder} = ${table.holder} AND ${leases.expiresAt} > now())`));
  };

  /** Claims the id: true if this call runs the operation, else the record that holds it. */
  const claim = async (requestId: string, method: string, hash: string) => {
    for (;;) {
      if (await statements.claim(requestId, method, hash, me())) return { claimed: true as const };
      const [row] = await db.select().from(table).where(eq(table.requestId, requestId));
      if (!row) continue; // released between our insert and select: claim again
      const gone = row.state === "running" && row.requestHash === hash && row.method === method ? orphaned(row) : undefined;
      if (gone) {
        const [retaken] = await db
          .update(table)
          .set({ createdAt: sql`now()`, holder: me() })
          .where(and(eq(table.requestId, requestId), eq(table.state, "running"), gone))
          .returning({ requestId: table.requestId });
        if (retaken) return { claimed: true as const };
      }
      return { claimed: false as const, row };
    }
  };

  /**
   * Records the outcome, if this replica still holds the request; else the record that holds it
   * now (taken over while this replica was unresponsive). Recording can fail too (Postgres gone):
   * the record stays `running`, held by this replica, and its retry runs it again (see `orphaned`).
   */
  const finish = async (requestId: string, state: "done" | "failed", response: string) => {
    if (await statements.finish(requestId, me(), state, response)) return undefined;
    const [row] = await db.select().from(table).where(eq(table.requestId, requestId));
    return row;
  };

  const release = async (requestId: string) => {
    await db.delete(table).where(and(eq(table.requestId, requestId), eq(table.state, "running"), eq(table.holder, me())));
  };

  /** The outcome a record holds: the response, the stored failure, or "still running elsewhere". */
  const outcomeOf = (row: typeof table.$inferSelect, requestId: string, output: DescMessage): Message => {
    if (row.state === "done") return fromBinary(output, Buffer.from(row.response ?? "", "base64"));
    if (row.state === "failed") throw restoreError(JSON.parse(row.response ?? "{}") as StoredError, requestId);
    throw new StratumError(Code.UNAVAILABLE, `request ${requestId} is still in progress; retry later`, { reason: "REQUEST_IN_PROGRESS", resources: { requestId } });
  };


  return (next) => async (call) => {
    const requestId = options.rules(call.method)?.requestId?.(call.request);
    if (!requestId || call.method.methodKind !== "unary") return next(call);
    const method = `${call.service.typeName}/${call.method.name}`;
    const input = call.method.input;
    const output = call.method.output;
    const hash = hashRequest(input, call.request as Message);

    const joined = inFlight.get(requestId);
    if (joined) {
      if (joined.method !== method || joined.hash !== hash) throw conflict(requestId);
      return joined.outcome;
    }
    // Registered before the first await, so a concurrent retry on this replica joins this call
    // instead of finding its claim half made.
    const outcome = (async (): Promise<Message> => {
      const held = await claim(requestId, method, hash);
      if (!held.claimed) {
        const { row } = held;
        if (row.method !== method || row.requestHash !== hash) throw conflict(requestId);
        return outcomeOf(row, requestId, output);
      }
      let response: Message;
      try {
        response = create(output, (await next(call)) as never) as Message;
      } catch (e) {
        const err = toStratumError(e);
        // A failure the transport would answer INTERNAL stays unrecorded: it says nothing stable.
        if (err instanceof StratumError && !RETRYABLE.has(err.code)) {
          const taken = await finish(requestId, "failed", JSON.stringify(storedError(err)));
          if (taken) return outcomeOf(taken, requestId, output);
        } else await release(requestId);
        throw err;
      }
      const taken = await finish(requestId, "done", Buffer.from(toBinary(output, response)).toString("base64"));
      return taken ? outcomeOf(taken, requestId, output) : response;
    })();
    const entry: InFlight = { method, hash, outcome };
    inFlight.set(requestId, entry);
    try {
      return await outcome;
    } finally {
      inFlight.delete(requestId);
    }
  };
}

/** A fingerprint of the request: its canonical protobuf encoding. */
function hashRequest(schema: DescMessage, request: Message): string {
  return createHash("sha256").update(toBinary(schema, request)).digest("base64url");
}

function storedError(e: StratumError): StoredError {
  return { code: e.code, message: e.message, reason: e.reason, resources: { ...e.resources }, violations: [...e.violations] };
}

function restoreError(s: StoredError, requestId: string): StratumError {
  return new StratumError(s.code, s.message, { reason: s.reason, resources: { ...s.resources, requestId }, violations: s.violations });
}

/** Default of how long a finished request's outcome is kept for its retries: a day (AIP-155 leaves it to the service). */
export const DEFAULT_REQUEST_RETENTION_MS = 24 * 3_600_000;

/**
 * Forgets finished requests older than `retentionMs` (a retry after that runs again); returns
 * how many. `running` ones are left to the stale takeover. Any replica may run it, at any time.
 */
export async function sweepRequests(db: PostgresJsDatabase<Record<string, unknown>>, table: RequestsTable, retentionMs = DEFAULT_REQUEST_RETENTION_MS): Promise<number> {
  const gone = await db
    .delete(table)
    .where(and(sql`${table.state} <> 'running'`, lt(table.createdAt, sql`now() - ${`${retentionMs} milliseconds`}::interval`)))
    .returning({ requestId: table.requestId });
  return gone.length;
}
