import { randomUUID } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { Registry } from "prom-client";
import { connect, type DbHandle } from "@stratum/db";
import { testDatabase } from "@stratum/testing";
import { dbPoolMetrics, pgBackendsInUse } from "./db-metrics";
import { parseMetrics, valueOf } from "./test-support";

const handles: DbHandle[] = [];
afterEach(async () => {
  for (const h of handles.splice(0)) await h.close();
});

function gate() {
  let open!: () => void;
  const promise = new Promise<void>((r) => (open = r));
  return { promise, open };
}

describe("DB pool metrics on a real Postgres", () => {
  it("counts this pool's connections held by a transaction or a query, not idle ones nor another pool's", async () => {
    const url = await testDatabase("metrics");
    const applicationName = `stratum-test-${randomUUID().slice(0, 8)}`;
    const db = await connect({ url, schema: "metrics", applicationName, max: 4 });
    const other = await connect({ url, schema: "metrics", applicationName: `${applicationName}-other`, max: 2 });
    handles.push(db, other);
    const registry = new Registry();
    dbPoolMetrics(registry, pgBackendsInUse(db.sql, applicationName), 4);
    const inUse = async () => valueOf(parseMetrics(await registry.metrics()), "stratum_db_pool_in_use");

    expect(await inUse()).toBe(0);
    expect(valueOf(parseMetrics(await registry.metrics()), "stratum_db_pool_max")).toBe(4);

    const release = gate();
    const held = gate();
    const tx = db.sql.begin(async (t) => {
      await t`select 1`;
      held.open();
      await release.promise;
    });
    const otherTx = other.sql.begin(async () => {
      await release.promise;
    });
    await held.promise;
    // The transaction sits idle in transaction: in use, though no query runs right now.
    expect(await inUse()).toBe(1);
    const slow = db.sql`select pg_sleep(60)`.execute();
    // The sleeping query shows as active once Postgres has it.
    await expect.poll(inUse).toBe(2);
    slow.cancel();
    await slow.catch(() => {});
    release.open();
    await Promise.all([tx, otherTx]);
    await expect.poll(inUse).toBe(0);
  });

  it("reads NaN for a scrape whose accessor fails, and refuses bad options", async () => {
    const registry = new Registry();
    dbPoolMetrics(registry, () => {
      throw new Error("pool gone");
    });
    expect(valueOf(parseMetrics(await registry.metrics()), "stratum_db_pool_in_use")).toBeNaN();
    expect(() => dbPoolMetrics(new Registry(), 3 as never)).toThrow(/dbInUse must be a function/);
    expect(() => dbPoolMetrics(new Registry(), () => 0, 0)).toThrow(/dbPoolMax must be a positive integer/);
    expect(() => pgBackendsInUse({ unsafe: () => Promise.resolve([]) }, "")).toThrow(/applicationName/);
  });
});
