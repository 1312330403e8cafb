import type { EventBus } from "@stratum/bus";
import type { Logger } from "@stratum/core";
import { errorMessage } from "@stratum/core";
import type postgres from "postgres";

export interface OutboxRelayOptions {
  sql: postgres.Sql;
  /** The service's schema, whose `outbox` table is relayed. */
  schema: string;
  events: EventBus;
  log: Logger;
  /** How often the relay looks without being kicked: rows a dead replica left wait at most this. */
  intervalMs?: number;
  /** Rows published per round. */
  batch?: number;
}

/** First key of the advisory lock that elects a service's one relay; the second is the schema's hash. */
const RELAY_LOCK_CLASS = 0x53544f42; // "STOB"

/**
 * Publishes a service's outbox to JetStream: the rows in id order, each with `Nats-Msg-Id` =
 * `<schema>-outbox-<id>` and confirmed by the server, then deletes them. Every replica of the
 * service relays, one batch at a time under a transaction-level advisory lock (see
 * {@link OutboxRelay#publishBatch}), so events leave in the order their changes committed and a
 * dead replica holds nothing up. A NATS outage leaves the rows where they are:
 * they go out once NATS is back. A crash between publish and delete re-publishes rows that
 * JetStream then drops as duplicates (its window is 2 minutes), so an event is delivered once.
 * The replica that writes events wakes its own relay (`kick()`, the kit's `ctx.eventsWritten`),
 * so no event waits for the interval; the interval only covers rows a dead replica left behind.
 * (Not LISTEN/NOTIFY: postgres-js's listening connection throws an uncaught error from a timer
 * when Postgres goes away, which would take the replica down.)
 */
export class OutboxRelay {
  readonly #o: Required<Omit<OutboxRelayOptions, "log">> & { log: Logger };
  #timer: NodeJS.Timeout | undefined;
  #round: Promise<void> | undefined;
  #again = false;
  #stopped = false;

  constructor(options: OutboxRelayOptions) {
    this.#o = { intervalMs: 1_000, batch: 500, ...options };
  }

  async start(): Promise<void> {
    this.#timer = setInterval(() => this.kick(), this.#o.intervalMs);
    this.#timer.unref();
    this.kick();
  }

  /** Runs a round now (or right after the one running). */
  kick(): void {
    if (this.#stopped) return;
    if (this.#round) {
      this.#again = true;
      return;
    }
    this.#round = this.#run().finally(() => {
      this.#round = undefined;
      if (this.#again) {
        this.#again = false;
        this.kick();
      }
    });
  }

  /** Publishes what is there now; resolves when the outbox was empty (for tests and shutdown). */
  async drain(): Promise<void> {
    while (this.#round) await this.#round;
    this.kick();
    while (this.#round) await this.#round;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearInterval(this.#timer);
    await this.#round;
  }

  async #run(): Promise<void> {
    try {
      for (;;) {
        const moved = await this.#publishBatch();
        if (moved < this.#o.batch || this.#stopped) return;
      }
    } catch (e) {
      // Postgres or NATS is away: the rows stay, the next round tries again.
      this.#o.log.warn("outbox relay round failed", { schema: this.#o.schema, error: errorMessage(e) });
    }
  }

  /**
   * One batch, in one transaction that holds the service's relay lock: replicas that race for
   * it publish one after the other, never interleaved, so events leave in commit order. The
   * rows are deleted in the same transaction, after JetStream acknowledged every one of them;
   * any failure rolls the delete back and the rows are published again (and deduplicated).
   */
  async #publishBatch(): Promise<number> {
    return this.#o.sql.begin(async (tx) => {
      const [lock] = await tx`SELECT pg_try_advisory_xact_lock(${RELAY_LOCK_CLASS}, hashtext(${this.#o.schema})) AS ok`;
      if (lock?.ok !== true) return 0; // another replica is relaying this very moment
      const table = tx.unsafe(`"${this.#o.schema}"."outbox"`);
      // payload::text: the JSON goes out as Postgres holds it, not parsed and stringified again.
      const rows = await tx`SELECT id, domain, event, key, payload::text AS json, request_id FROM ${table} ORDER BY id LIMIT ${this.#o.batch}`;
      if (rows.length === 0) return 0;
      // Sent in id order on one connection, so they are stored in that order; the batch resolves
      // once every one is acknowledged, and fails (rolling the delete back) if any is not.
      await this.#o.events.publishEncoded(
        rows.map((r) => ({
          domain: r.domain as string,
          event: r.event as string,
          ...(r.key ? { key: r.key as string } : {}),
          json: r.json as string,
          id: `${this.#o.schema}-outbox-${r.id}`,
          ...(r.request_id ? { requestId: r.request_id as string } : {}),
        })),
      );
      await tx`DELETE FROM ${table} WHERE id = ANY(${rows.map((r) => r.id as string)}::bigint[])`;
      return rows.length;
    });
  }
}
