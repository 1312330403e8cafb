import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, inject, it } from "vitest";
import { connectBus, MembershipView } from "@stratum/bus";
import { Health, HealthCheckResponse_ServingStatus } from "@stratum/proto/grpc/health/v1/health_pb";
import { Code, closeClient, createClient, StratumError, type ServiceImpl } from "@stratum/rpc";
import { serviceApi } from "./serving/api";
import { EchoService } from "@stratum/proto/stratum/echo/v1/echo_pb";
import { getFreePort, testDatabase, uniquePrefix } from "@stratum/testing";
import type { ServiceConfig } from "./config";
import { startService, type ServiceModule } from "./service";

const unimplemented = () => {
  throw new StratumError(Code.UNIMPLEMENTED, "not in this test");
};
const echoImpl: ServiceImpl<typeof EchoService> = {
  echo: (req) => ({ message: req.message }),
  echoStream: unimplemented as never,
  fail: unimplemented,
  sleep: unimplemented,
  forward: unimplemented,
  append: unimplemented,
};

/** A service with almost no domain: the db fixture's migrations and an echo. */
const fixture: ServiceModule = {
  name: "fixture",
  migrationsFolder: fileURLToPath(new URL("../../db/test/fixture/drizzle", import.meta.url)),
  setup: () => ({ services: [serviceApi(EchoService, echoImpl, {})] }),
};

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function config(patch: Partial<ServiceConfig> = {}): Promise<ServiceConfig> {
  return {
    service: "fixture",
    replicaId: "fixture-0",
    host: "127.0.0.1",
    port: 0,
    advertiseHost: "127.0.0.1",
    natsUrl: inject("natsUrl"),
    databaseUrl: await testDatabase("runtime"),
    busPrefix: uniquePrefix("rt"),
    heartbeatMs: 200,
    connectTimeoutMs: 10_000,
    dbPoolSize: 4,
    ...patch,
  };
}

describe("startService", () => {
  it("serves, reports SERVING only once it joined the ring, and leaves the ring on stop", async () => {
    const cfg = await config();
    const running = await startService(fixture, cfg);
    cleanups.push(() => running.stop());
    const health = createClient(Health, running.address);
    cleanups.push(() => closeClient(health));
    expect((await health.check({ service: "" })).status).toBe(HealthCheckResponse_ServingStatus.SERVING);
    expect((await health.check({ service: "stratum.echo.v1.EchoService" })).status).toBe(HealthCheckResponse_ServingStatus.SERVING);

    const bus = await connectBus({ servers: cfg.natsUrl, prefix: cfg.busPrefix });
    cleanups.push(() => bus.close());
    const view = await MembershipView.open(bus, { heartbeatMs: 200 });
    cleanups.push(() => view.close());
    expect(view.members("fixture").map((m) => m.address)).toEqual([running.address]);

    const stopped = running.stop();
    // Leaving the ring happens first and at once, not after the TTL.
    await view.until((v) => v.members("fixture").length === 0, 1_000);
    await stopped;
  });

  it("fails with POSTGRES_UNAVAILABLE naming the server when Postgres is down", async () => {
    const port = await getFreePort();
    const err = await startService(fixture, await config({ databaseUrl: `postgres://postgres@127.0.0.1:${port}/x`, connectTimeoutMs: 300 })).catch((e) => e);
    expect(err).toBeInstanceOf(StratumError);
    expect(err.reason).toBe("POSTGRES_UNAVAILABLE");
    expect(err.message).toContain(`127.0.0.1:${port}`);
  });

  it("fails with NATS_UNAVAILABLE naming the server when NATS is down", async () => {
    const port = await getFreePort();
    const err = await startService(fixture, await config({ natsUrl: `nats://127.0.0.1:${port}`, connectTimeoutMs: 300 })).catch((e) => e);
    expect(err).toBeInstanceOf(StratumError);
    expect(err.reason).toBe("NATS_UNAVAILABLE");
    expect(err.message).toContain(`127.0.0.1:${port}`);
  });
});

describe("runMain", () => {
  it("a replica that cannot start says why in one line and exits 1, instead of crash-looping silently", async () => {
    const port = await getFreePort();
    const main = fileURLToPath(new URL("../../../services/compute/src/main.ts", import.meta.url));
    const child = spawn(process.execPath, ["--import", "tsx", main], {
      env: { ...process.env, DATABASE_URL: `postgres://postgres@127.0.0.1:${port}/stratum`, STRATUM_CONNECT_TIMEOUT_MS: "300", STRATUM_REPLICA_ID: "compute-t" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (d) => (stderr += d));
    const code = await new Promise<number | null>((r) => child.once("exit", r));
    expect(code).toBe(1);
    const failure = stderr.split("\n").find((l) => l.includes("failed to start"));
    expect(failure, stderr).toBeDefined();
    expect(JSON.parse(failure!)).toMatchObject({ level: "error", reason: "POSTGRES_UNAVAILABLE" });
    expect(failure).toContain(`127.0.0.1:${port}`);
  }, 30_000);
});
