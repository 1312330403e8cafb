import { randomUUID } from "node:crypto";
import { headers } from "@nats-io/transport-node";
import { afterEach, describe, expect, inject, it } from "vitest";
import { Code, StratumError } from "@stratum/core";
import { AckedBatchPublisher } from "./acked-batch";
import { connectBus, type Bus } from "./connect";
import { EventBus } from "./events";

const natsUrl = inject("natsUrl");
const opened: Array<{ close(): unknown }> = [];

async function open(): Promise<Bus> {
  const bus = await connectBus({ servers: natsUrl, prefix: `ab${randomUUID().slice(0, 8)}`, name: "acked-batch" });
  opened.push(bus);
  return bus;
}

afterEach(async () => {
  for (const o of opened.splice(0).reverse()) await o.close();
});

/** Reads every message the stream holds, in stream order. */
async function stored(bus: Bus, stream: string): Promise<{ subject: string; data: unknown; id: string | undefined }[]> {
  const { state } = await bus.jsm.streams.info(stream);
  const out = [];
  for (let seq = state.first_seq; seq <= state.last_seq && state.messages > 0; seq++) {
    const m = await bus.jsm.streams.getMessage(stream, { seq });
    if (m) out.push({ subject: m.subject, data: m.json(), id: m.header.get("Nats-Msg-Id") });
  }
  return out;
}

describe("EventBus.publishEncoded", () => {
  it("stores the batch in order with its ids and request ids, sending the JSON text as it is", async () => {
    const bus = await open();
    const events = await EventBus.open(bus);
    const acks = await events.publishEncoded(
      Array.from({ length: 50 }, (_, i) => ({ domain: "test", event: "counted", json: `{"n": ${i}}`, id: `ev-${i}`, ...(i === 3 ? { requestId: "req-3" } : {}) })),
    );
    expect(acks.map((a) => a.seq)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    expect(acks.every((a) => !a.duplicate)).toBe(true);
    const got = await stored(bus, events.stream);
    expect(got.map((m) => m.data)).toEqual(Array.from({ length: 50 }, (_, i) => ({ n: i })));
    expect(got.map((m) => m.id)).toEqual(Array.from({ length: 50 }, (_, i) => `ev-${i}`));
    const third = await bus.jsm.streams.getMessage(events.stream, { seq: 4 });
    expect(third?.header.get("X-Request-Id")).toBe("req-3");
  });

  it("a batch sent again after a failure stores nothing twice: the ids the server kept are duplicates", async () => {
    const bus = await open();
    const events = await EventBus.open(bus);
    const batch = [1, 2, 3].map((n) => ({ domain: "test", event: "again", json: `{"n":${n}}`, id: `again-${n}` }));
    await events.publishEncoded(batch.slice(0, 2));
    const acks = await events.publishEncoded(batch);
    expect(acks.map((a) => a.duplicate)).toEqual([true, true, false]);
    expect((await stored(bus, events.stream)).map((m) => m.data)).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }]);
  });

  it("refuses bad input before sending anything, naming what is wrong", async () => {
    const bus = await open();
    const events = await EventBus.open(bus);
    await expect(events.publishEncoded([{ domain: "test", event: "x", json: "", id: "a" }])).rejects.toThrow(/json must be the data as JSON text/);
    await expect(events.publishEncoded([{ domain: "test", event: "x", json: "{}", id: "" }])).rejects.toThrow(/id must be a non-empty string/);
    await expect(events.publishEncoded([{ domain: "te.st", event: "x", json: "{}", id: "a" }])).rejects.toThrow(/domain/);
    expect((await bus.jsm.streams.info(events.stream)).state.messages).toBe(0);
  });
});

describe("AckedBatchPublisher", () => {
  const message = (subject: string, id: string) => {
    const h = headers();
    h.set("Nats-Msg-Id", id);
    return { subject, payload: "{}", headers: h };
  };

  it("fails the whole batch when one message's subject is captured by no stream, naming it", async () => {
    const bus = await open();
    const events = await EventBus.open(bus);
    const captured = `${bus.prefix}.stratum.test.ok`;
    const uncaptured = `${bus.prefix}.nowhere.${randomUUID().slice(0, 8)}`;
    const publisher = new AckedBatchPublisher(bus.nc);
    const err = await publisher.publish([message(captured, "m1"), message(uncaptured, "m2"), message(captured, "m3")]).catch((e) => e);
    expect(err).toBeInstanceOf(StratumError);
    expect(err.reason).toBe("PUBLISH_REFUSED");
    expect(err.message).toContain(uncaptured);
    expect(err.message).toContain("no stream captures its subject");
    // The messages around it were stored (the caller sends them again; their ids dedup them).
    expect((await stored(bus, events.stream)).map((m) => m.id)).toEqual(["m1", "m3"]);
    publisher.close();
  });

  it("fails with JetStream's error when the stream refuses the message", async () => {
    const bus = await open();
    const stream = `${bus.prefix}_LIMITED`;
    const subj = `${bus.prefix}.limited`;
    // A stream that takes one message and refuses the next (discard new): an error ack, not a timeout.
    await bus.jsm.streams.add({ name: stream, subjects: [subj], max_msgs: 1, discard: "new" as never });
    const publisher = new AckedBatchPublisher(bus.nc);
    const err = await publisher.publish([message(subj, "l1"), message(subj, "l2")]).catch((e) => e);
    expect(err).toBeInstanceOf(StratumError);
    expect(err.reason).toBe("PUBLISH_REFUSED");
    expect(err.message).toMatch(/message 2 of 2.*maximum messages exceeded/);
    publisher.close();
  });

  it("fails with PUBLISH_UNACKNOWLEDGED when nothing acknowledges within the timeout", async () => {
    const bus = await open();
    const subj = `${bus.prefix}.silent`;
    // A plain subscriber, not a stream: the message is delivered (no 503) but never acknowledged.
    const sub = bus.nc.subscribe(subj, { callback: () => {} });
    const publisher = new AckedBatchPublisher(bus.nc, { timeoutMs: 200 });
    const err = await publisher.publish([message(subj, "s1")]).catch((e) => e);
    expect(err).toBeInstanceOf(StratumError);
    expect(err.code).toBe(Code.UNAVAILABLE);
    expect(err.reason).toBe("PUBLISH_UNACKNOWLEDGED");
    expect(err.message).toContain("acknowledged 0 of 1");
    sub.unsubscribe();
    publisher.close();
  });

  it("fails at once with NATS_UNAVAILABLE on a closed connection", async () => {
    const bus = await open();
    const publisher = new AckedBatchPublisher(bus.nc);
    publisher.publish([]); // an empty batch needs no subscription
    await bus.nc.close();
    const err = await publisher.publish([message(`${bus.prefix}.x`, "c1")]).catch((e) => e);
    expect(err).toBeInstanceOf(StratumError);
    expect(err.reason).toBe("NATS_UNAVAILABLE");
  });
});
