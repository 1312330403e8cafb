import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { Health, HealthCheckResponse_ServingStatus as S } from "@stratum/proto/grpc/health/v1/health_pb";
import { afterEach, describe, expect, it } from "vitest";
import { createClient } from "./client";
import { Code } from "@stratum/core";
import { Harness } from "./echo.fixture";
import { StratumError } from "@stratum/core";

const h = new Harness();
afterEach(() => h.close());

const ECHO = "stratum.echo.v1.EchoService";

/** Reads a stream into an array as it arrives. */
function collect<T>(stream: AsyncIterable<T>): { items: T[]; done: Promise<unknown> } {
  const items: T[] = [];
  const done = (async () => {
    for await (const item of stream) items.push(item);
  })().then(
    () => "ended",
    (e: unknown) => e,
  );
  return { items, done };
}

describe("grpc.health.v1.Health", () => {
  it("Check: the server ('') and every registered service are SERVING; unknown services are NOT_FOUND", async () => {
    const server = await h.server();
    const health = h.track(createClient(Health, server.address));
    expect((await health.check({ service: "" })).status).toBe(S.SERVING);
    expect((await health.check({ service: ECHO })).status).toBe(S.SERVING);
    const err = await health.check({ service: "stratum.nope.v1.Nope" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StratumError);
    expect((err as StratumError).code).toBe(Code.NOT_FOUND);
  });

  it("initialHealth: a replica can start NOT_SERVING until it is ready", async () => {
    const server = await h.server({}, { initialHealth: S.NOT_SERVING });
    const health = h.track(createClient(Health, server.address));
    expect((await health.check({ service: "" })).status).toBe(S.NOT_SERVING);
    expect((await health.check({ service: ECHO })).status).toBe(S.NOT_SERVING);
    server.health.set("", S.SERVING);
    expect((await health.check({ service: "" })).status).toBe(S.SERVING);
  });

  it("Check and List reflect statuses set at runtime", async () => {
    const server = await h.server();
    const health = h.track(createClient(Health, server.address));
    server.health.set(ECHO, S.NOT_SERVING);
    expect((await health.check({ service: ECHO })).status).toBe(S.NOT_SERVING);
    const list = await health.list({});
    expect(Object.fromEntries(Object.entries(list.statuses).map(([k, v]) => [k, v.status]))).toEqual({
      "": S.SERVING,
      [ECHO]: S.NOT_SERVING,
      "stratum.echo.v1.ConcatService": S.SERVING,
    });
  });

  it("Watch sends the current status, then every change; unknown services are SERVICE_UNKNOWN until known", async () => {
    const server = await h.server();
    const health = h.track(createClient(Health, server.address));
    const controller = new AbortController();
    const echo = collect(health.watch({ service: ECHO }, { signal: controller.signal }));
    const later = collect(health.watch({ service: "stratum.later.v1.LaterService" }, { signal: controller.signal }));
    await expect.poll(() => echo.items.length).toBe(1);
    await expect.poll(() => later.items.length).toBe(1);
    server.health.set(ECHO, S.NOT_SERVING);
    await expect.poll(() => echo.items.map((i) => i.status)).toEqual([S.SERVING, S.NOT_SERVING]);
    server.health.set(ECHO, S.SERVING);
    await expect.poll(() => echo.items.map((i) => i.status)).toEqual([S.SERVING, S.NOT_SERVING, S.SERVING]);
    server.health.set("stratum.later.v1.LaterService", S.SERVING);
    await expect.poll(() => later.items.map((i) => i.status)).toEqual([S.SERVICE_UNKNOWN, S.SERVING]);
    controller.abort();
    expect(((await echo.done) as StratumError).code).toBe(Code.CANCELLED);
  });

  it("on shutdown, watchers see NOT_SERVING and their streams end, so the drain is not held open", async () => {
    const server = await h.server();
    const health = h.track(createClient(Health, server.address));
    const watch = collect(health.watch({ service: "" }));
    await expect.poll(() => watch.items.length).toBe(1);
    const started = Date.now();
    await server.shutdown(5_000);
    expect(Date.now() - started).toBeLessThan(4_000);
    expect(await watch.done).toBe("ended");
    expect(watch.items.map((i) => i.status)).toEqual([S.SERVING, S.NOT_SERVING]);
    server.health.set("", S.SERVING); // ignored once shut down
    expect(server.health.get("")).toBe(S.NOT_SERVING);
  });
});

describe("shutdown", () => {
  it("lets in-flight calls finish within the grace period", async () => {
    const server = await h.server();
    const client = h.client(server.address);
    const seen = server.state.nextSleep();
    const call = client.sleep({ duration: durationFromMs(300) });
    await seen;
    await server.shutdown(5_000);
    await expect(call).resolves.toBeDefined();
    // New calls are refused.
    const err = await client.echo({ message: "late" }, { timeoutMs: 1_000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StratumError);
    expect([Code.UNAVAILABLE, Code.DEADLINE_EXCEEDED]).toContain((err as StratumError).code);
  });

  it("cancels what is still running after the grace period; handlers see their signal abort", async () => {
    const server = await h.server();
    const client = h.client(server.address);
    const seen = server.state.nextSleep();
    const call = client.sleep({ duration: durationFromMs(30_000) }).catch((e: unknown) => e);
    const { aborted } = await seen;
    const started = Date.now();
    await server.shutdown(200);
    expect(Date.now() - started).toBeLessThan(3_000);
    await expect(aborted).resolves.toBeInstanceOf(StratumError);
    expect(await call).toBeInstanceOf(StratumError);
  });
});
