import { afterEach, describe, expect, it, vi } from "vitest";
import { Registry } from "prom-client";
import { Code, StratumError } from "@stratum/core";
import { Harness, rejection } from "../../rpc/src/echo.fixture";
import { createRpcMetrics, rpcMetricsInterceptor } from "./rpc-metrics";
import { parseMetrics, valueOf } from "./test-support";

const ECHO = "stratum.echo.v1.EchoService";
const harness = new Harness();
afterEach(() => harness.close());

async function setup(overrides: Parameters<Harness["server"]>[0] = {}) {
  const registry = new Registry();
  const metrics = createRpcMetrics(registry);
  const server = await harness.server(overrides, { interceptors: [rpcMetricsInterceptor(metrics)] });
  const client = harness.client(`127.0.0.1:${server.port}`);
  const scrape = async () => parseMetrics(await registry.metrics());
  return { client, scrape, server };
}

describe("rpcMetricsInterceptor on a real server", () => {
  it("counts calls by service, method and code, and times them", async () => {
    const { client, scrape } = await setup();
    await client.echo({ message: "a" });
    await client.echo({ message: "b" });
    expect((await rejection(client.fail({ code: Code.NOT_FOUND, message: "no such vm", reason: "VM_NOT_FOUND" }))).code).toBe(Code.NOT_FOUND);
    expect((await rejection(client.fail({ code: Code.OK, message: "plain error" }))).code).toBe(Code.INTERNAL);
    const s = await scrape();
    const handled = (method: string, code: string) => valueOf(s, "stratum_rpc_server_handled_total", { grpc_service: ECHO, grpc_method: method, grpc_code: code });
    expect(handled("Echo", "OK")).toBe(2);
    expect(handled("Fail", "NOT_FOUND")).toBe(1);
    expect(handled("Fail", "INTERNAL")).toBe(1);
    expect(handled("Echo", "NOT_FOUND")).toBeUndefined();
    expect(valueOf(s, "stratum_rpc_server_handling_seconds_count", { grpc_method: "Echo" })).toBe(2);
    expect(valueOf(s, "stratum_rpc_server_handling_seconds_count", { grpc_method: "Fail" })).toBe(2);
    expect(valueOf(s, "stratum_rpc_server_handling_seconds_bucket", { grpc_method: "Echo", le: "+Inf" })).toBe(2);
    expect(valueOf(s, "stratum_rpc_server_handling_seconds_sum", { grpc_method: "Echo" })).toBeGreaterThan(0);
  });

  it("counts a call in flight while it runs, and a client's cancel as CANCELLED once the handler ends", async () => {
    const { client, scrape, server } = await setup();
    const controller = new AbortController();
    const call = client.sleep({ duration: { seconds: 60n } }, { signal: controller.signal });
    const observation = await server.state.nextSleep();
    expect(valueOf(await scrape(), "stratum_rpc_server_in_flight", { grpc_method: "Sleep" })).toBe(1);
    controller.abort();
    expect((await rejection(call)).code).toBe(Code.CANCELLED);
    await observation.aborted;
    await vi.waitFor(async () => expect(valueOf(await scrape(), "stratum_rpc_server_handled_total", { grpc_method: "Sleep", grpc_code: "CANCELLED" })).toBe(1));
    expect(valueOf(await scrape(), "stratum_rpc_server_in_flight", { grpc_method: "Sleep" })).toBe(0);
  });

  it("records a server stream when it ends, with the code it ended with", async () => {
    const { client, scrape } = await setup({
      async *echoStream(req) {
        yield { message: req.message, index: 0 };
        if (req.count > 1) throw new StratumError(Code.FAILED_PRECONDITION, "stream broke", { reason: "BROKEN" });
      },
    });
    const got: number[] = [];
    for await (const m of client.echoStream({ message: "m", count: 1 })) got.push(m.index);
    expect(got).toEqual([0]);
    const failing = (async () => {
      for await (const _ of client.echoStream({ message: "m", count: 2 })) void _;
    })();
    expect((await rejection(failing)).code).toBe(Code.FAILED_PRECONDITION);
    await vi.waitFor(async () =>
      expect(valueOf(await scrape(), "stratum_rpc_server_handled_total", { grpc_method: "EchoStream", grpc_code: "FAILED_PRECONDITION" })).toBe(1),
    );
    const s = await scrape();
    expect(valueOf(s, "stratum_rpc_server_handled_total", { grpc_method: "EchoStream", grpc_code: "OK" })).toBe(1);
    expect(valueOf(s, "stratum_rpc_server_in_flight", { grpc_method: "EchoStream" })).toBe(0);
  });
});
