import { createServer } from "node:net";
import postgres from "postgres";
import { connect } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { describe, expect, inject, it } from "vitest";
import { getFreePort, testDatabase, testNatsUrl, uniquePrefix } from "../src/index";

describe("global setup", () => {
  it("provides a nats-server with JetStream and a Postgres for the whole run", async () => {
    const nc = await connect({ servers: inject("natsUrl") });
    try {
      await expect((await jetstreamManager(nc)).getAccountInfo()).resolves.toBeDefined();
    } finally {
      await nc.close();
    }
    const sql = postgres(inject("databaseUrl"), { max: 1 });
    try {
      expect(await sql`select 1 as one`).toEqual([{ one: 1 }]);
    } finally {
      await sql.end();
    }
    expect(await testNatsUrl()).toBe(inject("natsUrl"));
  });

  it("testDatabase() creates a separate, usable database on the shared server per call", async () => {
    const a = await testDatabase("ctx");
    const b = await testDatabase("ctx");
    expect(a).not.toBe(b);
    expect(new URL(a).port).toBe(new URL(inject("databaseUrl")).port);
    const sqlA = postgres(a, { max: 1, onnotice: () => {} });
    const sqlB = postgres(b, { max: 1, onnotice: () => {} });
    try {
      await sqlA`create table only_in_a (id int)`;
      expect((await sqlB`select to_regclass('only_in_a') as t`)[0]!.t).toBeNull();
      expect((await sqlA`select current_database() as db`)[0]!.db).toMatch(/^ctx_[0-9a-f]{16}$/);
    } finally {
      await Promise.all([sqlA.end(), sqlB.end()]);
    }
  });
});

describe("uniquePrefix", () => {
  it("is unique and valid as a stream name, KV bucket name and subject token", () => {
    const prefixes = new Set(Array.from({ length: 1000 }, () => uniquePrefix()));
    expect(prefixes.size).toBe(1000);
    for (const p of prefixes) expect(p).toMatch(/^t[0-9a-f]{10}$/);
    expect(uniquePrefix("bus")).toMatch(/^bus[0-9a-f]{10}$/);
    expect(() => uniquePrefix("a.b")).toThrow(TypeError);
  });
});

describe("getFreePort", () => {
  it("returns a port that can be bound right away, and not the same one twice in a row", async () => {
    const first = await getFreePort();
    const second = await getFreePort();
    expect(first).not.toBe(second);
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(first, "127.0.0.1", resolve);
    });
    await new Promise((r) => server.close(r));
  });
});
