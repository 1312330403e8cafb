import { createInbox, type Msg, type MsgHdrs, type NatsConnection, type Subscription } from "@nats-io/transport-node";
import { Code, StratumError } from "@stratum/core";

/** One message of an {@link AckedBatchPublisher} batch: already encoded, with its headers. */
export interface BatchMessage {
  readonly subject: string;
  readonly payload: string;
  /** Must carry `Nats-Msg-Id`, so a batch re-sent after a failure is stored once. */
  readonly headers: MsgHdrs;
}

/** What JetStream answered for one stored message. */
export interface BatchAck {
  readonly stream: string;
  readonly seq: number;
  readonly duplicate: boolean;
}

/** One batch waiting for its acks. */
interface Batch {
  readonly messages: readonly BatchMessage[];
  readonly acks: (BatchAck | undefined)[];
  remaining: number;
  settle(error?: unknown): void;
}

interface Pending {
  readonly batch: Batch;
  /** The message's place in its batch. */
  readonly index: number;
}

/** Default of `timeoutMs`: the JetStream client's own publish timeout. */
export const BATCH_ACK_TIMEOUT_MS = 5_000;

/**
 * Acknowledged JetStream publishing, pipelined (nats.go's PublishAsync): every message of a batch
 * is sent at once with its own reply subject under one inbox subscription, and the batch resolves
 * when the server has acknowledged every one. `js.publish` per message costs a request (its own
 * inbox entry, timer, promise and error objects) each, which was the largest part of relaying an
 * outbox; here a batch costs one timer and one promise. Messages go out in order on the one
 * connection, so the stream stores them in that order. The batch fails, as a whole, if any
 * message is refused (an error ack, no stream capturing the subject) or unacknowledged within the
 * timeout (NATS away): the caller keeps what it sent and sends it again, and `Nats-Msg-Id` makes
 * the messages that were stored the first time duplicates.
 */
export class AckedBatchPublisher {
  readonly #nc: NatsConnection;
  readonly #timeoutMs: number;
  #inbox: string | undefined;
  #sub: Subscription | undefined;
  #next = 0;
  /** Reply token → the batch it belongs to and its place in it. */
  readonly #pending = new Map<string, Pending>();

  constructor(nc: NatsConnection, options: { timeoutMs?: number } = {}) {
    this.#nc = nc;
    this.#timeoutMs = options.timeoutMs ?? BATCH_ACK_TIMEOUT_MS;
  }

  /** Publishes `messages` in order; resolves with their acks once every one is stored. */
  publish(messages: readonly BatchMessage[]): Promise<BatchAck[]> {
    if (messages.length === 0) return Promise.resolve([]);
    let inbox: string;
    try {
      inbox = this.#subscribe();
    } catch (e) {
      return Promise.reject(unavailable(e));
    }
    return new Promise<BatchAck[]>((resolve, reject) => {
      const acks: (BatchAck | undefined)[] = new Array(messages.length);
      const tokens: string[] = [];
      let done = false;
      const settle = (error?: unknown) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        for (const t of tokens) this.#pending.delete(t);
        if (error !== undefined) reject(error);
        else resolve(acks as BatchAck[]);
      };
      const timer = setTimeout(() => {
        const missing = batch.remaining;
        let first = 0;
        while (acks[first] !== undefined) first++;
        settle(
          new StratumError(Code.UNAVAILABLE, `JetStream acknowledged ${messages.length - missing} of ${messages.length} messages within ${this.#timeoutMs} ms (first unacknowledged: ${messages[first]?.subject ?? "?"})`, {
            reason: "PUBLISH_UNACKNOWLEDGED",
          }),
        );
      }, this.#timeoutMs);
      const batch: Batch = { messages, acks, settle, remaining: messages.length };
      try {
        for (let i = 0; i < messages.length; i++) {
          const m = messages[i]!;
          const token = String(this.#next++);
          tokens.push(token);
          this.#pending.set(token, { batch, index: i });
          this.#nc.publish(m.subject, m.payload, { reply: `${inbox}.${token}`, headers: m.headers });
        }
      } catch (e) {
        // A closed or draining connection refuses the publish: nothing more goes out.
        settle(unavailable(e));
      }
    });
  }

  /** Stops listening for acks; batches still waiting fail when their timeout ends. */
  close(): void {
    this.#sub?.unsubscribe();
    this.#sub = undefined;
    this.#inbox = undefined;
  }

  #subscribe(): string {
    if (this.#inbox !== undefined) return this.#inbox;
    const inbox = createInbox();
    this.#sub = this.#nc.subscribe(`${inbox}.*`, { callback: (_err, msg) => this.#onAck(inbox, msg) });
    this.#inbox = inbox;
    return inbox;
  }

  #onAck(inbox: string, msg: Msg): void {
    const token = msg.subject.slice(inbox.length + 1);
    const pending = this.#pending.get(token);
    if (pending === undefined) return; // the ack of a batch that already failed (timed out)
    this.#pending.delete(token);
    const p = pending.batch;
    const subjectOf = () => `${p.messages[pending.index]!.subject} (message ${pending.index + 1} of ${p.messages.length})`;
    if (msg.headers?.hasError) {
      // 503: nothing listens on the subject, i.e. no stream captures it.
      const what = msg.headers.code === 503 ? "no stream captures its subject" : `${msg.headers.code} ${msg.headers.description}`;
      return p.settle(new StratumError(Code.UNAVAILABLE, `JetStream did not store ${subjectOf()}: ${what}`, { reason: "PUBLISH_REFUSED" }));
    }
    let ack: { stream?: string; seq?: number; duplicate?: boolean; error?: { code?: number; err_code?: number; description?: string } };
    try {
      ack = msg.json();
    } catch (e) {
      return p.settle(new StratumError(Code.INTERNAL, `JetStream answered ${subjectOf()} with something that is not JSON`, { reason: "PUBLISH_REFUSED", cause: e }));
    }
    if (ack.error !== undefined || typeof ack.stream !== "string" || ack.stream === "" || typeof ack.seq !== "number") {
      const e = ack.error;
      const what = e ? `${e.description ?? "error"} (code ${e.code}, err_code ${e.err_code})` : `invalid ack ${JSON.stringify(ack)}`;
      return p.settle(new StratumError(Code.UNAVAILABLE, `JetStream did not store ${subjectOf()}: ${what}`, { reason: "PUBLISH_REFUSED" }));
    }
    p.acks[pending.index] = { stream: ack.stream, seq: ack.seq, duplicate: ack.duplicate === true };
    if (--p.remaining === 0) p.settle();
  }
}

/** A closed or draining connection's refusal, as the error a caller can act on. */
function unavailable(e: unknown): StratumError {
  return new StratumError(Code.UNAVAILABLE, `cannot publish to JetStream: ${e instanceof Error ? e.message : String(e)}`, { reason: "NATS_UNAVAILABLE", cause: e });
}
