import { randomUUID } from "node:crypto";
import { eq } from "drizzle-orm";
import { getFreePort } from "@stratum/testing";
import { Code, StratumError } from "@stratum/core";
import postgres from "postgres";
import { beforeAll, describe, expect, it } from "vitest";
import { connectionTarget, isConnectionError, mapPgError, migrate, postgresErrorToStratum, withPgErrors, type DbHandle } from "../src/index";
import { closeAll, MIGRATIONS, open, tables, type FixtureTables } from "./helpers";

const { hosts, vms } = tables;
let h: DbHandle<FixtureTables>;

beforeAll(async () => {
  h = await open();
  await migrate(h, { migrationsFolder: MIGRATIONS });
  return closeAll;
});

/** The error a real statement raises, as drizzle throws it (a DrizzleQueryError around the PostgresError). */
async function failure(run: () => Promise<unknown>): Promise<unknown> {
  try {
    await run();
  } catch (e) {
    return e;
  }
  throw new Error("statement unexpectedly succeeded");
}

const insertHost = (name: string, cpuCapacity = 8, uuid = randomUUID()) => h.db.insert(hosts).values({ uuid, name, cpuCapacity });

function expectNoSql(err: StratumError): void {
  expect(err.message).not.toMatch(/insert|select|update|delete|values|fixture\.|\$\d|Failed query|duplicate key|violates/i);
}

describe("mapPgError on real Postgres errors", () => {
  it("maps a unique violation to ALREADY_EXISTS, keeping the Postgres error as cause and SQL out of the message", async () => {
    await insertHost("dup-host");
    const raw = await failure(() => insertHost("dup-host"));
    expect(String((raw as Error).message)).toMatch(/Failed query: insert into/); // what we must not leak
    const err = mapPgError(raw, { operation: "create host", resources: { hostName: "dup-host" } });
    expect(err).toBeInstanceOf(StratumError);
    expect(err.code).toBe(Code.ALREADY_EXISTS);
    expect(err.reason).toBe("ALREADY_EXISTS");
    expect(err.message).toBe("create host: already exists");
    expect(err.resources).toEqual({ hostName: "dup-host" });
    expect((err.cause as { code: string; constraint_name: string }).code).toBe("23505");
    expect((err.cause as { constraint_name: string }).constraint_name).toBe("hosts_name_uq");
    expectNoSql(err);
  });

  it("uses the caller's reason and message for a named constraint", async () => {
    await insertHost("named-host");
    const err = mapPgError(await failure(() => insertHost("named-host")), {
      constraints: { hosts_name_uq: { reason: "HOST_NAME_TAKEN", message: "a host with this name exists" } },
    });
    expect(err.code).toBe(Code.ALREADY_EXISTS);
    expect(err.reason).toBe("HOST_NAME_TAKEN");
    expect(err.message).toBe("a host with this name exists");
  });

  it("maps a foreign key violation to FAILED_PRECONDITION, or to the caller's code for that constraint", async () => {
    const orphan = () => h.db.insert(vms).values({ uuid: randomUUID(), hostUuid: randomUUID(), state: "Created" });
    const err = mapPgError(await failure(orphan));
    expect(err.code).toBe(Code.FAILED_PRECONDITION);
    expectNoSql(err);
    const mapped = mapPgError(await failure(orphan), {
      constraints: { vms_host_uuid_hosts_uuid_fk: { code: Code.NOT_FOUND, reason: "HOST_NOT_FOUND" } },
    });
    expect([mapped.code, mapped.reason]).toEqual([Code.NOT_FOUND, "HOST_NOT_FOUND"]);
  });

  it("maps check violations, malformed values and out-of-range numbers to INVALID_ARGUMENT", async () => {
    const check = mapPgError(await failure(() => insertHost("zero-cpu", 0)), {
      constraints: { hosts_cpu_capacity_positive: { reason: "INVALID_ARGUMENT", message: "must be positive", field: "cpu_capacity" } },
    });
    expect(check.code).toBe(Code.INVALID_ARGUMENT);
    expect(check.violations).toEqual([{ field: "cpu_capacity", description: "must be positive" }]);

    const badUuid = mapPgError(await failure(() => h.db.select().from(hosts).where(eq(hosts.uuid, "not-a-uuid"))));
    expect([badUuid.code, (badUuid.cause as { code: string }).code]).toEqual([Code.INVALID_ARGUMENT, "22P02"]);
    expectNoSql(badUuid);

    const tooBig = mapPgError(await failure(() => insertHost("huge", 2 ** 40)));
    expect([tooBig.code, (tooBig.cause as { code: string }).code]).toEqual([Code.INVALID_ARGUMENT, "22003"]);
  });

  it("maps a refused connection to UNAVAILABLE POSTGRES_UNAVAILABLE", async () => {
    const port = await getFreePort();
    const sql = postgres(`postgres://postgres@127.0.0.1:${port}/x`, { max: 1, connect_timeout: 2 });
    try {
      const err = mapPgError(await failure(() => sql`select 1`));
      expect([err.code, err.reason]).toEqual([Code.UNAVAILABLE, "POSTGRES_UNAVAILABLE"]);
      expect(err.message).toBe(`the database at 127.0.0.1:${port} is unavailable (ECONNREFUSED)`);
      expect((err.cause as { code: string }).code).toBe("ECONNREFUSED");
    } finally {
      await sql.end({ timeout: 0 });
    }
  });

  it("maps an unknown Postgres error to INTERNAL with a generic message", async () => {
    const raw = await failure(() => h.sql`select * from fixture.no_such_table`);
    const err = mapPgError(raw);
    expect([err.code, err.reason, err.message]).toEqual([Code.INTERNAL, "INTERNAL", "internal error"]);
    expect((err.cause as { code: string }).code).toBe("42P01");
  });
});

describe("mapPgError by SQLSTATE", () => {
  const pgError = (code: string) => Object.assign(new Error(`pg says ${code}`), { name: "PostgresError", code, severity: "ERROR" });

  it.each([
    ["40001", Code.ABORTED, "SERIALIZATION_FAILURE"],
    ["40P01", Code.ABORTED, "DEADLOCK_DETECTED"],
    ["57P01", Code.UNAVAILABLE, "POSTGRES_UNAVAILABLE"],
    ["57P03", Code.UNAVAILABLE, "POSTGRES_UNAVAILABLE"],
    ["08006", Code.UNAVAILABLE, "POSTGRES_UNAVAILABLE"],
    ["53300", Code.UNAVAILABLE, "POSTGRES_UNAVAILABLE"],
    ["23514", Code.INVALID_ARGUMENT, "INVALID_ARGUMENT"],
    ["XX000", Code.INTERNAL, "INTERNAL"],
  ])("%s → %s %s, also when wrapped by drizzle", (sqlstate, code, reason) => {
    const wrapped = Object.assign(new Error("Failed query: update x set y = $1\nparams: secret"), { cause: pgError(sqlstate) });
    for (const e of [pgError(sqlstate), wrapped]) {
      const err = mapPgError(e);
      expect([err.code, err.reason]).toEqual([code, reason]);
      expect(err.message).not.toContain("pg says");
      expect(err.message).not.toContain("secret");
    }
  });

  it("maps postgres-js connection errors to UNAVAILABLE and passes StratumErrors through", () => {
    for (const code of ["CONNECTION_CLOSED", "CONNECTION_DESTROYED", "CONNECT_TIMEOUT", "ECONNRESET"]) {
      expect(mapPgError(Object.assign(new Error("gone"), { code })).code).toBe(Code.UNAVAILABLE);
    }
    const own = StratumError.notFound("vm", "v1");
    expect(mapPgError(own)).toBe(own);
    expect(mapPgError(new TypeError("boom")).code).toBe(Code.INTERNAL);
  });

  it("withPgErrors rethrows mapped, and returns the value otherwise", async () => {
    await expect(withPgErrors(async () => 42)).resolves.toBe(42);
    await insertHost("wrapped-host");
    const err = await withPgErrors(() => insertHost("wrapped-host"), { operation: "create host" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StratumError);
    expect((err as StratumError).code).toBe(Code.ALREADY_EXISTS);
  });
});

describe("postgresErrorToStratum", () => {
  /** What drizzle throws: the SQL and its parameters in the message, the driver's error as cause. */
  const drizzleWrapped = (cause: unknown) =>
    Object.assign(new Error("Failed query: insert into vms values ($1)\nparams: s3cret"), { name: "DrizzleQueryError", cause });
  const refused = (port: number) =>
    Object.assign(new Error(`connect ECONNREFUSED 127.0.0.1:${port}`), { code: "ECONNREFUSED", address: "127.0.0.1", port });

  it("maps a connection error behind drizzle's wrapper to UNAVAILABLE naming host:port, without SQL", () => {
    const err = postgresErrorToStratum(drizzleWrapped(refused(5433)))!;
    expect([err.code, err.reason, err.message]).toEqual([Code.UNAVAILABLE, "POSTGRES_UNAVAILABLE", "the database at 127.0.0.1:5433 is unavailable (ECONNREFUSED)"]);
    expect((err.cause as { code: string }).code).toBe("ECONNREFUSED");
  });

  it("sees the per-address errors of an AggregateError (a connect to localhost tries ::1 and 127.0.0.1)", () => {
    const v6 = Object.assign(new Error("connect ECONNREFUSED ::1:5433"), { code: "ECONNREFUSED", address: "::1", port: 5433 });
    const aggregate = new AggregateError([v6, refused(5433)], "");
    expect(isConnectionError(drizzleWrapped(aggregate))).toBe(true);
    expect(connectionTarget(drizzleWrapped(aggregate))).toBe("[::1]:5433");
    const err = postgresErrorToStratum(drizzleWrapped(aggregate))!;
    expect([err.code, err.reason]).toEqual([Code.UNAVAILABLE, "POSTGRES_UNAVAILABLE"]);
    expect(err.message).toContain("[::1]:5433");
  });

  it("names the server of a postgres-js CONNECTION_CLOSED (address and port given as arrays)", () => {
    const closed = Object.assign(new Error("write CONNECTION_CLOSED 10.1.2.3:6432"), { code: "CONNECTION_CLOSED", address: ["10.1.2.3"], port: [6432] });
    expect(postgresErrorToStratum(drizzleWrapped(closed))!.message).toBe("the database at 10.1.2.3:6432 is unavailable (CONNECTION_CLOSED)");
  });

  it("maps a server shutting down (57P01) to UNAVAILABLE with its SQLSTATE, not the server's text", () => {
    const shutdown = Object.assign(new Error("terminating connection due to administrator command"), { name: "PostgresError", code: "57P01", severity: "FATAL" });
    const err = postgresErrorToStratum(drizzleWrapped(shutdown))!;
    expect([err.code, err.reason, err.message]).toEqual([Code.UNAVAILABLE, "POSTGRES_UNAVAILABLE", "the database is unavailable (57P01)"]);
  });

  it("maps other Postgres errors as mapPgError does: a real unique violation is ALREADY_EXISTS", async () => {
    await insertHost("to-stratum-host");
    const err = postgresErrorToStratum(await failure(() => insertHost("to-stratum-host")))!;
    expect([err.code, err.reason, err.message]).toEqual([Code.ALREADY_EXISTS, "ALREADY_EXISTS", "already exists"]);
    expectNoSql(err);
  });

  it("unwraps an INTERNAL StratumError made from a Postgres error, so the outage is not hidden as internal error", () => {
    const hidden = StratumError.from(drizzleWrapped(refused(5433)));
    expect(hidden.code).toBe(Code.INTERNAL);
    expect(postgresErrorToStratum(hidden)!.code).toBe(Code.UNAVAILABLE);
  });

  it("returns undefined for anything that is not a Postgres error, and for the handler's own StratumErrors", () => {
    expect(postgresErrorToStratum(new TypeError("boom"))).toBeUndefined();
    expect(postgresErrorToStratum(Object.assign(new Error("no such file"), { code: "ENOENT" }))).toBeUndefined();
    expect(postgresErrorToStratum("a string")).toBeUndefined();
    expect(postgresErrorToStratum(undefined)).toBeUndefined();
    expect(postgresErrorToStratum(StratumError.notFound("vm", "v1"))).toBeUndefined();
    expect(postgresErrorToStratum(StratumError.from(new TypeError("boom")))).toBeUndefined();
    const cyclic: { message: string; cause?: unknown } = { message: "loop" };
    cyclic.cause = cyclic;
    expect(postgresErrorToStratum(cyclic)).toBeUndefined();
  });
});
