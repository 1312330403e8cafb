import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, expect, it } from "vitest";
import { migrate, TransitionBatcher, type DbHandle } from "../src/index";
import { closeAll, MIGRATIONS, open, tables, type FixtureTables } from "./helpers";

const { hosts } = tables;
let h: DbHandle<FixtureTables>;
let batcher: TransitionBatcher<typeof hosts, "Connected" | "Disconnected" | "Maintenance">;
/** The names a guarded batcher may still write: stands in for "this replica still owns it". */
const writable = new Set<string>();
let guarded: TransitionBatcher<typeof hosts, "Connected" | "Disconnected" | "Maintenance">;

beforeAll(async () => {
  h = await open();
  await migrate(h, { migrationsFolder: MIGRATIONS });
  batcher = new TransitionBatcher({ sql: h.sql, table: hosts, key: hosts.uuid, state: hosts.state });
  guarded = new TransitionBatcher({ sql: h.sql, table: hosts, key: hosts.uuid, state: hosts.state, guard: (sql) => sql`t.name = ANY(${[...writable]}::text[])` });
});
afterAll(closeAll);

async function newHost(state: "Connected" | "Disconnected" = "Disconnected"): Promise<string> {
  const uuid = randomUUID();
  await h.db.insert(hosts).values({ uuid, name: `host-${uuid}`, cpuCapacity: 8, state });
  return uuid;
}

it("concurrent transitions each get their own outcome: the row when its condition held, nothing otherwise", async () => {
  const uuids = await Promise.all(Array.from({ length: 50 }, () => newHost()));
  const results = await Promise.all(uuids.map((uuid, i) => (i % 2 === 0 ? batcher.transition(uuid, "Disconnected", "Connected") : batcher.transition(uuid, "Connected", "Maintenance"))));
  results.forEach((row, i) => {
    if (i % 2 === 0) expect(row).toMatchObject({ uuid: uuids[i], state: "Connected", cpuCapacity: 8 });
    else expect(row).toBeUndefined(); // it was Disconnected, not Connected: nothing changed
  });
  const states = await h.db.select({ uuid: hosts.uuid, state: hosts.state }).from(hosts);
  const byUuid = new Map(states.map((s) => [s.uuid, s.state]));
  uuids.forEach((uuid, i) => expect(byUuid.get(uuid)).toBe(i % 2 === 0 ? "Connected" : "Disconnected"));
});

it("two transitions of one row in the same turn apply one after the other: the second is not sent before the first returns", async () => {
  const uuid = await newHost();
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  let locked!: () => void;
  const rowLocked = new Promise<void>((r) => (locked = r));
  // Hold the row so the first statement blocks where we can see it.
  const holder = h.sql.begin(async (tx) => {
    await tx`SELECT 1 FROM fixture.hosts WHERE uuid = ${uuid} FOR UPDATE`;
    locked();
    await released;
  });
  await rowLocked;
  const both = Promise.all([batcher.transition(uuid, "Disconnected", "Connected"), batcher.transition(uuid, "Connected", "Maintenance")]);
  const waiting = async () =>
    (await h.sql`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%UPDATE "fixture"."hosts" AS t%'`)[0]!.n as number;
  while ((await waiting()) < 1) await new Promise((r) => setTimeout(r, 5));
  // Give a wrongly scheduled second statement every chance to go out.
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  expect(await waiting()).toBe(1);
  release();
  await holder;
  const [first, second] = await both;
  expect(first?.state).toBe("Connected");
  expect(second?.state).toBe("Maintenance");
});

it("a write guard is a condition of every write: a row it excludes is not changed, and the caller is told", async () => {
  const [mine, other] = [await newHost(), await newHost()];
  writable.clear();
  writable.add(`host-${mine}`);
  const [a, b] = await Promise.all([guarded.transition(mine, "Disconnected", "Connected"), guarded.transition(other, "Disconnected", "Connected")]);
  expect(a).toMatchObject({ uuid: mine, state: "Connected" });
  expect(b).toBeUndefined();
  const [row] = await h.sql`SELECT state FROM fixture.hosts WHERE uuid = ${other}`;
  expect(row!.state).toBe("Disconnected");
});
