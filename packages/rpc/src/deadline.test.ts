import { durationFromMs, durationMs } from "@bufbuild/protobuf/wkt";
import { afterEach, describe, expect, it } from "vitest";
import { Code } from "@stratum/core";
import { Harness, within, rejection } from "./echo.fixture";
import { StratumError } from "@stratum/core";

const h = new Harness();
afterEach(() => h.close());


describe("deadlines", () => {
  it("the handler sees the client's deadline, and its signal aborts with DEADLINE_EXCEEDED when it passes", async () => {
    const server = await h.server();
    const client = h.client(server.address);
    const before = Date.now();
    const seen = server.state.nextSleep();
    const err = await rejection(client.sleep({ duration: durationFromMs(10_000) }, { timeoutMs: 300 }));
    expect(err.code).toBe(Code.DEADLINE_EXCEEDED);
    expect(Date.now() - before).toBeLessThan(3_000);
    const { ctx, aborted } = await within(seen);
    expect(ctx.deadline).toBeInstanceOf(Date);
    expect(ctx.deadline!.getTime()).toBeGreaterThanOrEqual(before + 200);
    expect(ctx.deadline!.getTime()).toBeLessThanOrEqual(before + 400);
    const reason = await within(aborted, 5_000, "handler abort");
    expect(reason).toBeInstanceOf(StratumError);
    expect((reason as StratumError).code).toBe(Code.DEADLINE_EXCEEDED);
  });

  it("no deadline on the client means none on the server", async () => {
    const server = await h.server();
    const client = h.client(server.address);
    const res = await client.sleep({});
    expect(res.deadlineRemaining).toBeUndefined();
  });

  it("a forwarded call inherits the parent's remaining deadline and request id", async () => {
    const downstream = await h.server();
    const upstream = await h.server();
    const client = h.client(upstream.address);
    const res = await client.forward(
      { target: downstream.address, sleep: { duration: durationFromMs(10) } },
      { timeoutMs: 2_000, metadata: { "x-request-id": "req-fwd" } },
    );
    const remaining = durationMs(res.downstream!.deadlineRemaining!);
    expect(remaining).toBeGreaterThan(1_000);
    expect(remaining).toBeLessThanOrEqual(2_000);
    expect(res.downstream?.requestId).toBe("req-fwd");
  });

  it("when the parent's deadline passes, the downstream call ends too", async () => {
    const downstream = await h.server();
    const upstream = await h.server();
    const client = h.client(upstream.address);
    const seen = downstream.state.nextSleep();
    const err = await rejection(client.forward({ target: downstream.address, sleep: { duration: durationFromMs(30_000) } }, { timeoutMs: 400 }));
    expect(err.code).toBe(Code.DEADLINE_EXCEEDED);
    const { ctx, aborted } = await within(seen);
    expect(ctx.deadline).toBeDefined();
    await expect(within(aborted, 5_000, "downstream abort")).resolves.toBeInstanceOf(StratumError);
  });
});

describe("cancellation", () => {
  it("aborting the client's signal fails the call with CANCELLED and aborts the handler's signal", async () => {
    const server = await h.server();
    const client = h.client(server.address);
    const controller = new AbortController();
    const seen = server.state.nextSleep();
    const call = client.sleep({ duration: durationFromMs(30_000) }, { signal: controller.signal });
    const { aborted } = await within(seen);
    controller.abort();
    const err = await rejection(call);
    expect(err.code).toBe(Code.CANCELLED);
    const reason = (await within(aborted, 5_000, "handler abort")) as StratumError;
    expect(reason.code).toBe(Code.CANCELLED);
  });

  it("an already aborted signal fails before anything is sent", async () => {
    const server = await h.server();
    const client = h.client(server.address);
    let calls = 0;
    void server.state.nextSleep().then(() => calls++);
    const err = await rejection(client.sleep({}, { signal: AbortSignal.abort() }));
    expect(err.code).toBe(Code.CANCELLED);
    await client.echo({ message: "flush" });
    expect(calls).toBe(0);
  });

  it("cancelling the parent call cancels the downstream call", async () => {
    const downstream = await h.server();
    const upstream = await h.server();
    const client = h.client(upstream.address);
    const controller = new AbortController();
    const upstreamSeen = upstream.state.nextSleep();
    const downstreamSeen = downstream.state.nextSleep();
    void upstreamSeen;
    const call = client.forward({ target: downstream.address, sleep: { duration: durationFromMs(30_000) } }, { signal: controller.signal });
    const { aborted, ctx } = await within(downstreamSeen);
    expect(ctx.deadline).toBeUndefined();
    controller.abort();
    expect((await within(rejection(call))).code).toBe(Code.CANCELLED);
    const reason = (await within(aborted, 5_000, "handler abort")) as StratumError;
    expect(reason.code).toBe(Code.CANCELLED);
  });

  it("breaking out of a server stream cancels it on the server", async () => {
    let serverSignal: AbortSignal | undefined;
    const server = await h.server({
      async *echoStream(req, ctx) {
        serverSignal = ctx.signal;
        for (let index = 0; ; index++) {
          yield { message: req.message, index };
          await new Promise((r) => setTimeout(r, 5));
        }
      },
    });
    const client = h.client(server.address);
    for await (const m of client.echoStream({ message: "forever" })) {
      if (m.index === 2) break;
    }
    await expect.poll(() => serverSignal?.aborted, { timeout: 5_000 }).toBe(true);
    expect((serverSignal?.reason as StratumError).code).toBe(Code.CANCELLED);
  });

  it("refuses a timeout that is not a number, instead of silently calling without a deadline", async () => {
    const server = await h.server();
    const client = h.client(server.address);
    await expect(client.sleep({}, { timeoutMs: Number.NaN })).rejects.toThrow(RangeError);
  });
});
