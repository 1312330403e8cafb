import { AckPolicy, DeliverPolicy, type JsMsg } from "@nats-io/jetstream";
import { headers } from "@nats-io/transport-node";
import { currentWork, runWithWork } from "@stratum/core";
import { AckedBatchPublisher } from "./acked-batch";
import type { Bus } from "./connect";
import { assertToken, streamName, subject } from "./names";
import { ensureStream, nanos } from "./streams";

/** A domain event as delivered to subscribers. */
export interface DomainEvent<T = unknown> {
  /** Full subject without the bus prefix: `stratum.<domain>.<event>`. */
  readonly subject: string;
  readonly domain: string;
  readonly event: string;
  readonly data: T;
  /** Stable id: a re-published event with the same id is dropped by JetStream's dedup window. */
  readonly id: string;
  readonly time: Date;
  /** Stream sequence, monotonic per stream: lets consumers skip what they already applied. */
  readonly seq: number;
  /**
   * The request that caused the event (header {@link REQUEST_ID_HEADER}), when it was published
   * inside a work scope or with an explicit `requestId`. The handler also runs in a work scope
   * with this id, so its log lines, and what it publishes in turn, name the same request.
   */
  readonly requestId?: string;
}

/** Options of {@link EventBus.publish} and {@link EventBus.publishUnconfirmed}. */
export interface PublishOptions {
  /** Stable event id for dedup; default a random UUID. */
  id?: string;
  /** The request the event belongs to; default the current work's (`runWithWork`). */
  requestId?: string;
}

/** An event whose payload is already JSON text (e.g. read as `jsonb::text`), for {@link EventBus.publishEncoded}. */
export interface EncodedEvent {
  readonly domain: string;
  readonly event: string;
  /** Optional last subject token (`stratum.<domain>.<event>.<key>`), e.g. the resource's UUID. */
  readonly key?: string;
  /** The event's data as JSON text: sent as it is, not parsed again. */
  readonly json: string;
  /** Stable event id for dedup: required, since a failed batch is sent again. */
  readonly id: string;
  /** The request the event belongs to; default the current work's. */
  readonly requestId?: string;
}

/** The NATS header carrying the id of the request an event belongs to. */
export const REQUEST_ID_HEADER = "X-Request-Id";

export interface EventStreamOptions {
  /** How long events are kept for late or restarted subscribers. Default 7 days. */
  maxAgeMs?: number;
}

const EVENTS = "STRATUM_EVENTS";
/** Attempts of a failing durable handler before its event is handed back for later redelivery. */
const IN_PLACE_ATTEMPTS = 3;
const ROOT = "stratum";

/**
 * Domain events (`stratum.<domain>.<event>`, e.g. `stratum.compute.vm_state_changed`) go over
 * JetStream rather than core NATS so that a subscriber that was down (a restarting replica, the
 * CLI's watch) can catch up, and so that publishing is confirmed by the server.
 */
export class EventBus {
  #batches: AckedBatchPublisher | undefined;

  private constructor(
    private readonly bus: Bus,
    readonly stream: string,
  ) {}

  static async open(bus: Bus, options: EventStreamOptions = {}): Promise<EventBus> {
    const stream = streamName(bus.prefix, EVENTS);
    await ensureStream(bus, {
      name: stream,
      subjects: [subject(bus.prefix, ROOT, ">")],
      max_age: nanos(options.maxAgeMs ?? 7 * 24 * 3600_000),
      duplicate_window: nanos(120_000),
    });
    return new EventBus(bus, stream);
  }

  /**
   * Publishes once the server has stored the event. `id` makes retries safe: the same id within
   * the dedup window (2 min) is stored once.
   */
  async publish<T>(domain: string, event: string, data: T, options: PublishOptions = {}): Promise<{ seq: number; duplicate: boolean }> {
    const { subject: to, payload, id, h } = this.#message(domain, event, data, options);
    const ack = await this.bus.js.publish(to, payload, { msgID: id, headers: h });
    return { seq: ack.seq, duplicate: ack.duplicate };
  }

  /**
   * Publishes `events` in order and resolves once the server has stored every one, or rejects if
   * any is refused or unacknowledged (then some may be stored: send the same ids again, and the
   * dedup window drops those). The payloads are JSON text already, sent as they are: a relay
   * reading its outbox as `payload::text` pays neither a parse nor a stringify per event. The
   * acks are pipelined — one reply subscription per bus, one timer per batch — rather than one
   * request per event, which is what relaying an outbox cost most (see AckedBatchPublisher).
   */
  async publishEncoded(events: readonly EncodedEvent[]): Promise<{ seq: number; duplicate: boolean }[]> {
    const messages = events.map((e) => {
      if (typeof e.json !== "string" || e.json === "") throw new TypeError(`event ${e.domain}.${e.event}: json must be the data as JSON text, got ${JSON.stringify(e.json)}`);
      checkHeaderValue(`event ${e.domain}.${e.event}: id`, e.id);
      const { subject: to, h } = this.#envelope(e.domain, e.event, { id: e.id, ...(e.requestId !== undefined ? { requestId: e.requestId } : {}), ...(e.key !== undefined ? { key: e.key } : {}) });
      return { subject: to, payload: e.json, headers: h };
    });
    this.#batches ??= new AckedBatchPublisher(this.bus.nc);
    const acks = await this.#batches.publish(messages);
    return acks.map((a) => ({ seq: a.seq, duplicate: a.duplicate }));
  }

  /**
   * Publishes without waiting for the server's acknowledgement: the stream still stores the event
   * (and drops a duplicate id), but the caller learns nothing if NATS loses it. For events sent
   * after the change they report is committed in Postgres — the source of truth — where a lost
   * event costs a consumer a re-read and waiting for each acknowledgement costs every operation a
   * round trip. Messages published while NATS reconnects are buffered by the client.
   */
  publishUnconfirmed<T>(domain: string, event: string, data: T, options: PublishOptions = {}): void {
    const { subject: to, payload, h } = this.#message(domain, event, data, options);
    this.bus.nc.publish(to, payload, { headers: h });
  }

  #message<T>(domain: string, event: string, data: T, options: PublishOptions) {
    const { subject: to, id, h } = this.#envelope(domain, event, options);
    if (data === undefined) throw new TypeError(`event ${domain}.${event}: data is required (an object, even empty)`);
    return { subject: to, payload: JSON.stringify(data), id, h };
  }

  /** The subject and headers of an event: what every publish path sends the same way. */
  #envelope(domain: string, event: string, options: PublishOptions & { key?: string }) {
    assertToken("domain", domain);
    assertToken("event", event);
    if (options.key !== undefined) assertToken("key", options.key);
    const requestId = options.requestId ?? currentWork()?.requestId;
    if (options.requestId !== undefined) checkHeaderValue(`event ${domain}.${event}: requestId`, options.requestId);
    const id = options.id ?? crypto.randomUUID();
    const h = headers();
    h.set("Stratum-Event-Time", new Date().toISOString());
    h.set("Nats-Msg-Id", id);
    // A scope's id that a header cannot carry is left out rather than failing the publish: the
    // event matters more than the trace.
    if (requestId !== undefined && requestId !== "" && isHeaderSafe(requestId)) h.set(REQUEST_ID_HEADER, requestId);
    return { subject: subject(this.bus.prefix, ROOT, domain, event, ...(options.key !== undefined ? [options.key] : [])), id, h };
  }

  /**
   * Subscribes to events matching `filter` (`compute.>`, `compute.vm_state_changed`).
   * With `durable`, delivery is at least once and resumes where that durable left off, even
   * across restarts: an event is acknowledged only after the handler resolves. Handlers run one
   * at a time in stream order; a failing one is retried in place (3 attempts, `retryDelayMs`
   * apart), then handed back for redelivery after later events. An event that is not JSON is
   * dropped. Without `durable`, the subscription sees events from now on (or all, with `from`).
   */
  async subscribe<T>(
    filter: string,
    handler: (event: DomainEvent<T>) => void | Promise<void>,
    options: { durable?: string; from?: "new" | "all"; retryDelayMs?: number } = {},
  ): Promise<{ stop(): Promise<void> }> {
    const filterSubject = subject(this.bus.prefix, ROOT, filter);
    const deliver = options.from === "all" ? DeliverPolicy.All : DeliverPolicy.New;
    let consumerName: string;
    if (options.durable) {
      assertToken("durable", options.durable);
      consumerName = options.durable;
      await this.bus.jsm.consumers.add(this.stream, {
        durable_name: consumerName,
        filter_subject: filterSubject,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: deliver,
        ack_wait: nanos(30_000),
      });
    } else {
      const info = await this.bus.jsm.consumers.add(this.stream, {
        filter_subject: filterSubject,
        ack_policy: AckPolicy.None,
        deliver_policy: deliver,
        inactive_threshold: nanos(60_000),
      });
      consumerName = info.name;
    }
    const consumer = await this.bus.js.consumers.get(this.stream, consumerName);
    const prefixLength = this.bus.prefix ? this.bus.prefix.length + 1 : 0;
    const retryDelayMs = options.retryDelayMs ?? 1_000;
    const durable = Boolean(options.durable);
    // Handlers run one at a time, in stream order: a consumer applying state changes must never
    // see a later event before an earlier one (a failing one is retried in place first).
    let previous: Promise<unknown> = Promise.resolve();
    const handle = async (msg: JsMsg): Promise<void> => {
      let event: DomainEvent<T>;
      try {
        event = decode<T>(msg, prefixLength);
      } catch {
        // Not an event of ours (not JSON): it can never be handled, so it must not block the rest.
        if (durable) msg.term("undecodable event");
        return;
      }
      for (let attempt = 1; ; attempt++) {
        try {
          const requestId = event.requestId;
          await (requestId === undefined ? handler(event) : runWithWork({ requestId }, () => handler(event)));
          if (durable) msg.ack();
          return;
        } catch {
          if (!durable) return;
          // Retried in place, keeping the order; after that it comes back later (redelivery) so
          // that one poisonous event cannot stop the subscription for good.
          if (attempt >= IN_PLACE_ATTEMPTS) return msg.nak(retryDelayMs);
          msg.working();
          await new Promise((r) => setTimeout(r, retryDelayMs));
        }
      }
    };
    const messages = await consumer.consume({
      callback: (msg: JsMsg) => {
        previous = previous.then(() => handle(msg));
      },
    });
    return {
      async stop() {
        await messages.close();
        if (!durable) await consumer.delete().catch(() => {});
      },
    };
  }
}

function decode<T>(msg: JsMsg, prefixLength: number): DomainEvent<T> {
  const fullSubject = msg.subject.slice(prefixLength);
  const [, domain = "", event = ""] = fullSubject.split(".");
  const time = msg.headers?.get("Stratum-Event-Time");
  const requestId = msg.headers?.get(REQUEST_ID_HEADER);
  return {
    subject: fullSubject,
    domain,
    event,
    data: msg.json<T>(),
    id: msg.headers?.get("Nats-Msg-Id") ?? "",
    time: time ? new Date(time) : msg.time,
    seq: msg.seq,
    ...(requestId ? { requestId } : {}),
  };
}

/** Header values are one line of printable ASCII: NATS would otherwise corrupt the message. */
function isHeaderSafe(value: string): boolean {
  return /^[\x20-\x7e]+$/.test(value);
}

function checkHeaderValue(what: string, value: unknown): void {
  if (typeof value !== "string" || value === "" || !isHeaderSafe(value)) {
    throw new TypeError(`${what} must be a non-empty string of printable ASCII, got ${JSON.stringify(value)}`);
  }
}
