import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pgSchema } from "drizzle-orm/pg-core";
import { drizzle } from "drizzle-orm/postgres-js";
import postgres from "postgres";
import { Code, StratumError } from "@stratum/core";
import { requestsTable } from "@stratum/db";
import type { ServerCall } from "@stratum/rpc";
import { getFreePort, testDatabase } from "@stratum/testing";
import { create } from "@bufbuild/protobuf";
import { StartVmRequestSchema, VmService, type StartVmRequest, type StartVmResponse } from "@stratum/proto/stratum/compute/v1/vm_pb";
import { toStratumError } from "./errors";
import { idempotency } from "./idempotency";
import { RequestBatcher } from "./request-batcher";

/**
 * The interceptor over a real Postgres, through a pool that records every statement it sends
 * (postgres-js `debug`), so a test can count the claim and outcome statements a burst costs.
 */
const SCHEMA = "idemtest";
const table = requestsTable(pgSchema(SCHEMA));
const sent: string[] = [];
let sql: postgres.Sql;

beforeAll(async () => {
  sql = postgres(await testDatabase("idempotency"), { max: 4, onnotice: () => {}, debug: (_connection, query) => void sent.push(query) });
  await sql`CREATE SCHEMA ${sql(SCHEMA)}`;
  await sql`CREATE TABLE ${sql(SCHEMA)}.requests (
    request_id text PRIMARY KEY, method text NOT NULL, request_hash text NOT NULL, state text NOT NULL DEFAULT 'running',
    response text, holder text NOT NULL DEFAULT '', created_at timestamptz NOT NULL DEFAULT now())`;
});
afterAll(async () => {
  await sql?.end();
});

const startVm = VmService.method.startVm;
const claims = () => sent.filter((q) => /^\s*insert into "idemtest"\."requests"/i.test(q)).length;
const finishes = () => sent.filter((q) => /^\s*update "idemtest"\."requests"\s/i.test(q)).length;

/** The interceptor around a handler that counts its runs and answers with the VM it was asked for. */
function serve(o: { db: ReturnType<typeof drizzle>; handler?: (req: StartVmRequest) => Promise<Partial<StartVmResponse>> }) {
  const runs = new Map<string, number>();
  const next = idempotency({ db: o.db as never, table, rules: () => ({ requestId: (r) => (r as StartVmRequest).clientRequestId }), holder: { self: () => "replica-a@1", isLive: () => true } })(
    async (call: ServerCall) => {
      const req = call.request as StartVmRequest;
      runs.set(req.clientRequestId, (runs.get(req.clientRequestId) ?? 0) + 1);
      return o.handler ? o.handler(req) : { vm: { uuid: req.uuid, name: `ran-${req.clientRequestId}` } };
    },
  );
  const call = (uuid: string, clientRequestId: string) =>
    Promise.resolve(next({ service: VmService, method: startVm, request: create(StartVmRequestSchema, { uuid, clientRequestId }), ctx: {} as never })) as Promise<StartVmResponse>;
  return { call, runs };
}

/** What a caller learnt: the VM it got, or the code and reason of its failure. */
function summary(o: PromiseSettledResult<StartVmResponse>) {
  if (o.status === "fulfilled") return { uuid: o.value.vm?.uuid, name: o.value.vm?.name };
  const e = o.reason as StratumError;
  return { code: e.code, reason: e.reason };
}

const UUID = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, "0")}`;

describe("idempotency: batched claim and outcome statements", () => {
  it("a burst of calls costs one claim and one outcome statement, and each caller gets its own outcome", async () => {
    const N = 20;
    // Every handler of the burst waits until all have started, so their outcomes are recorded together.
    let started = 0;
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    let wait = false;
    const { call, runs } = serve({
      db: drizzle(sql),
      handler: async (req) => {
        if (wait && ++started === N) open();
        if (wait) await gate;
        if (req.uuid === UUID(13)) throw new StratumError(Code.FAILED_PRECONDITION, "vm 13 is not stopped", { reason: "VM_STATE_INVALID" });
        return { vm: { uuid: req.uuid, name: `ran-${req.clientRequestId}` } } as Partial<StartVmResponse>;
      },
    });
    const before = await call(UUID(99), "seen-before");
    expect(before.vm!.name).toBe("ran-seen-before");

    wait = true;
    sent.length = 0;
    const burst = [
      ...Array.from({ length: N - 1 }, (_, i) => call(UUID(i), `id-${i}`)),
      // Two calls of one request in the same burst: one run, one outcome.
      call(UUID(50), "twice"),
      call(UUID(50), "twice"),
      // The same id with another request, in the same burst: a conflict, and it does not run.
      call(UUID(51), "twice"),
      // A retry of a finished request: its first outcome, without running.
      call(UUID(99), "seen-before"),
      // The id of a finished request with another request.
      call(UUID(98), "seen-before"),
    ];
    const outcomes = await Promise.allSettled(burst);

    for (let i = 0; i < N - 1; i++) {
      if (i === 13) expect(outcomes[i]).toMatchObject({ status: "rejected", reason: { code: Code.FAILED_PRECONDITION, reason: "VM_STATE_INVALID" } });
      else expect(outcomes[i]).toMatchObject({ status: "fulfilled", value: { vm: { uuid: UUID(i), name: `ran-id-${i}` } } });
      expect(runs.get(`id-${i}`)).toBe(1);
    }
    expect(outcomes[N - 1]).toMatchObject({ status: "fulfilled", value: { vm: { uuid: UUID(50), name: "ran-twice" } } });
    expect(outcomes[N]).toEqual(outcomes[N - 1]);
    expect(runs.get("twice")).toBe(1);
    expect(outcomes[N + 1]).toMatchObject({ status: "rejected", reason: { code: Code.ALREADY_EXISTS, reason: "REQUEST_ID_IN_USE", resources: { requestId: "twice" } } });
    expect(outcomes[N + 2]).toMatchObject({ status: "fulfilled", value: { vm: { uuid: UUID(99), name: "ran-seen-before" } } });
    expect(outcomes[N + 3]).toMatchObject({ status: "rejected", reason: { code: Code.ALREADY_EXISTS, reason: "REQUEST_ID_IN_USE", resources: { requestId: "seen-before" } } });
    expect(runs.get("seen-before")).toBe(1);

    // The point: N claims in one INSERT, N outcomes in one UPDATE.
    expect(claims()).toBe(1);
    expect(finishes()).toBe(1);

    // What was recorded is each call's own outcome: a retry of every request answers it again without running.
    wait = false;
    sent.length = 0;
    const again = await Promise.allSettled([...Array.from({ length: N - 1 }, (_, i) => call(UUID(i), `id-${i}`)), call(UUID(50), "twice")]);
    expect(again.map(summary)).toEqual(outcomes.slice(0, N).map(summary));
    expect([...runs.values()].every((n) => n === 1)).toBe(true);
    expect(claims()).toBe(1);
    expect(finishes()).toBe(0);
  });

  it("two claims or two outcomes of one request id never share a statement: the second goes out next, and gets its own answer", async () => {
    const batcher = new RequestBatcher({ sql, table });
    sent.length = 0;
    const [first, second, other] = await Promise.all([batcher.claim("dup", "m", "h", "a"), batcher.claim("dup", "m", "h", "b"), batcher.claim("dup-other", "m", "h", "a")]);
    expect([first, second, other]).toEqual([true, false, true]);
    expect(claims()).toBe(2);
    const [held, notHeld] = await Promise.all([batcher.finish("dup", "a", "done", "r1"), batcher.finish("dup", "b", "done", "r2")]);
    expect([held, notHeld]).toEqual([true, false]);
    expect(finishes()).toBe(2);
    const [row] = await sql`SELECT holder, state, response FROM idemtest.requests WHERE request_id = 'dup'`;
    expect(row).toEqual({ holder: "a", state: "done", response: "r1" });
  });

  it("with Postgres unreachable a call is UNAVAILABLE POSTGRES_UNAVAILABLE and does not run", async () => {
    const down = postgres(`postgres://nobody@127.0.0.1:${await getFreePort()}/nothing`, { max: 1, connect_timeout: 2 });
    try {
      const { call, runs } = serve({ db: drizzle(down) });
      const failed = await call(UUID(1), "while-down").catch((e: unknown) => toStratumError(e));
      expect(failed).toMatchObject({ code: Code.UNAVAILABLE, reason: "POSTGRES_UNAVAILABLE" });
      expect(runs.size).toBe(0);
    } finally {
      await down.end({ timeout: 0 });
    }
  });
});
