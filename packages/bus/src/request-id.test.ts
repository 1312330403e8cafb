import { randomUUID } from "node:crypto";
import { afterEach, describe, expect, inject, it } from "vitest";
import { createLogger, currentWork, runWithWork } from "@stratum/core";
import { connectBus, type Bus } from "./connect";
import { EventBus, REQUEST_ID_HEADER, type DomainEvent } from "./events";

const natsUrl = inject("natsUrl");
const opened: Array<{ close(): unknown }> = [];

async function openEvents(): Promise<{ bus: Bus; events: EventBus }> {
  const bus = await connectBus({ servers: natsUrl, prefix: `t${randomUUID().slice(0, 8)}`, name: "request-id-test" });
  opened.push(bus);
  return { bus, events: await EventBus.open(bus) };
}

afterEach(async () => {
  for (const o of opened.splice(0).reverse()) await o.close();
});

/** Subscribes from the start of the stream and resolves with the first `n` events. */
async function collect(events: EventBus, n: number, onEvent: (e: DomainEvent) => void = () => {}): Promise<DomainEvent[]> {
  const got: DomainEvent[] = [];
  let done!: () => void;
  const all = new Promise<void>((r) => (done = r));
  const sub = await events.subscribe("compute.>", (e) => {
    onEvent(e);
    got.push(e);
    if (got.length === n) done();
  }, { from: "all" });
  await all;
  await sub.stop();
  return got;
}

describe("events carry the request id", () => {
  it("publishing inside a work scope sets X-Request-Id; an explicit option wins; none outside a scope", async () => {
    const { bus, events } = await openEvents();
    await runWithWork({ requestId: "req-a" }, () => events.publish("compute", "vm_created", { n: 1 }));
    await runWithWork({ requestId: "req-a" }, () => events.publish("compute", "vm_created", { n: 2 }, { requestId: "req-explicit" }));
    await events.publish("compute", "vm_created", { n: 3 });
    runWithWork({ requestId: "req-unconfirmed" }, () => events.publishUnconfirmed("compute", "vm_created", { n: 4 }));
    await bus.nc.flush();
    const got = await collect(events, 4);
    expect(got.map((e) => [(e.data as { n: number }).n, e.requestId])).toEqual([
      [1, "req-a"],
      [2, "req-explicit"],
      [3, undefined],
      [4, "req-unconfirmed"],
    ]);
    expect(got[2]).not.toHaveProperty("requestId");
    // On the wire it is a plain NATS header, for consumers that are not ours.
    const stored = await bus.jsm.streams.getMessage(events.stream, { seq: got[0]!.seq });
    expect(stored?.header.get(REQUEST_ID_HEADER)).toBe("req-a");
  });

  it("a subscriber's handler runs in a work scope of the event's request, so its log lines name it", async () => {
    const { events } = await openEvents();
    await runWithWork({ requestId: "req-b" }, () => events.publish("compute", "vm_started", { n: 1 }));
    await events.publish("compute", "vm_started", { n: 2 });
    const lines: Record<string, unknown>[] = [];
    const logger = createLogger({}, { sink: (l) => lines.push(JSON.parse(l) as Record<string, unknown>) });
    const scopes: Array<string | undefined> = [];
    await collect(events, 2, (e) => {
      scopes.push(currentWork()?.requestId);
      logger.info("applied", { n: (e.data as { n: number }).n });
    });
    expect(scopes).toEqual(["req-b", undefined]);
    expect(lines.map((l) => l["requestId"])).toEqual(["req-b", undefined]);
  });

  it("refuses an explicit request id a header cannot carry, and publishes nothing", async () => {
    const { bus, events } = await openEvents();
    await expect(events.publish("compute", "vm_created", { n: 1 }, { requestId: "bad\r\nid" })).rejects.toThrow(/requestId must be a non-empty string of printable ASCII/);
    expect(() => events.publishUnconfirmed("compute", "vm_created", { n: 1 }, { requestId: "" })).toThrow(/requestId/);
    await bus.nc.flush();
    expect((await bus.jsm.streams.info(events.stream)).state.messages).toBe(0);
  });
});
