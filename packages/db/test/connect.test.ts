import { getFreePort, testDatabase } from "@stratum/testing";
import { Code, StratumError } from "@stratum/core";
import postgres from "postgres";
import { afterEach, describe, expect, it } from "vitest";
import { connect } from "../src/index";
import { closeAll, memoryLogger, open } from "./helpers";

afterEach(closeAll);

describe("connect", () => {
  it("creates the service's schema and puts it first on the search_path of every pooled connection", async () => {
    const h = await open(undefined, { applicationName: "compute/compute-0", max: 3 });
    const [schema] = await h.sql`select count(*)::int as n from pg_namespace where nspname = 'fixture'`;
    expect(schema!.n).toBe(1);
    await h.sql`create table plain (id int)`; // unqualified DDL lands in the service schema
    const rows = await Promise.all(
      [1, 2, 3].map(() => h.sql`select current_schema() as s, current_setting('application_name') as app, pg_sleep(0.05)`),
    );
    for (const [row] of rows) expect(row).toMatchObject({ s: "fixture", app: "compute/compute-0" });
    const [where] = await h.sql`select table_schema from information_schema.tables where table_name = 'plain'`;
    expect(where!.table_schema).toBe("fixture");
  });

  it("tolerates another replica creating the schema at the same moment", async () => {
    const url = await testDatabase("schema_race");
    // Replica A has created the schema but not committed yet: B's CREATE SCHEMA IF NOT EXISTS
    // waits on A's catalog row and, once A commits, fails with a unique violation (23505).
    const a = postgres(url, { max: 2, onnotice: () => {} });
    try {
      let commit!: () => void;
      const committed = new Promise<void>((r) => (commit = r));
      const txA = a.begin(async (tx) => {
        await tx`create schema fixture`;
        await committed;
      });
      await new Promise((r) => setTimeout(r, 100));
      const b = open(url);
      // Wait until B really is blocked behind A.
      for (let i = 0; i < 200; i++) {
        const waiting = await a`select count(*)::int as n from pg_stat_activity
          where wait_event_type = 'Lock' and query ilike 'create schema if not exists%'`;
        if (waiting[0]!.n > 0) break;
        await new Promise((r) => setTimeout(r, 25));
      }
      commit();
      await txA;
      const h = await b;
      expect(await h.sql`select current_schema() as s`).toEqual([{ s: "fixture" }]);
    } finally {
      await a.end();
    }
  });

  it("rejects a schema name that is not a plain lowercase identifier", async () => {
    await expect(connect({ url: "postgres://x@127.0.0.1:1/x", schema: 'bad"; drop' })).rejects.toThrow(TypeError);
  });

  it("retries an unreachable Postgres, logging each attempt, then fails with POSTGRES_UNAVAILABLE naming host:port", async () => {
    const port = await getFreePort();
    const logger = memoryLogger();
    const started = Date.now();
    const err = await connect({ url: `postgres://postgres:s3cret@127.0.0.1:${port}/svc`, schema: "svc", connectTimeoutMs: 800, logger }).catch(
      (e: unknown) => e,
    );
    const elapsed = Date.now() - started;
    expect(err).toBeInstanceOf(StratumError);
    const e = err as StratumError;
    expect(e.code).toBe(Code.UNAVAILABLE);
    expect(e.reason).toBe("POSTGRES_UNAVAILABLE");
    expect(e.message).toContain(`127.0.0.1:${port}`);
    expect(e.message).toContain("ECONNREFUSED");
    expect(e.message).not.toContain("s3cret");
    expect((e.cause as { code?: string }).code).toBe("ECONNREFUSED");
    expect(elapsed).toBeGreaterThanOrEqual(500);
    expect(elapsed).toBeLessThan(5_000);
    const attempts = logger.lines.filter((l) => l.msg === "postgres unavailable");
    expect(attempts.length).toBeGreaterThanOrEqual(3);
    expect(attempts[0]).toMatchObject({ level: "warn", target: `127.0.0.1:${port}/svc`, attempt: 1 });
    expect(attempts.at(-1)).toMatchObject({ givingUp: true });
    expect(JSON.stringify(logger.lines)).not.toContain("s3cret");
  });

  it("connects once a Postgres that was down at start comes up within the budget", async () => {
    const { startPostgres } = await import("@stratum/testing");
    const port = await getFreePort();
    const logger = memoryLogger();
    const pending = connect({ url: `postgres://postgres@127.0.0.1:${port}/postgres`, schema: "late", connectTimeoutMs: 60_000, logger });
    const server = await startPostgres({ port });
    try {
      const h = await pending;
      expect(await h.sql`select current_schema() as s`).toEqual([{ s: "late" }]);
      await h.close();
      expect(logger.lines.filter((l) => l.msg === "postgres unavailable").length).toBeGreaterThanOrEqual(1);
      expect(logger.lines.at(-1)).toMatchObject({ msg: "postgres reachable" });
    } finally {
      await server.stop();
    }
  });

  it("fails at once, without retrying, when Postgres rejects the login", async () => {
    const url = new URL(await testDatabase("login"));
    url.pathname = "/no_such_database";
    const logger = memoryLogger();
    const err = (await connect({ url: url.toString(), schema: "svc", logger, connectTimeoutMs: 30_000 }).catch((e: unknown) => e)) as StratumError;
    expect([err.code, err.reason]).toEqual([Code.UNAVAILABLE, "POSTGRES_UNAVAILABLE"]);
    expect(err.message).toMatch(/rejected the connection: database "no_such_database" does not exist/);
    expect(logger.lines.filter((l) => l.msg === "postgres unavailable")).toHaveLength(0);
  });
});
