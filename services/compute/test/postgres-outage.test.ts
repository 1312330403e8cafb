import { afterAll, beforeAll, expect, it } from "vitest";
import { Code, StratumError } from "@stratum/core";
import { VmState } from "@stratum/proto/stratum/compute/v1/vm_pb";
import { createDatabaseAt, startPostgres, type PostgresServer } from "@stratum/testing";
import { GIB, startComputeStack, type ComputeStack } from "./harness";
import { settle } from "./watch";

/** A Postgres of this file's own, so the test can take it down without touching the others'. */
let pg: PostgresServer;
let stack: ComputeStack;
beforeAll(async () => {
  pg = await startPostgres();
  stack = await startComputeStack({ replicas: 1, hosts: 1, databaseUrl: await createDatabaseAt(pg.url, "outage") });
  await stack.addSimHosts(8, 16n);
}, 120_000);
afterAll(async () => {
  await stack?.stop();
  await pg?.stop();
});

it("a Postgres outage reaches callers as UNAVAILABLE POSTGRES_UNAVAILABLE, and calls work again once it is back", async () => {
  const vm = await settle(stack.vms, stack.vms.createVm({ name: "outage", cpu: 1, memoryBytes: GIB }), VmState.RUNNING);
  await pg.halt();
  for (const call of [() => stack.vms.getVm({ uuid: vm.uuid }), () => stack.vms.createVm({ name: "during", cpu: 1, memoryBytes: GIB }), () => stack.vms.listVms({})]) {
    const err = await call().catch((e) => e);
    expect(err).toBeInstanceOf(StratumError);
    expect(err).toMatchObject({ code: Code.UNAVAILABLE, reason: "POSTGRES_UNAVAILABLE" });
    expect(err.message).not.toMatch(/select|insert|update/i);
  }
  await pg.resume();
  // The pool reconnects by itself; a connection that saw the shutdown may fail its first query
  // once more (a postgres-js quirk, see packages/db/README.md), never with anything but UNAVAILABLE.
  let got: VmState | undefined;
  for (let attempt = 0; attempt < 20 && got === undefined; attempt++) {
    try {
      got = (await stack.vms.getVm({ uuid: vm.uuid })).vm!.state;
    } catch (e) {
      expect(e).toMatchObject({ code: Code.UNAVAILABLE });
    }
  }
  expect(got).toBe(VmState.RUNNING);
});
