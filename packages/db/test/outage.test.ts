import { sql } from "drizzle-orm";
import { Code, StratumError } from "@stratum/core";
import { startPostgres, type PostgresServer } from "@stratum/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { migrate, postgresErrorToStratum, type DbHandle } from "../src/index";
import { closeAll, MIGRATIONS, open, tables, type FixtureTables } from "./helpers";

// A cluster of its own: this file takes Postgres down, which the shared test server must not be.
let pg: PostgresServer;
let h: DbHandle<FixtureTables>;

beforeAll(async () => {
  pg = await startPostgres();
  h = await open(await pg.createDatabase("outage"), { max: 4 });
  await migrate(h, { migrationsFolder: MIGRATIONS });
  await h.db.execute(sql`create table fixture.things (id int primary key)`);
});

afterAll(async () => {
  await closeAll();
  await pg?.stop();
});

async function failure(run: () => Promise<unknown>): Promise<unknown> {
  try {
    await run();
  } catch (e) {
    return e;
  }
  throw new Error("query unexpectedly succeeded while Postgres was down");
}

describe("a Postgres outage", () => {
  it("fails queries through drizzle as UNAVAILABLE POSTGRES_UNAVAILABLE naming host:port, and the same pool works once Postgres is back", async () => {
    // Every pooled connection open and idle, as in a running service.
    await Promise.all([1, 2, 3, 4].map(() => h.db.execute(sql`select pg_sleep(0.02)`)));
    await pg.halt();

    // Many failures in a row: with the driver's default backoff the pool would now wait up to 20 s.
    for (let i = 0; i < 12; i++) {
      const raw =
        i % 2 === 0
          ? await failure(() => h.db.select().from(tables.hosts))
          : await failure(() => h.db.execute(sql`insert into fixture.things values (${i})`));
      expect(String((raw as Error).message)).toMatch(/Failed query/); // drizzle's wrapper, with SQL in it
      const err = postgresErrorToStratum(raw);
      expect(err).toBeInstanceOf(StratumError);
      expect([err!.code, err!.reason]).toEqual([Code.UNAVAILABLE, "POSTGRES_UNAVAILABLE"]);
      expect(err!.message).toContain(`127.0.0.1:${pg.port}`);
      expect(err!.message).not.toMatch(/select|insert|things|Failed query|params/i);
    }

    await pg.resume();
    // The same handle, not reopened: the next queries succeed.
    await h.db.execute(sql`insert into fixture.things values (100)`);
    expect(await h.db.execute(sql`select id from fixture.things`)).toEqual([{ id: 100 }]);
    expect(await h.db.select().from(tables.hosts)).toEqual([]);
  });
});
