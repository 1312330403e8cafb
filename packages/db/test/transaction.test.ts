import { eq, sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { migrate, pgErrorCode, transactionWithRetry, type DbHandle } from "../src/index";
import { closeAll, memoryLogger, MIGRATIONS, open, tables, type FixtureTables } from "./helpers";

const { counters } = tables;
let h: DbHandle<FixtureTables>;

beforeAll(async () => {
  h = await open(undefined, { max: 4 });
  await migrate(h, { migrationsFolder: MIGRATIONS });
});
afterAll(closeAll);

/**
 * Two serializable read-then-write transactions on one counter, both made to read before either
 * writes: Postgres must abort one with 40001 on its first attempt, every time.
 */
async function racingIncrements(name: string, options: { maxAttempts?: number }) {
  await h.db.insert(counters).values({ name, value: 0 });
  let readers = 0;
  let release!: () => void;
  const bothRead = new Promise<void>((r) => (release = r));
  const attempts: number[] = [0, 0];
  const logger = memoryLogger();
  const increment = (i: 0 | 1) =>
    transactionWithRetry(
      h.db,
      async (tx) => {
        attempts[i]! += 1;
        const [row] = await tx.select().from(counters).where(eq(counters.name, name));
        if (++readers === 2) release();
        await bothRead;
        await tx.update(counters).set({ value: row!.value + 1 }).where(eq(counters.name, name));
      },
      { ...options, logger, name: "increment" },
    );
  const outcomes = await Promise.allSettled([increment(0), increment(1)]);
  const [final] = await h.db.select().from(counters).where(eq(counters.name, name));
  return { outcomes, attempts, value: final!.value, logger };
}

describe("transactionWithRetry", () => {
  it("reruns a transaction aborted by a serialization failure until it commits", async () => {
    const { outcomes, attempts, value, logger } = await racingIncrements("retried", {});
    expect(outcomes.map((o) => o.status)).toEqual(["fulfilled", "fulfilled"]);
    expect(value).toBe(2); // no lost update
    expect(attempts[0]! + attempts[1]!).toBeGreaterThanOrEqual(3);
    expect(logger.lines.some((l) => l.msg === "transaction conflicted, retrying" && l.sqlstate === "40001")).toBe(true);
  });

  it("gives up after maxAttempts and rethrows the serialization failure", async () => {
    const { outcomes, value } = await racingIncrements("once", { maxAttempts: 1 });
    const failed = outcomes.filter((o): o is PromiseRejectedResult => o.status === "rejected");
    expect(failed).toHaveLength(1);
    expect(pgErrorCode(failed[0]!.reason)).toBe("40001");
    expect(value).toBe(1);
  });

  it("does not retry other errors", async () => {
    let calls = 0;
    const err = await transactionWithRetry(h.db, async (tx) => {
      calls++;
      await tx.execute(sql`select 1/0`);
    }).catch((e: unknown) => e);
    expect(pgErrorCode(err)).toBe("22012");
    expect(calls).toBe(1);
  });
});
