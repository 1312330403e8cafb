import { getFreePort as freePort } from "@stratum/testing";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { EchoService } from "@stratum/proto/stratum/echo/v1/echo_pb";
import { afterEach, describe, expect, it } from "vitest";
import { Code } from "@stratum/core";
import { Harness, rejection } from "./echo.fixture";
import { StratumError } from "@stratum/core";
import { DEFAULT_RETRY_POLICY, RETRYABLE_CODES, backoffDelay, isIdempotent } from "./retry";

const h = new Harness();
afterEach(() => h.close());

const unavailable = (): StratumError => new StratumError(Code.UNAVAILABLE, "replica is starting", { reason: "REPLICA_NOT_READY" });
const fast = { initialBackoffMs: 10, maxBackoffMs: 20 };


describe("policy", () => {
  it("retries only UNAVAILABLE, and only idempotent or side-effect-free methods", () => {
    expect([...RETRYABLE_CODES]).toEqual([Code.UNAVAILABLE]);
    const kinds = Object.fromEntries(EchoService.methods.map((m) => [m.name, isIdempotent(m)]));
    expect(kinds).toEqual({ Echo: true, EchoStream: true, Fail: true, Sleep: true, Forward: true, Append: false });
  });

  it("backoff is full jitter under an exponentially growing, capped bound", () => {
    const policy = { ...DEFAULT_RETRY_POLICY, initialBackoffMs: 100, maxBackoffMs: 1_000, backoffMultiplier: 2 };
    expect([1, 2, 3, 4, 5, 6].map((n) => backoffDelay(n, policy, () => 0.999999))).toEqual([99, 199, 399, 799, 999, 999]);
    expect(backoffDelay(3, policy, () => 0)).toBe(0);
    expect(backoffDelay(3, policy, () => 0.5)).toBe(200);
  });
});

describe("retry interceptor", () => {
  it("retries UNAVAILABLE on a NO_SIDE_EFFECTS method until it succeeds", async () => {
    let calls = 0;
    const server = await h.server({
      echo(req) {
        if (++calls <= 2) throw unavailable();
        return { message: req.message };
      },
    });
    const client = h.client(server.address, { retry: fast });
    await expect(client.echo({ message: "eventually" })).resolves.toMatchObject({ message: "eventually" });
    expect(calls).toBe(3);
  });

  it("retries UNAVAILABLE on an IDEMPOTENT method", async () => {
    let calls = 0;
    const server = await h.server({
      fail() {
        if (++calls <= 1) throw unavailable();
        throw new StratumError(Code.NOT_FOUND, "gone", { reason: "VM_NOT_FOUND" });
      },
    });
    const client = h.client(server.address, { retry: fast });
    expect((await rejection(client.fail({}))).reason).toBe("VM_NOT_FOUND");
    expect(calls).toBe(2);
  });

  it("never retries a method without an idempotency level", async () => {
    let calls = 0;
    const server = await h.server({
      append() {
        calls++;
        throw unavailable();
      },
    });
    const client = h.client(server.address, { retry: fast });
    const err = await rejection(client.append({ key: "k", value: "v" }));
    expect(err.code).toBe(Code.UNAVAILABLE);
    expect(err.reason).toBe("REPLICA_NOT_READY");
    expect(calls).toBe(1);
  });

  it("never retries other codes, even on idempotent methods", async () => {
    for (const code of [Code.INTERNAL, Code.ABORTED, Code.RESOURCE_EXHAUSTED, Code.DEADLINE_EXCEEDED, Code.UNKNOWN]) {
      let calls = 0;
      const server = await h.server({
        echo() {
          calls++;
          throw new StratumError(code, "no");
        },
      });
      const client = h.client(server.address, { retry: fast });
      expect((await rejection(client.echo({}))).code).toBe(code);
      expect(calls, `code ${code}`).toBe(1);
    }
  });

  it("stops after maxAttempts and returns the last UNAVAILABLE", async () => {
    let calls = 0;
    const server = await h.server({
      echo() {
        calls++;
        throw unavailable();
      },
    });
    const client = h.client(server.address, { retry: { ...fast, maxAttempts: 4 } });
    expect((await rejection(client.echo({}))).code).toBe(Code.UNAVAILABLE);
    expect(calls).toBe(4);
  });

  it("does not retry when the backoff would end past the deadline", async () => {
    let calls = 0;
    const server = await h.server({
      echo() {
        calls++;
        throw unavailable();
      },
    });
    // Backoffs of 0–9 s against a 300 ms deadline: with jitter a first retry may fit, but the
    // call must fail with UNAVAILABLE well before the deadline-bounded wall time runs out.
    const client = h.client(server.address, { retry: { initialBackoffMs: 9_000, maxBackoffMs: 9_000, maxAttempts: 10 } });
    const started = Date.now();
    const err = await rejection(client.echo({}, { timeoutMs: 300 }));
    expect(Date.now() - started).toBeLessThan(1_000);
    expect([Code.UNAVAILABLE, Code.DEADLINE_EXCEEDED]).toContain(err.code);
    expect(calls).toBeLessThanOrEqual(2);
    // And with no chance to fit, exactly one attempt.
    calls = 0;
    const strict = h.client(server.address, { retry: { initialBackoffMs: 60_000, maxBackoffMs: 60_000 } });
    const err2 = await rejection(strict.echo({}, { timeoutMs: 50 }));
    expect(err2.code === Code.UNAVAILABLE || err2.code === Code.DEADLINE_EXCEEDED).toBe(true);
    expect(calls).toBeLessThanOrEqual(1);
  });

  it("honours grpc-retry-pushback-ms: a negative value stops retries", async () => {
    let calls = 0;
    const server = await h.server({
      echo(_req, ctx) {
        calls++;
        ctx.trailers.set("grpc-retry-pushback-ms", "-1");
        throw unavailable();
      },
    });
    const client = h.client(server.address, { retry: fast });
    expect((await rejection(client.echo({}))).code).toBe(Code.UNAVAILABLE);
    expect(calls).toBe(1);
  });

  it("cancelling during the backoff ends the call with CANCELLED at once", async () => {
    let calls = 0;
    const server = await h.server({
      echo() {
        calls++;
        throw unavailable();
      },
    });
    const client = h.client(server.address, { retry: { initialBackoffMs: 30_000, maxBackoffMs: 30_000, maxAttempts: 5 } });
    const controller = new AbortController();
    const call = client.echo({}, { signal: controller.signal });
    await expect.poll(() => calls).toBe(1);
    await new Promise((r) => setTimeout(r, 50));
    const started = Date.now();
    controller.abort();
    expect((await rejection(call)).code).toBe(Code.CANCELLED);
    // Not a speed figure: the next attempt is 30 s away, so anything well under it means the
    // cancel ended the backoff (a loaded 2-core machine can take a second to answer at all).
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(calls).toBe(1);
  });

  it("retry: false disables retries", async () => {
    let calls = 0;
    const server = await h.server({
      echo() {
        calls++;
        throw unavailable();
      },
    });
    const client = h.client(server.address, { retry: false });
    await rejection(client.echo({}));
    expect(calls).toBe(1);
  });

  it("server streams are retried only before the first response message", async () => {
    let calls = 0;
    const server = await h.server({
      async *echoStream(req) {
        calls++;
        if (calls === 1) throw unavailable(); // before any message: retried
        yield { message: req.message, index: 0 };
        throw unavailable(); // after a message: committed, not retried
      },
    });
    const client = h.client(server.address, { retry: fast });
    const got: number[] = [];
    const err = await rejection(
      (async () => {
        for await (const m of client.echoStream({ message: "s", count: 3 })) got.push(m.index);
      })(),
    );
    expect(err.code).toBe(Code.UNAVAILABLE);
    expect(got).toEqual([0]);
    expect(calls).toBe(2);
  });

  it("rides over a server that starts late (connection refused is UNAVAILABLE)", async () => {
    const port = await freePort();
    const client = h.client(`127.0.0.1:${port}`, {
      retry: { initialBackoffMs: 100, maxBackoffMs: 300, maxAttempts: 30 },
      // Let the channel itself reconnect quickly too (its default first backoff is 1 s).
      channelOptions: { "grpc.initial_reconnect_backoff_ms": 50, "grpc.max_reconnect_backoff_ms": 100 },
    });
    const call = client.echo({ message: "late" }, { timeoutMs: 10_000 });
    await new Promise((r) => setTimeout(r, 400));
    await h.server({}, { port });
    await expect(call).resolves.toMatchObject({ message: "late" });
  });

  it("without retries, the same late server fails the call", async () => {
    const port = await freePort();
    const client = h.client(`127.0.0.1:${port}`, { retry: false });
    const call = rejection(client.echo({ message: "late" }, { timeoutMs: 10_000 }));
    await new Promise((r) => setTimeout(r, 400));
    await h.server({}, { port });
    expect((await call).code).toBe(Code.UNAVAILABLE);
  });

  it("a Sleep deadline still applies across retries", async () => {
    let calls = 0;
    const server = await h.server({
      async sleep() {
        calls++;
        throw unavailable();
      },
    });
    const client = h.client(server.address, { retry: { initialBackoffMs: 50, maxBackoffMs: 50, maxAttempts: 1_000 } });
    const started = Date.now();
    await rejection(client.sleep({ duration: durationFromMs(1) }, { timeoutMs: 500 }));
    expect(Date.now() - started).toBeLessThan(1_500);
    expect(calls).toBeGreaterThan(2);
  });
});
