import { startNats, type NatsServer } from "@stratum/testing";
import { afterAll, beforeAll, expect, it } from "vitest";
import { connectBus, type Bus } from "./connect";
import { notifyWatchers, watchResource, watchSubject } from "./watch";

// Its own nats-server: one test takes it away.
let nats: NatsServer;
let bus: Bus;
beforeAll(async () => {
  nats = await startNats();
  bus = await connectBus({ servers: nats.url, prefix: "watch", name: "watch" });
});
afterAll(async () => {
  await bus?.close();
  await nats?.stop();
});

interface Thing {
  uuid: string;
  rev: number;
  done: boolean;
}

it("starts with the resource as read, then each newer snapshot sent to its subject, until done", async () => {
  let stored: Thing = { uuid: "t1", rev: 1, done: false };
  const to = watchSubject(bus, "svc", "thing", "t1");
  const seen: number[] = [];
  const watching = (async () => {
    for await (const t of watchResource<Thing>({ nc: bus.nc, subject: to, read: async () => stored, fromEvent: (j) => j as unknown as Thing, revision: (t) => t.rev, done: (t) => t.done, kind: "thing", uuid: "t1", signal: new AbortController().signal })) {
      seen.push(t.rev);
      if (t.rev === 1) {
        // An old snapshot (already seen) and two new ones, out of order.
        notifyWatchers(bus, to, { uuid: "t1", rev: 1, done: false });
        stored = { uuid: "t1", rev: 3, done: true };
        notifyWatchers(bus, to, { uuid: "t1", rev: 2, done: false });
        notifyWatchers(bus, to, stored);
      }
    }
  })();
  await watching;
  expect(seen).toEqual([1, 2, 3]);
});

it("with NATS away, the watch still starts from the database and follows it by its resync", async () => {
  let stored: Thing = { uuid: "t2", rev: 1, done: false };
  process.kill(nats.pid, "SIGKILL");
  const seen: number[] = [];
  const watching = (async () => {
    for await (const t of watchResource<Thing>({ nc: bus.nc, subject: watchSubject(bus, "svc", "thing", "t2"), read: async () => stored, revision: (t) => t.rev, done: (t) => t.done, kind: "thing", uuid: "t2", signal: new AbortController().signal, resyncMs: 50 })) {
      seen.push(t.rev);
      if (t.rev === 1) stored = { uuid: "t2", rev: 2, done: true }; // committed while no event can be sent
    }
  })();
  await watching;
  expect(seen).toEqual([1, 2]);
  await nats.restart();
});
