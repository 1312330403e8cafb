import { randomUUID } from "node:crypto";
import { and, eq } from "drizzle-orm";
import { Code, StratumError } from "@stratum/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { affectedRows, expectOne, migrate, type DbHandle } from "../src/index";
import { closeAll, MIGRATIONS, open, tables, type FixtureTables } from "./helpers";

const { hosts } = tables;
let h: DbHandle<FixtureTables>;

beforeAll(async () => {
  h = await open();
  await migrate(h, { migrationsFolder: MIGRATIONS });
});
afterAll(closeAll);

const notConnected = (uuid: string) =>
  new StratumError(Code.FAILED_PRECONDITION, `host ${uuid} is not connected`, { reason: "HOST_NOT_CONNECTED", resources: { hostUuid: uuid } });

async function newHost(state: "Connected" | "Disconnected" = "Connected"): Promise<string> {
  const uuid = randomUUID();
  await h.db.insert(hosts).values({ uuid, name: `host-${uuid}`, cpuCapacity: 8, state });
  return uuid;
}

/** `UPDATE hosts SET state = 'Maintenance' WHERE uuid = … AND state = 'Connected' RETURNING *` */
const enterMaintenance = (uuid: string) =>
  h.db
    .update(hosts)
    .set({ state: "Maintenance" })
    .where(and(eq(hosts.uuid, uuid), eq(hosts.state, "Connected")))
    .returning();

describe("expectOne on conditional updates", () => {
  it("returns the updated row when the precondition held", async () => {
    const uuid = await newHost("Connected");
    const row = expectOne(await enterMaintenance(uuid), () => notConnected(uuid));
    expect(row).toMatchObject({ uuid, state: "Maintenance" });
  });

  it("throws the caller's error when the update matched no row, instead of carrying on", async () => {
    const uuid = await newHost("Disconnected");
    const rows = await enterMaintenance(uuid);
    expect(rows).toHaveLength(0);
    expect(() => expectOne(rows, () => notConnected(uuid))).toThrow(notConnected(uuid).message);
    const [unchanged] = await h.db.select().from(hosts).where(eq(hosts.uuid, uuid));
    expect(unchanged!.state).toBe("Disconnected");
  });

  it("lets exactly one of two racing conditional updates win", async () => {
    const uuid = await newHost("Connected");
    const outcomes = await Promise.allSettled([0, 1].map(async () => expectOne(await enterMaintenance(uuid), () => notConnected(uuid))));
    expect(outcomes.filter((o) => o.status === "fulfilled")).toHaveLength(1);
    const lost = outcomes.find((o) => o.status === "rejected") as PromiseRejectedResult;
    expect((lost.reason as StratumError).reason).toBe("HOST_NOT_CONNECTED");
  });

  it("treats more than one affected row as an internal error: the WHERE clause was not keyed", async () => {
    const a = await newHost("Connected");
    const b = await newHost("Connected");
    const rows = await h.db.update(hosts).set({ cpuCapacity: 16 }).where(eq(hosts.state, "Connected")).returning();
    expect(rows.length).toBeGreaterThanOrEqual(2);
    const err = (() => {
      try {
        expectOne(rows, () => notConnected(a));
      } catch (e) {
        return e as StratumError;
      }
    })();
    expect([err?.code, err?.reason]).toEqual([Code.INTERNAL, "UNEXPECTED_ROW_COUNT"]);
    expect(b).toBeTruthy();
  });
});

describe("affectedRows", () => {
  it("counts the rows an UPDATE without RETURNING touched", async () => {
    const uuid = await newHost("Connected");
    const hit = await h.db.update(hosts).set({ cpuCapacity: 32 }).where(and(eq(hosts.uuid, uuid), eq(hosts.state, "Connected")));
    expect(affectedRows(hit)).toBe(1);
    const miss = await h.db.update(hosts).set({ cpuCapacity: 32 }).where(and(eq(hosts.uuid, uuid), eq(hosts.state, "Disconnected")));
    expect(affectedRows(miss)).toBe(0);
    expect(affectedRows(await enterMaintenance(await newHost("Connected")))).toBe(1);
  });
});
