import { afterAll, beforeAll, expect, it } from "vitest";
import { connectBus, EventBus, type Bus, type DomainEvent } from "@stratum/bus";
import { createLogger } from "@stratum/core";
import { connect, type DbHandle } from "@stratum/db";
import { startNats, testDatabase, uniquePrefix, type NatsServer } from "@stratum/testing";
import { OutboxRelay } from "./outbox-relay";

/**
 * The relay against a nats-server of this file's own, so the test can take NATS away while
 * events wait in the outbox, and a real Postgres.
 */
let nats: NatsServer;
let db: DbHandle;
let bus: Bus;
let observer: Bus;
const lines: string[] = [];
const log = createLogger({}, { sink: (line: string) => void lines.push(line) });
beforeAll(async () => {
  nats = await startNats();
  db = await connect({ url: await testDatabase("outbox"), schema: "relaytest" });
  await db.sql`CREATE TABLE relaytest.outbox (id bigserial PRIMARY KEY, domain text NOT NULL, event text NOT NULL, key text, payload jsonb NOT NULL, request_id text, created_at timestamptz NOT NULL DEFAULT now())`;
  const prefix = uniquePrefix("ob");
  bus = await connectBus({ servers: nats.url, prefix, name: "relay" });
  observer = await connectBus({ servers: nats.url, prefix, name: "observer" });
}, 60_000);
afterAll(async () => {
  await observer?.close();
  await bus?.close();
  await db?.close();
  await nats?.stop();
});

async function outboxCount(): Promise<number> {
  return Number((await db.sql`SELECT count(*)::int AS n FROM relaytest.outbox`)[0]!.n);
}

it("events written while NATS is away are published once it is back, once each, in order, then removed", async () => {
  const events = await EventBus.open(bus);
  const seen: DomainEvent<{ n: number }>[] = [];
  const sub = await (await EventBus.open(observer)).subscribe<{ n: number }>("test.>", (e) => void seen.push(e), { from: "all" });
  const relay = new OutboxRelay({ sql: db.sql, schema: "relaytest", events, log, intervalMs: 100 });
  await relay.start();

  process.kill(nats.pid, "SIGKILL");
  for (let n = 1; n <= 5; n++) await db.sql`INSERT INTO relaytest.outbox (domain, event, payload, request_id) VALUES ('test', 'happened', ${JSON.stringify({ n })}::jsonb, ${`req-${n}`})`;
  relay.kick();
  // The round fails (nothing acknowledges the publishes) and the rows stay.
  while (!lines.some((l) => l.includes("outbox relay round failed"))) await new Promise((r) => setTimeout(r, 20));
  expect(await outboxCount()).toBe(5);

  await nats.restart();
  while (seen.length < 5) await new Promise((r) => setTimeout(r, 20));
  await relay.drain();
  relay.kick(); // a round after everything was published sends nothing again
  await relay.drain();
  await new Promise((r) => setTimeout(r, 300)); // a duplicate would arrive in this window
  expect(seen.map((e) => e.data.n)).toEqual([1, 2, 3, 4, 5]);
  expect(seen.map((e) => e.requestId)).toEqual(["req-1", "req-2", "req-3", "req-4", "req-5"]);
  expect(await outboxCount()).toBe(0);
  await relay.stop();
  await sub.stop();
}, 60_000);

it("two relays of one service never publish the same batch twice, and keep the order", async () => {
  const events = await EventBus.open(bus);
  const seen: number[] = [];
  const sub = await (await EventBus.open(observer)).subscribe<{ n: number }>("test.ordered", (e) => void seen.push(e.data.n), { from: "new" });
  const relays = [0, 1].map(() => new OutboxRelay({ sql: db.sql, schema: "relaytest", events, log, intervalMs: 50, batch: 7 }));
  for (let n = 1; n <= 100; n++) await db.sql`INSERT INTO relaytest.outbox (domain, event, payload) VALUES ('test', 'ordered', ${JSON.stringify({ n })}::jsonb)`;
  await Promise.all(relays.map((r) => r.start()));
  while (seen.length < 100) await new Promise((r) => setTimeout(r, 20));
  await Promise.all(relays.map((r) => r.drain()));
  await new Promise((r) => setTimeout(r, 200));
  expect(seen).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
  await Promise.all(relays.map((r) => r.stop()));
  await sub.stop();
}, 60_000);

it("a batch JetStream refuses (no stream captures its events) stays in the outbox and goes out once the stream is back", async () => {
  const prefix = uniquePrefix("obr");
  const own = await connectBus({ servers: nats.url, prefix, name: "relay-refused" });
  const events = await EventBus.open(own);
  await own.jsm.streams.delete(events.stream);
  const relay = new OutboxRelay({ sql: db.sql, schema: "relaytest", events, log, intervalMs: 60_000 });
  const failuresBefore = lines.filter((l) => l.includes("outbox relay round failed")).length;
  for (let n = 1; n <= 3; n++) await db.sql`INSERT INTO relaytest.outbox (domain, event, payload) VALUES ('test', 'refused', ${JSON.stringify({ n, nested: { s: "ü\"x" } })}::jsonb)`;
  await relay.start();
  await relay.drain();
  const failures = lines.filter((l) => l.includes("outbox relay round failed")).slice(failuresBefore);
  expect(failures.length).toBeGreaterThan(0);
  expect(failures[0]).toContain("no stream captures its subject");
  expect(await outboxCount()).toBe(3);

  const again = await EventBus.open(own); // the stream again
  const seen: DomainEvent<{ n: number }>[] = [];
  const sub = await again.subscribe<{ n: number }>("test.refused", (e) => void seen.push(e), { from: "all" });
  await relay.drain();
  while (seen.length < 3) await new Promise((r) => setTimeout(r, 20));
  expect(seen.map((e) => e.data)).toEqual([1, 2, 3].map((n) => ({ n, nested: { s: "ü\"x" } })));
  const rowIds = seen.map((e) => Number(e.id.slice("relaytest-outbox-".length)));
  expect(rowIds).toEqual([...rowIds].sort((a, b) => a - b));
  expect(seen.every((e) => /^relaytest-outbox-\d+$/.test(e.id))).toBe(true);
  expect(await outboxCount()).toBe(0);
  await relay.stop();
  await sub.stop();
  await own.close();
}, 60_000);

it("a row with a key goes to its resource's own subject, `stratum.<domain>.<event>.<key>`", async () => {
  const events = await EventBus.open(bus);
  const keyed: DomainEvent<{ n: number }>[] = [];
  const plain: DomainEvent<{ n: number }>[] = [];
  const observed = await EventBus.open(observer);
  const one = await observed.subscribe<{ n: number }>("keyed.changed.res-1", (e) => void keyed.push(e), { from: "new" });
  const bare = await observed.subscribe<{ n: number }>("keyed.changed", (e) => void plain.push(e), { from: "new" });
  const relay = new OutboxRelay({ sql: db.sql, schema: "relaytest", events, log, intervalMs: 100 });
  await relay.start();
  await db.sql`INSERT INTO relaytest.outbox (domain, event, key, payload) VALUES ('keyed', 'changed', 'res-1', '{"n":1}'::jsonb), ('keyed', 'changed', 'res-2', '{"n":2}'::jsonb), ('keyed', 'changed', NULL, '{"n":3}'::jsonb)`;
  relay.kick();
  while (keyed.length < 1 || plain.length < 1) await new Promise((r) => setTimeout(r, 20));
  await relay.drain();
  expect(keyed.map((e) => [e.subject, e.data.n])).toEqual([["stratum.keyed.changed.res-1", 1]]);
  expect(plain.map((e) => e.data.n)).toEqual([3]);
  await relay.stop();
  await one.stop();
  await bare.stop();
});
