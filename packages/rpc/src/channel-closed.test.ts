import { getFreePort as freePort } from "@stratum/testing";
import { ConcatService, EchoService } from "@stratum/proto/stratum/echo/v1/echo_pb";
import * as grpc from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { Code, createLogger } from "@stratum/core";
import { CHANNEL_CLOSED } from "./channel-closed";
import { closeClient, createClient } from "./client";
import { Harness, rejection, within } from "./echo.fixture";

const h = new Harness();
afterEach(() => h.close());

/** Uncaught exceptions while `fn` runs (vitest also fails the run on them; this names the test). */
async function uncaughtDuring(fn: () => Promise<void>): Promise<unknown[]> {
  const seen: unknown[] = [];
  const listener = (err: unknown): void => void seen.push(err);
  process.on("uncaughtException", listener);
  try {
    await fn();
  } finally {
    process.off("uncaughtException", listener);
  }
  return seen;
}

describe("a call on a closed client", () => {
  it("a retry whose channel was closed during its backoff fails that call with UNAVAILABLE CHANNEL_CLOSED, nothing thrown", async () => {
    // Resolved by the retry interceptor's "retrying rpc" line, logged just before it arms the
    // backoff timer: the continuation runs (a microtask) before that timer can fire.
    let inBackoff!: () => void;
    const backingOff = new Promise<void>((resolve) => (inBackoff = resolve));
    const logger = createLogger({}, { level: "debug", sink: (line) => (JSON.parse(line) as { msg?: string }).msg === "retrying rpc" && inBackoff() });
    const port = await freePort(); // nobody listens: connection refused, UNAVAILABLE, retried
    const client = createClient(EchoService, `127.0.0.1:${port}`, { retry: { initialBackoffMs: 50, maxBackoffMs: 50, maxAttempts: 5, logger } });
    const seen = await uncaughtDuring(async () => {
      const call = rejection(client.echo({ message: "x" }, { timeoutMs: 10_000 }));
      await within(backingOff, 5_000, "first retry");
      closeClient(client); // what ServiceRouter does when the replica leaves the ring
      const err = await within(call, 5_000, "the call");
      expect(err).toMatchObject({ code: Code.UNAVAILABLE, reason: CHANNEL_CLOSED });
    });
    expect(seen).toEqual([]);
  });

  it("a new call on a closed client is rejected with CHANNEL_CLOSED, for every call shape", async () => {
    const server = await h.server();
    const echo = createClient(EchoService, server.address);
    const noRetry = createClient(EchoService, server.address, { retry: false });
    await expect(echo.echo({ message: "open" })).resolves.toMatchObject({ message: "open" });
    closeClient(echo);
    closeClient(noRetry);
    for (const client of [echo, noRetry]) {
      expect(await rejection(client.echo({ message: "closed" }))).toMatchObject({ code: Code.UNAVAILABLE, reason: CHANNEL_CLOSED });
      expect(await rejection(client.append({ key: "k", value: "v" }))).toMatchObject({ reason: CHANNEL_CLOSED });
      const stream = (async () => {
        for await (const _ of client.echoStream({ message: "s", count: 1 })) void _;
      })();
      expect(await rejection(stream)).toMatchObject({ reason: CHANNEL_CLOSED });
    }
    expect(server.state.lists.size).toBe(0);
  });

  it("a client over a shared Channel its owner closed fails with CHANNEL_CLOSED", async () => {
    const server = await h.server();
    const channel = new grpc.Channel(server.address, grpc.credentials.createInsecure(), {});
    const client = createClient(EchoService, channel);
    await expect(client.echo({ message: "open" })).resolves.toMatchObject({ message: "open" });
    channel.close();
    expect(await rejection(client.echo({ message: "closed" }))).toMatchObject({ code: Code.UNAVAILABLE, reason: CHANNEL_CLOSED });
    const concat = createClient(ConcatService, channel, { retry: false });
    expect(await rejection(concat.concat((async function* () {})()))).toMatchObject({ reason: CHANNEL_CLOSED });
  });
});
