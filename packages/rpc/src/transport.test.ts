import { getFreePort as freePort } from "@stratum/testing";
import { afterEach, describe, expect, it } from "vitest";
import { Code, StratumError } from "@stratum/core";
import { Harness, rejection } from "./echo.fixture";
import { isTransportUnavailable } from "./transport";

const h = new Harness();
afterEach(() => h.close());

describe("isTransportUnavailable", () => {
  it("is true for a connection refused, false for a server's own UNAVAILABLE", async () => {
    const refused = await rejection(h.client(`127.0.0.1:${await freePort()}`, { retry: false }).echo({}));
    expect(refused.code).toBe(Code.UNAVAILABLE);
    expect(isTransportUnavailable(refused)).toBe(true);

    const server = await h.server({
      echo() {
        throw new StratumError(Code.UNAVAILABLE, "draining", { reason: "REPLICA_DRAINING" });
      },
    });
    const answered = await rejection(h.client(server.address, { retry: false }).echo({}));
    expect(answered.reason).toBe("REPLICA_DRAINING");
    expect(isTransportUnavailable(answered)).toBe(false);
    expect(isTransportUnavailable(new StratumError(Code.INTERNAL, "x"))).toBe(false);
  });
});
