import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { afterEach, describe, expect, it } from "vitest";
import { Code, StratumError } from "@stratum/core";
import { Harness, within } from "./echo.fixture";
import { SERVER_SHUTTING_DOWN } from "./server";

const h = new Harness();
afterEach(() => h.close());

describe("a server's shutdown and its open response streams", () => {
  it("ends an open stream at once with UNAVAILABLE SERVER_SHUTTING_DOWN, instead of holding the shutdown for its grace", async () => {
    const server = await h.server();
    const client = h.client(server.address, { retry: false });
    const got: number[] = [];
    // A stream that would run for 100 s: a watch has no end of its own.
    const streaming = (async () => {
      for await (const m of client.echoStream({ message: "watch", count: 1_000, interval: durationFromMs(100) })) got.push(m.index);
    })().catch((e: unknown) => e);
    while (got.length < 2) await new Promise((r) => setTimeout(r, 20));
    // The grace is 60 s: the shutdown must not need it.
    await within(server.shutdown(60_000), 5_000, "a shutdown that does not wait out the stream");
    const ended = await streaming;
    expect(ended).toBeInstanceOf(StratumError);
    expect((ended as StratumError).code).toBe(Code.UNAVAILABLE);
    expect((ended as StratumError).reason).toBe(SERVER_SHUTTING_DOWN);
    expect(got.length).toBeLessThan(1_000);
  });
});
