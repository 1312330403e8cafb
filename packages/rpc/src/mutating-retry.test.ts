import { EchoService } from "@stratum/proto/stratum/echo/v1/echo_pb";
import { afterEach, describe, expect, it } from "vitest";
import { Code, StratumError } from "@stratum/core";
import { Harness, rejection } from "./echo.fixture";
import { clientRequestIdField } from "./retry";

const h = new Harness();
afterEach(() => h.close());

const fast = { initialBackoffMs: 5, maxBackoffMs: 10 };

/** An Append that fails its first `failures` attempts with `error()` and records every id it saw. */
async function flakyAppend(failures: number, error: () => StratumError) {
  const seen: string[] = [];
  const server = await h.server({
    append(req) {
      seen.push(req.clientRequestId);
      if (seen.length <= failures) throw error();
      return { length: seen.length };
    },
  });
  return { server, seen };
}

const unavailable = () => new StratumError(Code.UNAVAILABLE, "replica is draining", { reason: "REPLICA_DRAINING" });

describe("mutating retries (retry: { mutating: true })", () => {
  it("tells methods apart by a client_request_id field in their input", () => {
    const withId = EchoService.methods.filter((m) => clientRequestIdField(m)).map((m) => m.name);
    expect(withId).toEqual(["Append"]);
  });

  it("retries a mutating call on UNAVAILABLE with the id the client filled in once", async () => {
    const { server, seen } = await flakyAppend(1, unavailable);
    const client = h.client(server.address, { retry: { ...fast, mutating: true } });
    await expect(client.append({ key: "k", value: "v" })).resolves.toMatchObject({ length: 2 });
    expect(seen).toHaveLength(2);
    expect(seen[0]).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(seen[1]).toBe(seen[0]);
  });

  it("keeps the caller's own id on every attempt, and a fresh one per call", async () => {
    const { server, seen } = await flakyAppend(2, unavailable);
    const client = h.client(server.address, { retry: { ...fast, mutating: true } });
    await client.append({ key: "k", value: "v", clientRequestId: "mine-1" });
    expect(seen).toEqual(["mine-1", "mine-1", "mine-1"]);
    await client.append({ key: "k", value: "v" });
    await client.append({ key: "k", value: "v" });
    expect(seen[3]).not.toBe(seen[4]);
    expect(seen[3]).not.toBe("");
  });

  it("retries NOT_OWNER and OWNER_UNREACHABLE (routing answers) with the same id", async () => {
    for (const reason of ["NOT_OWNER", "OWNER_UNREACHABLE"]) {
      const { server, seen } = await flakyAppend(1, () => new StratumError(Code.UNAVAILABLE, "routing", { reason, resources: { ownerReplicaId: "b" } }));
      const client = h.client(server.address, { retry: { ...fast, mutating: true } });
      await expect(client.append({ key: "k", value: "v" })).resolves.toMatchObject({ length: 2 });
      expect(new Set(seen).size, reason).toBe(1);
      expect(seen).toHaveLength(2);
    }
  });

  it("stops after maxAttempts, returning the last UNAVAILABLE", async () => {
    const { server, seen } = await flakyAppend(100, unavailable);
    const client = h.client(server.address, { retry: { ...fast, maxAttempts: 3, mutating: true } });
    expect(await rejection(client.append({ key: "k", value: "v" }))).toMatchObject({ code: Code.UNAVAILABLE, reason: "REPLICA_DRAINING" });
    expect(seen).toHaveLength(3);
    expect(new Set(seen).size).toBe(1);
  });

  it("never retries other codes", async () => {
    const { server, seen } = await flakyAppend(1, () => new StratumError(Code.ABORTED, "conflict"));
    const client = h.client(server.address, { retry: { ...fast, mutating: true } });
    expect((await rejection(client.append({ key: "k", value: "v" }))).code).toBe(Code.ABORTED);
    expect(seen).toHaveLength(1);
  });

  it("without the option a mutating call is tried once and its id is left as the caller gave it", async () => {
    const { server, seen } = await flakyAppend(1, unavailable);
    const client = h.client(server.address, { retry: fast });
    expect((await rejection(client.append({ key: "k", value: "v" }))).code).toBe(Code.UNAVAILABLE);
    expect(seen).toEqual([""]);
  });
});
