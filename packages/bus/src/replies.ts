import { AckPolicy, DeliverPolicy, type JsMsg } from "@nats-io/jetstream";
import { Code, StratumError, type FieldViolation } from "@stratum/core";
import type { Bus } from "./connect";
import { assertToken, streamName, subject } from "./names";
import { ensureStream, nanos } from "./streams";

/** The outcome of a long operation, as carried by a reply. */
export type ReplyResult<T = unknown> = { ok: true; value: T } | { ok: false; error: StratumError };

/** A reply nobody was waiting for in this process (it was sent while the replica was down). */
export interface UnclaimedReply {
  readonly correlationId: string;
  readonly result: ReplyResult;
}

interface WireReply {
  ok: boolean;
  value?: unknown;
  error?: { code: Code; reason: string; message: string; resources?: Record<string, string>; violations?: FieldViolation[] };
}

interface Waiter {
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

const REPLIES = "STRATUM_REPLIES";

/** Defaults of {@link ReplyInbox.open}; documented because they bound how long a reply may wait. */
export const REPLY_DEFAULTS = {
  /** A reply unclaimed for this long is redelivered to the inbox (and kept in the stream). */
  ackWaitMs: 60_000,
  /** Replies older than this are dropped by the stream: no operation waits a day for its answer. */
  maxAgeMs: 24 * 3600_000,
  /** Window in which a re-published reply (same correlation id) is stored once. */
  duplicateWindowMs: 10 * 60_000,
} as const;

/**
 * A replica's inbox for the results of its long operations. The caller mints the correlation id
 * and calls `wait()` before it starts the operation, so the reply always finds its waiter; a
 * reply that arrives with no waiter (the replica restarted) goes to `onUnclaimed`, or is held. The worker publishes the result to
 * the inbox's `address` with the correlation id as `Nats-Msg-Id`, so a retried publish is stored
 * once; the inbox reads through a durable consumer named after the replica, so a reply published
 * while the replica was down (or restarting) is delivered when it comes back. A reply is
 * acknowledged only once a waiter or the unclaimed-reply handler has taken it.
 */
export class ReplyInbox {
  readonly #waiters = new Map<string, Waiter>();
  /** Replies that arrived before anyone waited for them; held unacknowledged until claimed. */
  readonly #unclaimed = new Map<string, JsMsg>();
  #onUnclaimed: ((reply: UnclaimedReply) => Promise<void> | void) | undefined;
  #stop: (() => Promise<void>) | undefined;

  private constructor(
    private readonly bus: Bus,
    readonly stream: string,
    /** Subject to give a worker so it can answer this replica. */
    readonly address: string,
  ) {}

  static async open(bus: Bus, owner: { service: string; replicaId: string }, options: { ackWaitMs?: number } = {}): Promise<ReplyInbox> {
    assertToken("service", owner.service);
    assertToken("replicaId", owner.replicaId);
    const stream = streamName(bus.prefix, REPLIES);
    await ensureStream(bus, {
      name: stream,
      subjects: [subject(bus.prefix, "reply", ">")],
      max_age: nanos(REPLY_DEFAULTS.maxAgeMs),
      duplicate_window: nanos(REPLY_DEFAULTS.duplicateWindowMs),
    });
    const address = subject(bus.prefix, "reply", owner.service, owner.replicaId);
    const durable = `reply-${owner.service}-${owner.replicaId}`;
    await bus.jsm.consumers.add(stream, {
      durable_name: durable,
      filter_subject: address,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ack_wait: nanos(options.ackWaitMs ?? REPLY_DEFAULTS.ackWaitMs),
      max_ack_pending: 100_000,
    });
    const inbox = new ReplyInbox(bus, stream, address);
    const consumer = await bus.js.consumers.get(stream, durable);
    const messages = await consumer.consume({ callback: (msg) => inbox.#deliver(msg) });
    inbox.#stop = async () => void (await messages.close());
    return inbox;
  }

  /**
   * Resolves with the value of the reply for `correlationId`, or rejects with its error, or with
   * DEADLINE_EXCEEDED `REPLY_TIMEOUT` after `timeoutMs`. A reply that arrives after the timeout
   * is not lost: it goes to the unclaimed-reply handler.
   */
  wait<T>(correlationId: string, options: { timeoutMs: number; signal?: AbortSignal }): Promise<T> {
    if (!(options.timeoutMs > 0)) return Promise.reject(new RangeError(`timeoutMs must be a number > 0, got ${options.timeoutMs}`));
    if (this.#waiters.has(correlationId)) {
      return Promise.reject(new StratumError(Code.ALREADY_EXISTS, `a waiter for reply ${correlationId} already exists`, { reason: "REPLY_ALREADY_AWAITED", resources: { correlationId } }));
    }
    const held = this.#unclaimed.get(correlationId);
    if (held) {
      this.#unclaimed.delete(correlationId);
      held.ack();
      return settle<T>(decode(held));
    }
    return new Promise<T>((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        options.signal?.removeEventListener("abort", onAbort);
        this.#waiters.delete(correlationId);
      };
      const timer = setTimeout(() => {
        done();
        reject(new StratumError(Code.DEADLINE_EXCEEDED, `no reply for ${correlationId} within ${options.timeoutMs} ms`, { reason: "REPLY_TIMEOUT", resources: { correlationId } }));
      }, options.timeoutMs);
      const onAbort = () => {
        done();
        reject(StratumError.from(options.signal?.reason ?? new DOMException("aborted", "AbortError")));
      };
      if (options.signal?.aborted) return onAbort();
      options.signal?.addEventListener("abort", onAbort, { once: true });
      this.#waiters.set(correlationId, {
        resolve: (v) => (done(), resolve(v as T)),
        reject: (e) => (done(), reject(e)),
      });
    });
  }

  /**
   * Handles replies that arrive with no waiter in this process, e.g. a job result published
   * while this replica restarted. The reply is acknowledged when the handler resolves and
   * redelivered if it throws. Replies held before the handler was set are handed to it now.
   */
  onUnclaimed(handler: (reply: UnclaimedReply) => Promise<void> | void): void {
    this.#onUnclaimed = handler;
    for (const [correlationId, msg] of this.#unclaimed) {
      this.#unclaimed.delete(correlationId);
      this.#deliver(msg);
    }
  }

  #deliver(msg: JsMsg): void {
    const correlationId = msg.headers?.get("Nats-Msg-Id") ?? "";
    const waiter = this.#waiters.get(correlationId);
    let result: ReplyResult;
    try {
      result = decode(msg);
    } catch (e) {
      // A malformed reply can never be processed: drop it instead of redelivering it forever.
      msg.term(`undecodable reply: ${(e as Error).message}`);
      return;
    }
    if (waiter) {
      msg.ack();
      if (result.ok) waiter.resolve(result.value);
      else waiter.reject(result.error);
      return;
    }
    const handler = this.#onUnclaimed;
    if (!handler) {
      this.#unclaimed.set(correlationId, msg); // a redelivery replaces the older copy
      return;
    }
    Promise.resolve()
      .then(() => handler({ correlationId, result }))
      .then(
        () => msg.ack(),
        () => msg.nak(1_000),
      );
  }

  /** Stops consuming. Unacknowledged replies stay in the stream for the next start. */
  async close(): Promise<void> {
    await this.#stop?.();
    for (const waiter of this.#waiters.values()) {
      waiter.reject(new StratumError(Code.UNAVAILABLE, "reply inbox closed", { reason: "REPLY_INBOX_CLOSED" }));
    }
  }
}

/**
 * Publishes the result of a long operation to the inbox at `address`. Safe to retry: the
 * correlation id is the `Nats-Msg-Id`, so JetStream stores the reply once.
 */
export async function publishReply<T>(bus: Bus, address: string, correlationId: string, result: ReplyResult<T>): Promise<{ duplicate: boolean }> {
  if (!correlationId) throw new TypeError("publishReply: correlationId is required");
  const wire: WireReply = result.ok
    ? { ok: true, value: result.value }
    : {
        ok: false,
        error: { code: result.error.code, reason: result.error.reason, message: result.error.message, resources: { ...result.error.resources }, violations: [...result.error.violations] },
      };
  const ack = await bus.js.publish(address, JSON.stringify(wire), { msgID: correlationId });
  return { duplicate: ack.duplicate };
}

function decode(msg: JsMsg): ReplyResult {
  const wire = msg.json<WireReply>();
  if (wire.ok) return { ok: true, value: wire.value };
  const e = wire.error;
  if (!e || typeof e.code !== "number") throw new Error("reply has neither value nor error");
  return { ok: false, error: new StratumError(e.code, e.message, { reason: e.reason, ...(e.resources ? { resources: e.resources } : {}), ...(e.violations ? { violations: e.violations } : {}) }) };
}

function settle<T>(result: ReplyResult): Promise<T> {
  return result.ok ? Promise.resolve(result.value as T) : Promise.reject(result.error);
}
