import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { testDatabase } from "@stratum/testing";
import { Code, StratumError } from "@stratum/core";
import { afterEach, describe, expect, it } from "vitest";
import { migrate } from "../src/index";
import { closeAll, memoryLogger, MIGRATIONS, open } from "./helpers";

afterEach(closeAll);

/** A copy of the fixture's migrations holding only the first `count` journal entries. */
function firstMigrations(count: number): string {
  const dir = mkdtempSync(join(tmpdir(), "stratum-migrations-"));
  cpSync(MIGRATIONS, dir, { recursive: true });
  const journalPath = join(dir, "meta", "_journal.json");
  const journal = JSON.parse(readFileSync(journalPath, "utf8")) as { entries: unknown[] };
  journal.entries = journal.entries.slice(0, count);
  writeFileSync(journalPath, JSON.stringify(journal));
  return dir;
}

describe("migrate", () => {
  it("applies the drizzle-kit migrations into the service's schema, with the migrations table there too", async () => {
    const h = await open();
    expect(await migrate(h, { migrationsFolder: MIGRATIONS })).toEqual({ applied: 2, total: 2 });
    const rows = await h.sql<Array<{ name: string }>>`
      select table_name as name from information_schema.tables where table_schema = 'fixture' order by 1`;
    expect(rows.map((r) => r.name)).toEqual(["__drizzle_migrations", "counters", "hosts", "vms"]);
    const [elsewhere] = await h.sql`select to_regclass('drizzle.__drizzle_migrations') as t`;
    expect(elsewhere!.t).toBeNull();
  });

  it("is idempotent: a second start applies nothing and changes nothing", async () => {
    const h = await open();
    await migrate(h, { migrationsFolder: MIGRATIONS });
    await h.sql`insert into fixture.counters values ('kept', 7)`;
    expect(await migrate(h, { migrationsFolder: MIGRATIONS })).toEqual({ applied: 0, total: 2 });
    expect(await h.sql`select value from fixture.counters`).toEqual([{ value: 7 }]);
    expect((await h.sql`select count(*)::int as n from fixture.__drizzle_migrations`)[0]!.n).toBe(2);
  });

  it("applies only the migrations a database does not have yet, in order", async () => {
    const h = await open();
    const partial = firstMigrations(1);
    try {
      expect(await migrate(h, { migrationsFolder: partial })).toEqual({ applied: 1, total: 1 });
      const [before] = await h.sql`select to_regclass('fixture.vms') as t`;
      expect(before!.t).toBeNull();
      expect(await migrate(h, { migrationsFolder: MIGRATIONS })).toEqual({ applied: 1, total: 2 });
      const [after] = await h.sql`select to_regclass('fixture.vms') is not null as present`;
      expect(after!.present).toBe(true);
    } finally {
      rmSync(partial, { recursive: true, force: true });
    }
  });

  it("lets replicas starting at the same time migrate concurrently: one applies, the others wait and skip", async () => {
    const url = await testDatabase("migrate_race");
    const replicas = await Promise.all(Array.from({ length: 6 }, () => open(url)));
    const results = await Promise.all(replicas.map((h) => migrate(h, { migrationsFolder: MIGRATIONS })));
    expect(results.map((r) => r.applied).sort()).toEqual([0, 0, 0, 0, 0, 2]);
    expect((await replicas[0]!.sql`select count(*)::int as n from fixture.__drizzle_migrations`)[0]!.n).toBe(2);
  });

  it("says it is waiting while another replica holds the migration lock, then proceeds", async () => {
    const url = await testDatabase("migrate_wait");
    const logger = memoryLogger();
    const holder = await open(url);
    const waiter = await open(url, { logger });
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let locked!: () => void;
    const isLocked = new Promise<void>((r) => (locked = r));
    const holding = holder.sql.begin(async (tx) => {
      await tx`select pg_advisory_xact_lock(${0x53544d47}::int, hashtext('fixture'))`;
      locked();
      await released;
    });
    await isLocked;
    const migrating = migrate(waiter, { migrationsFolder: MIGRATIONS });
    for (let i = 0; i < 200 && !logger.lines.some((l) => l.msg.startsWith("waiting for the migration lock")); i++) await new Promise((r) => setTimeout(r, 50));
    expect(logger.lines.some((l) => l.msg.startsWith("waiting for the migration lock"))).toBe(true);
    release();
    await holding;
    expect((await migrating).applied).toBe(2);
  }, 30_000);

  it("fails with MIGRATIONS_NOT_FOUND for a folder without a drizzle-kit journal", async () => {
    const h = await open();
    const err = await migrate(h, { migrationsFolder: tmpdir() }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StratumError);
    expect((err as StratumError).reason).toBe("MIGRATIONS_NOT_FOUND");
  });

  it("reports a failing migration as MIGRATION_FAILED with the Postgres reason, and leaves nothing half-applied", async () => {
    const dir = firstMigrations(2);
    const logger = memoryLogger();
    try {
      writeFileSync(join(dir, "0001_add_vms.sql"), readFileSync(join(dir, "0001_add_vms.sql"), "utf8").replace('"fixture"."hosts"("uuid")', '"fixture"."nope"("uuid")'));
      const h = await open(undefined, { logger });
      const err = (await migrate(h, { migrationsFolder: dir }).catch((e: unknown) => e)) as StratumError;
      expect(err.code).toBe(Code.INTERNAL);
      expect(err.reason).toBe("MIGRATION_FAILED");
      expect(err.message).toMatch(/relation "fixture.nope" does not exist/);
      // drizzle runs all pending migrations in one transaction: 0000 is rolled back with 0001.
      const [t] = await h.sql`select to_regclass('fixture.hosts') as t`;
      expect(t!.t).toBeNull();
      expect(logger.lines.some((l) => l.level === "error" && l.msg === "migration failed")).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
